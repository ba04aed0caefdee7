import json

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import (
    ActorType,
    CollectionMethod,
    ConsentState,
    PolicyStatus,
    PolicyVersion,
    Purpose,
    SpecificData,
)

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class PolicyVersionForm(forms.ModelForm):
    class Meta:
        model = PolicyVersion
        fields = ["title", "effective_date", "text_id", "text_en", "change_summary"]
        widgets = {
            "effective_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "text_id": forms.Textarea(attrs={"rows": 14}),
            "text_en": forms.Textarea(attrs={"rows": 14}),
            "change_summary": forms.Textarea(attrs={"rows": 3}),
        }

    def clean(self):
        data = super().clean()
        if not (data.get("text_id", "").strip() or data.get("text_en", "").strip()):
            raise forms.ValidationError(_("Write the policy text in at least one language."))
        return data


class PurposeForm(forms.ModelForm):
    specific_data = forms.MultipleChoiceField(
        label=_("Specific personal data involved"),
        choices=SpecificData.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("UU PDP Pasal 4(2): leave empty if none is involved."),
    )

    class Meta:
        model = Purpose
        fields = [
            "code", "description", "legal_basis", "data_categories", "specific_data", "retention",
            "recipients", "withdrawal_method",
        ]  # fmt: skip
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "data_categories": forms.Textarea(attrs={"rows": 2}),
            "recipients": forms.Textarea(attrs={"rows": 2}),
            "withdrawal_method": forms.Textarea(attrs={"rows": 2}),
        }


class LookupForm(forms.Form):
    subject_id = forms.CharField(
        label=_("Subject identifier"),
        max_length=200,
        help_text=_("Your own identifier of the data subject (customer number, account id)."),
    )


class RecordEventForm(forms.Form):
    subject_id = forms.CharField(label=_("Subject identifier"), max_length=200)
    policy_version = forms.ModelChoiceField(
        label=_("Policy version shown"), queryset=PolicyVersion.objects.none()
    )
    purposes = forms.MultipleChoiceField(label=_("Purposes"), widget=forms.CheckboxSelectMultiple)
    state = forms.ChoiceField(label=_("Decision"), choices=ConsentState.choices)
    method = forms.ChoiceField(label=_("Method"), choices=CollectionMethod.choices)
    actor_type = forms.ChoiceField(label=_("Given by"), choices=ActorType.choices)
    event_at = forms.DateTimeField(
        label=_("Event time"),
        required=False,
        widget=DATETIME_WIDGET,
        help_text=_("In your organisation's time zone. Empty: now."),
    )
    expires_at = forms.DateTimeField(label=_("Expires"), required=False, widget=DATETIME_WIDGET)
    evidence = forms.CharField(
        label=_("Evidence"),
        required=False,
        max_length=500,
        help_text=_("For example the id of the consent text shown, or a form number. No personal data."),
    )

    def __init__(self, *args, operator, **kwargs):
        super().__init__(*args, **kwargs)
        versions = PolicyVersion.objects.for_operator(operator).exclude(status=PolicyStatus.DRAFT)
        self.fields["policy_version"].queryset = versions
        current = versions.filter(status=PolicyStatus.PUBLISHED).first()
        if current is not None:
            self.fields["policy_version"].initial = current.pk
        codes = sorted({code for v in versions for code in v.purpose_codes()})
        self.fields["purposes"].choices = [(c, c) for c in codes]
        self.fields["policy_version"].label_from_instance = lambda v: (
            f"v{v.number} · {v.title} ({v.get_status_display()})"
        )

    def clean(self):
        data = super().clean()
        event_at, expires_at = data.get("event_at"), data.get("expires_at")
        if expires_at and event_at and expires_at <= event_at:
            self.add_error("expires_at", _("The expiry must be after the event time."))
        return data


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, one event per row, columns: subject_id, purpose, state, event_time, method, "
            "policy_version, and optionally actor, expires_at, evidence."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError(_("Upload a .csv file."))
        return upload


class DiffForm(forms.Form):
    a = forms.ModelChoiceField(label=_("Compare"), queryset=PolicyVersion.objects.none())
    b = forms.ModelChoiceField(label=_("with"), queryset=PolicyVersion.objects.none())

    def __init__(self, *args, operator, **kwargs):
        super().__init__(*args, **kwargs)
        versions = PolicyVersion.objects.for_operator(operator).order_by("-number")
        for name in ("a", "b"):
            self.fields[name].queryset = versions
            self.fields[name].label_from_instance = lambda v: f"v{v.number} ({v.get_status_display()})"


class ProcessingStoppedForm(forms.Form):
    """The operator confirms it stopped processing after a withdrawal (UU 27/2022 Pasal 40)."""

    stopped_at = forms.DateTimeField(
        label=_("Processing stopped at"),
        widget=DATETIME_WIDGET,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=_("In your organisation's time zone."),
    )
    note = forms.CharField(
        label=_("What was stopped (systems, recipients told)"), max_length=300, required=False
    )


MAX_RECEIPT_BYTES = 1024 * 1024


class ReceiptVerifyForm(forms.Form):
    """A consent receipt, pasted or uploaded, for the public check."""

    receipt = forms.CharField(
        label=_("Paste the receipt (JSON)"), widget=forms.Textarea(attrs={"rows": 10}), required=False
    )
    file = forms.FileField(label=_("or upload the receipt file"), required=False)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > MAX_RECEIPT_BYTES:
                raise forms.ValidationError(_("The file is larger than 1 MB; a receipt is much smaller."))
            raw = upload.read()
        else:
            raw = (cleaned.get("receipt") or "").encode()
        if not raw.strip():
            raise forms.ValidationError(_("Paste a receipt or choose its file."))
        try:
            cleaned["document"] = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise forms.ValidationError(_("This is not a JSON document.")) from exc
        return cleaned
