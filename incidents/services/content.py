"""The operator-written content of an incident and its reports: fields, JSON form, validation."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from ..models import Incident, IncidentReport

# The fields an operator writes: the incident form, a report's `data` and its snapshot.
OPERATOR_FIELDS = (
    "title",
    "category",
    "severity",
    "tlp",
    "reporter_name",
    "reporter_email",
    "reporter_phone",
    "technical_contact_name",
    "technical_contact_email",
    "technical_contact_phone",
    "description",
    "chronology",
    "impact_confidentiality",
    "impact_integrity",
    "impact_availability",
    "affected_systems",
    "affected_services",
    "users_affected",
    "occurred_at",
    "detected_at",
    "aware_at",
    "personal_data_involved",
    "personal_data_categories",
    "specific_data_categories",
    "data_subjects_count",
    "actions_taken",
)
DATETIME_FIELDS = frozenset({"occurred_at", "detected_at", "aware_at"})
# What a draft needs before it can be saved at all.
DRAFT_REQUIRED = ("title", "category")
# What Peraturan BSSN 1/2024 Pasal 15(4) and our triage need before a report is submitted.
SUBMIT_REQUIRED = (
    "title",
    "category",
    "severity",
    "tlp",
    "reporter_name",
    "reporter_email",
    "reporter_phone",
    "description",
    "chronology",
    "impact_confidentiality",
    "impact_integrity",
    "impact_availability",
    "affected_services",
    "detected_at",
    "aware_at",
)


def to_json_value(field: str, value):
    if field in DATETIME_FIELDS:
        return value.isoformat() if value else None
    if isinstance(value, tuple):
        return list(value)
    return value


def from_json_value(field: str, value):
    if field in DATETIME_FIELDS:
        return parse_datetime(value) if value else None
    return value


def snapshot(incident: Incident) -> dict:
    """Return the operator-written fields of `incident` as a JSON document."""
    return {f: to_json_value(f, getattr(incident, f)) for f in OPERATOR_FIELDS}


def _is_blank(value) -> bool:
    return value is None or value == "" or value == []


def validate_content(data: dict, *, complete: bool, now: datetime | None = None) -> None:
    """Raise ValidationError (per field) when `data` cannot be saved, or cannot be submitted if `complete`."""
    now = now or timezone.now()
    errors: dict[str, str] = {}
    for field in SUBMIT_REQUIRED if complete else DRAFT_REQUIRED:
        if _is_blank(data.get(field)):
            errors[field] = (
                _("This field is required to submit the report.")
                if complete
                else _("This field is required.")
            )
    if complete and data.get("personal_data_involved"):
        if not data.get("personal_data_categories") and not data.get("specific_data_categories"):
            errors["personal_data_categories"] = _("Say which personal data is involved.")
        if data.get("data_subjects_count") is None:
            errors["data_subjects_count"] = _("Give the number of data subjects (an estimate is fine).")
    labels = {
        "occurred_at": _("The time it occurred cannot be in the future."),
        "detected_at": _("The time it was detected cannot be in the future."),
        "aware_at": _("The time you became aware cannot be in the future."),
    }
    for field, message in labels.items():
        if data.get(field) and data[field] > now:
            errors.setdefault(field, message)
    occurred = data.get("occurred_at")
    for later in ("detected_at", "aware_at"):
        if occurred and data.get(later) and data[later] < occurred:
            errors.setdefault(later, _("This cannot be before the time it occurred."))
    if errors:
        raise ValidationError(errors)


def apply_content(incident: Incident, data: dict) -> list[str]:
    """Copy the operator fields present in `data` onto `incident`; return the names that changed."""
    changed = []
    for field in OPERATOR_FIELDS:
        if field in data and getattr(incident, field) != data[field]:
            setattr(incident, field, data[field])
            changed.append(field)
    return changed


def report_data(report: IncidentReport) -> dict:
    """Return a report's content with Python values (datetimes parsed)."""
    return {f: from_json_value(f, report.data.get(f)) for f in OPERATOR_FIELDS if f in report.data}
