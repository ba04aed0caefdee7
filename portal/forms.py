"""Form fields shared by the apps."""

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator


class CalendarDateField(forms.DateField):
    """A date between 1900 and 2999, so a filter can add or subtract days from it.

    Python's calendar ends at 9999-12-31: "until 9999-12-31" plus one day used to
    raise OverflowError instead of showing a form error.
    """

    default_validators = [MinValueValidator(date(1900, 1, 1)), MaxValueValidator(date(2999, 12, 31))]
