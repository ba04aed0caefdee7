"""Deadline reminders and overdue notices, sent by beat; each claimed once by a conditional UPDATE."""

import logging
from datetime import datetime

from django.db import models, transaction
from django.utils import timezone

from portal.alerts.models import OperatorEventType

from .. import payloads, webhook_payloads
from ..models import CLOSING_STATUSES, Obligation
from .base import emit_incident_event, emit_operator_event
from .notify import mail_bssn, mail_operator

logger = logging.getLogger(__name__)


def _reminder_candidates() -> models.QuerySet:
    return Obligation.objects.open().exclude(incident__status__in=CLOSING_STATUSES)


def send_reminder(*, obligation_id: int, now: datetime) -> bool:
    """Send the "due soon" reminder once: the conditional UPDATE claims it; False if already sent."""
    with transaction.atomic():
        if not Obligation.objects.claim_reminder(obligation_id, now):
            return False
        obligation = Obligation.objects.select_related("rule", "incident__operator").get(pk=obligation_id)
        incident = obligation.incident
        mail_operator(incident, "deadline_reminder", {"obligation": obligation})
        emit_operator_event(
            event_type=OperatorEventType.DEADLINE_REMINDER,
            incident=incident,
            payload=webhook_payloads.deadline_reminder(incident, obligation),
        )
    return True


def send_overdue_notice(*, obligation_id: int, now: datetime) -> bool:
    """Send the "deadline missed" notice once; BSSN hears of it only for a submitted incident."""
    with transaction.atomic():
        if not Obligation.objects.claim_overdue(obligation_id, now):
            return False
        obligation = Obligation.objects.select_related("rule", "incident__operator").get(pk=obligation_id)
        incident = obligation.incident
        mail_operator(incident, "deadline_missed", {"obligation": obligation})
        emit_operator_event(
            event_type=OperatorEventType.DEADLINE_OVERDUE,
            incident=incident,
            payload=webhook_payloads.deadline_overdue(incident, obligation),
        )
        if not incident.is_draft:
            alert = emit_incident_event(
                event_type="incident.deadline_missed",
                incident=incident,
                payload=payloads.deadline_missed(incident, obligation),
            )
            mail_bssn(incident, "bssn_deadline_missed", {"obligation": obligation}, alert=alert)
    return True


def send_due_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Send every reminder and overdue notice that is due and not yet sent (idempotent, catch-up safe).

    Selects by "due ≤ now and not yet sent", never by an exact elapsed time, so a late
    beat run catches up; the per-row claim makes a doubled run send nothing twice.
    A reminder whose deadline passed before any run saw it is superseded by the
    overdue notice instead of announcing a time already gone.
    """
    now = now or timezone.now()
    sent = {"reminders": 0, "overdue": 0}
    candidates = _reminder_candidates()
    for pk in candidates.filter(overdue_sent_at__isnull=True, due_at__lte=now).values_list("pk", flat=True):
        sent["overdue"] += send_overdue_notice(obligation_id=pk, now=now)
    soon = candidates.filter(reminder_sent_at__isnull=True, remind_at__lte=now, due_at__gt=now)
    for pk in soon.values_list("pk", flat=True):
        sent["reminders"] += send_reminder(obligation_id=pk, now=now)
    if sent["reminders"] or sent["overdue"]:
        logger.info("deadline reminders sent: %(reminders)d, overdue notices: %(overdue)d", sent)
    return sent
