"""What every incident service shares: the refused-transition error, the row lock, the event outbox."""

from django.core.exceptions import ValidationError

from portal.alerts.models import Alert
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
