from django import forms
from django.utils.translation import gettext_lazy as _

from portal.alerts.models import OPERATOR_SUBSCRIBABLE

from .models import Scope


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("Which tool uses it, e.g. “SIEM”."))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_in_days = forms.TypedChoiceField(
        label=_("Expires after"),
        coerce=int,
        choices=[(30, _("30 days")), (90, _("90 days")), (180, _("180 days")), (365, _("1 year"))],
        initial=90,
    )


class WebhookEndpointForm(forms.Form):
    """An organisation's own webhook endpoint: where to send, and which events."""

    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("Which system receives it, e.g. “SOAR”.")
    )
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("An HTTPS address reachable from the internet; answer 2xx within 5 seconds."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events"), choices=OPERATOR_SUBSCRIBABLE, widget=forms.CheckboxSelectMultiple
    )


class WebhookEnableForm(forms.Form):
    held = forms.ChoiceField(
        label=_("Events that waited"),
        choices=[
            ("release", _("Send them now, oldest first")),
            ("discard", _("Discard them (they are listed as failed)")),
        ],
        initial="release",
        widget=forms.RadioSelect,
    )
