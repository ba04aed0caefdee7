from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import services
from .evidence import allowed_extensions
from .models import (
    TLP,
    CommentKind,
    Incident,
    PersonalDataCategory,
    ReportKind,
    Severity,
    SpecificDataCategory,
    Status,
)
from .observables import ObservableKind, parse_lines

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class IncidentForm(forms.ModelForm):
    """The operator's incident form: a draft saves with little, a submission needs everything.

    The view passes `complete=True` when the person pressed "Submit".
    """

    personal_data_categories = forms.MultipleChoiceField(
        label=_("Personal data categories"),
        choices=PersonalDataCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    specific_data_categories = forms.MultipleChoiceField(
        label=_("Specific personal data (UU PDP Pasal 4(2))"),
        choices=SpecificDataCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Incident
        fields = list(services.OPERATOR_FIELDS)
        widgets = {
            "occurred_at": DATETIME_WIDGET,
            "detected_at": DATETIME_WIDGET,
            "aware_at": DATETIME_WIDGET,
            "description": forms.Textarea(attrs={"rows": 5}),
            "chronology": forms.Textarea(attrs={"rows": 5}),
            "affected_systems": forms.Textarea(attrs={"rows": 2}),
            "affected_services": forms.Textarea(attrs={"rows": 2}),
            "actions_taken": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, complete: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.complete = complete
        for name in ("occurred_at", "detected_at", "aware_at"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        for name in services.SUBMIT_REQUIRED:
            # Marked for people; enforced by services.validate_content on submission.
            self.fields[name].widget.attrs["data-required-to-submit"] = "true"
        for name in services.DRAFT_REQUIRED:
            self.fields[name].required = True

    def clean(self):
        cleaned = super().clean()
        try:
            services.validate_content(cleaned, complete=self.complete)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, errors)
        return cleaned

    def content(self) -> dict:
        return {f: self.cleaned_data.get(f) for f in services.OPERATOR_FIELDS}


class ReportForm(IncidentForm):
    """An update or the final report: the incident's fields as they now stand, plus what changed."""

    kind = forms.ChoiceField(
        label=_("Kind of report"),
        choices=[(ReportKind.UPDATE, ReportKind.UPDATE.label), (ReportKind.FINAL, ReportKind.FINAL.label)],
    )
    summary = forms.CharField(
        label=_("What changed since the last report"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )

    field_order = ["kind", "summary"]

    def clean(self):
        cleaned = super().clean()
        if self.complete and not (cleaned.get("summary") or "").strip():
            self.add_error("summary", _("Say what changed since the last report."))
        return cleaned


class CommentForm(forms.Form):
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 4}), max_length=10000)


class EvidenceForm(forms.Form):
    file = forms.FileField(label=_("File"))
    description = forms.CharField(label=_("Description"), max_length=300, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _("Accepted: %(types)s.") % {"types": ", ".join(allowed_extensions())}


class ConfirmNoticeForm(forms.Form):
    given_at = forms.DateTimeField(
        label=_("Notice given at"), widget=DATETIME_WIDGET, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    )
    note = forms.CharField(label=_("How and to whom"), max_length=300, required=False)

    def clean_given_at(self):
        value = self.cleaned_data["given_at"]
        if value > timezone.now():
            raise ValidationError(_("The time the notice was given cannot be in the future."))
        return value


class IncidentFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Status.choices]
    )
    category = forms.ChoiceField(
        label=_("Category"),
        required=False,
        choices=[("", _("All categories")), *Incident._meta.get_field("category").choices],
    )
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("All severities")), *Severity.choices]
    )


# --- Admin forms -------------------------------------------------------------------------------


class BssnMessageForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[
            (CommentKind.COMMENT, _("Reply to the operator")),
            (CommentKind.REQUEST, _("Request information (the incident awaits the operator)")),
            (CommentKind.NOTE, _("Internal note (BSSN only)")),
        ],
        widget=forms.RadioSelect,
        initial=CommentKind.COMMENT,
    )
    body = forms.CharField(
        label=_("Message"), widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), max_length=10000
    )


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"))
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), max_length=2000
    )
    duplicate_of = forms.CharField(
        label=_("Original incident (reference), for a duplicate"), required=False, max_length=20
    )

    def __init__(self, *args, targets: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_status"].choices = [(s, Status(s).label) for s in targets]

    def clean_duplicate_of(self):
        reference = self.cleaned_data["duplicate_of"].strip().upper()
        if not reference:
            return None
        original = Incident.objects.reported().filter(reference=reference).first()
        if original is None:
            raise ValidationError(_("No submitted incident has this reference."))
        return original


class WaiveForm(forms.Form):
    reason = forms.CharField(label=_("Why is this deadline waived?"), max_length=2000)


class ExtendDeadlineForm(forms.Form):
    """A supervisor moves a deadline later; the time is read in the admin's zone (WIB)."""

    due_at = forms.DateTimeField(
        label=_("New due time"), widget=DATETIME_WIDGET, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    )
    reason = forms.CharField(
        label=_("Why is this deadline extended?"), max_length=2000, widget=forms.Textarea
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Assign to"),
        queryset=services.staff_users_for_assignment(),
        required=False,
        empty_label=_("Nobody (unassign)"),
    )


class IncidentAssessmentForm(forms.ModelForm):
    """BSSN's assessment on the incident change page; the admin saves it through the services.

    The original of a duplicate is named by its reference, as analysts quote it.
    """

    duplicate_of = forms.CharField(
        label=_("Duplicate of (reference)"),
        required=False,
        max_length=20,
        help_text=_("Naming the original marks this incident a duplicate and closes it (supervisors)."),
    )
    actor = None  # set by the admin to the signed-in user

    class Meta:
        model = Incident
        fields = ["category", "bssn_severity", "tlp", "assignee", "outcome"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        original = self.instance.duplicate_of if self.instance.pk else None
        self.initial["duplicate_of"] = original.reference if original else ""
        if "assignee" in self.fields:
            self.fields["assignee"].queryset = services.staff_users_for_assignment()

    def clean_duplicate_of(self):
        reference = self.cleaned_data["duplicate_of"].strip().upper()
        if not reference:
            return None
        original = Incident.objects.reported().filter(reference=reference).first()
        if original is None:
            raise ValidationError(_("No submitted incident has this reference."))
        if original.pk == self.instance.pk:
            raise ValidationError(_("An incident cannot duplicate itself."))
        return original

    def clean(self):
        cleaned = super().clean()
        if "duplicate_of" in self.changed_data and self.actor is not None:
            incident, original = self.instance, cleaned.get("duplicate_of")
            if incident.status == Status.DUPLICATE and original is None:
                self.add_error("duplicate_of", _("A duplicate names its original; reopen it to clear this."))
            elif original is not None and not self.actor.has_perm(services.CLOSE):
                self.add_error("duplicate_of", _("Only a supervisor can mark an incident as a duplicate."))
            elif (
                original is not None
                and incident.status != Status.DUPLICATE
                and Status.DUPLICATE not in services.allowed_targets(incident=incident, user=self.actor)
            ):
                self.add_error(
                    "duplicate_of",
                    _("An incident cannot go from “%(from)s” to “%(to)s”.")
                    % {"from": incident.get_status_display(), "to": Status.DUPLICATE.label},
                )


MAX_OBSERVABLE_LINES = 500


class ObservableForm(forms.Form):
    """Bulk paste of indicators, one a line; a line in error stops the whole paste."""

    kind = forms.ChoiceField(
        label=_("Kind"),
        required=False,
        choices=[("", _("Detect from each line")), *ObservableKind.choices],
    )
    values = forms.CharField(
        label=_("Indicators"),
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        max_length=MAX_OBSERVABLE_LINES * 300,
        help_text=_(
            "One a line: IP addresses, domains, URLs, e-mail addresses, MD5/SHA-1/SHA-256 hashes. "
            "Up to 500 lines."
        ),
    )
    tlp = forms.ChoiceField(label=_("TLP"), choices=TLP.choices, initial=TLP.AMBER)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("values")
        if text is None:
            return cleaned
        if len(text.splitlines()) > MAX_OBSERVABLE_LINES:
            raise ValidationError(
                _("Paste at most %(count)d lines at once.") % {"count": MAX_OBSERVABLE_LINES}
            )
        entries, errors = parse_lines(text, kind=cleaned.get("kind") or "")
        if errors:
            self.add_error("values", errors)
        elif not entries:
            self.add_error("values", _("Paste at least one indicator."))
        cleaned["entries"] = entries
        return cleaned
