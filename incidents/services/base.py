"""What every incident service shares: the refused-transition error, the row lock, the event outbox."""

from django.core.exceptions import ValidationError

from portal.alerts.models import Alert
from portal.alerts.operator_webhooks import emit_operator_event as _emit_to_operator
from portal.alerts.services import emit_event

from ..models import Incident


class TransitionRefused(ValidationError):
    """The requested status change is not allowed from the incident's current status."""


def locked(incident: Incident) -> Incident:
    """Take the incident's row lock and re-read it: the caller's copy may be stale."""
    Incident.objects.select_for_update().filter(pk=incident.pk).values_list("pk", flat=True).get()
    incident.refresh_from_db()
    return incident


def emit_incident_event(*, event_type: str, incident: Incident, payload: dict) -> Alert:
    """Hand an event to the alert pipeline inside the current transaction (outbox row); return the alert."""
    return emit_event(
        event_type=event_type,
        operator=incident.operator,
        payload=payload,
        province=incident.operator.province,
        subject=incident,
    )


def emit_operator_event(*, event_type: str, incident: Incident, payload: dict) -> Alert | None:
    """Send what BSSN did back to the organisation's own webhook endpoints (outbox row, same transaction).

    Only for BSSN's doings and the deadlines' beat: the organisation's own actions are
    never echoed back to it.
    """
    return _emit_to_operator(
        event_type=event_type, operator=incident.operator, payload=payload, subject=incident
    )
