from django import forms
from django.utils.translation import gettext_lazy as _

from .models import EventType


class AlertFilterForm(forms.Form):
    event_type = forms.ChoiceField(
        label=_("Event"),
        required=False,
        choices=[("", _("All events"))] + [c for c in EventType.choices if c[0] != EventType.TEST_PING],
    )
