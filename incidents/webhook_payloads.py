"""Payloads of the events sent back to an organisation's own webhook endpoints.

What BSSN did about the organisation's own incident, for its SOC tooling: the
incident's reference, its API address and status, and the event's facts — BSSN's
message text for a message or a request for information (the organisation's own
data, shown on its incident page too), the deadline for a reminder or an overdue
notice. Never here: the name or address of anyone (BSSN's analyst included), BSSN's
reasons for a status change (a duplicate's reason names another organisation's
incident), internal notes, or anything of another organisation. Times are ISO 8601
in UTC ("…Z"). The schemas (SCHEMAS) are published in docs/schemas/operator.*.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse

from portal.alerts.models import OperatorEventType

from .models import Comment, Incident, Obligation, StatusChange


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _api_url(incident: Incident) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(
        "api:incident_detail", kwargs={"reference": incident.reference}
    )


def _document(event_type: str, incident: Incident, **data) -> dict:
    return {
        "schema": f"{event_type}/1",
        "organisation": incident.operator.slug,
        "incident": {"reference": incident.reference, "url": _api_url(incident), "status": incident.status},
        **data,
    }


def status_changed(incident: Incident, change: StatusChange) -> dict:
    return _document(
        OperatorEventType.STATUS_CHANGED,
        incident,
        from_status=change.from_status,
        to_status=change.to_status,
        changed_at=_utc(change.created_at),
    )


def message(incident: Incident, comment: Comment) -> dict:
    return _document(
        OperatorEventType.MESSAGE,
        incident,
        message={"text": comment.body, "sent_at": _utc(comment.created_at)},
    )


def information_requested(incident: Incident, comment: Comment) -> dict:
    return _document(
        OperatorEventType.INFORMATION_REQUESTED,
        incident,
        message={"text": comment.body, "sent_at": _utc(comment.created_at)},
    )


def _deadline(obligation: Obligation) -> dict:
    rule = obligation.rule
    return {
        "rule": rule.code,
        "name": rule.name,
        "source": rule.legal_source,
        "due_at": _utc(obligation.due_at),
    }


def deadline_reminder(incident: Incident, obligation: Obligation) -> dict:
    return _document(OperatorEventType.DEADLINE_REMINDER, incident, deadline=_deadline(obligation))


def deadline_overdue(incident: Incident, obligation: Obligation) -> dict:
    return _document(OperatorEventType.DEADLINE_OVERDUE, incident, deadline=_deadline(obligation))


# --- JSON Schemas (draft 2020-12) of the `data` documents ------------------------------

_UTC_TIME = {"type": "string", "format": "date-time", "pattern": "Z$"}
_INCIDENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reference", "url", "status"],
    "properties": {
        "reference": {"type": "string", "pattern": r"^INS-\d{4}-\d{6,}$"},
        "url": {"type": "string", "format": "uri", "description": "The incident in the machine API."},
        "status": {"type": "string"},
    },
}
_MESSAGE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text", "sent_at"],
    "properties": {"text": {"type": "string"}, "sent_at": _UTC_TIME},
}
_DEADLINE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rule", "name", "source", "due_at"],
    "properties": {
        "rule": {"type": "string"},
        "name": {"type": "string"},
        "source": {"type": "string"},
        "due_at": _UTC_TIME,
    },
}


def _schema(event_type: str, extra: dict) -> dict:
    name = f"{event_type}/1"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "type": "object",
        "additionalProperties": False,
        "required": ["schema", "organisation", "incident", *extra],
        "properties": {
            "schema": {"const": name},
            "organisation": {"type": "string", "description": "Your organisation's slug in the portal."},
            "incident": _INCIDENT,
            **extra,
        },
    }


SCHEMAS: dict[str, dict] = {
    f"{OperatorEventType.STATUS_CHANGED}/1": _schema(
        OperatorEventType.STATUS_CHANGED,
        {"from_status": {"type": "string"}, "to_status": {"type": "string"}, "changed_at": _UTC_TIME},
    ),
    f"{OperatorEventType.MESSAGE}/1": _schema(OperatorEventType.MESSAGE, {"message": _MESSAGE}),
    f"{OperatorEventType.INFORMATION_REQUESTED}/1": _schema(
        OperatorEventType.INFORMATION_REQUESTED, {"message": _MESSAGE}
    ),
    f"{OperatorEventType.DEADLINE_REMINDER}/1": _schema(
        OperatorEventType.DEADLINE_REMINDER, {"deadline": _DEADLINE}
    ),
    f"{OperatorEventType.DEADLINE_OVERDUE}/1": _schema(
        OperatorEventType.DEADLINE_OVERDUE, {"deadline": _DEADLINE}
    ),
}
