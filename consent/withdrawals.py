"""The clock a consent withdrawal starts: stop processing within 3 x 24 hours (UU 27/2022 Pasal 40).

A withdrawal recorded in the ledger opens one `ProcessingStopObligation` per purpose,
in the same transaction. The operator meets it by confirming that processing stopped;
that confirmation also ends the portal's own use of the identity (exports no longer
carry the decrypted identifier of that subject's events for that purpose, up to the
withdrawal). The beat reminds before the due time and reports a missed one to the
operator and to BSSN, each notice claimed once by a conditional UPDATE of its sent
marker (as the incidents' deadline reminders). docs/decisions/0010.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import WRITE_ROLES, Membership, Operator, User
from portal.alerts.emails import plain_email
from portal.alerts.notices import queue_email
from portal.audit.services import record

from .models import (
    ConsentEvent,
    ConsentState,
    LedgerHead,
    ProcessingStopCursor,
    ProcessingStopObligation,
    stop_processing_deadline,
)

logger = logging.getLogger(__name__)

# The "due soon" reminder goes out this long before the stop deadline.
REMIND_BEFORE = timedelta(hours=24)


def _obligation_for(event: ConsentEvent) -> ProcessingStopObligation:
    due = event.stop_processing_by or stop_processing_deadline(event.event_at)
    return ProcessingStopObligation(
        operator_id=event.operator_id,
        event=event,
        purpose_code=event.purpose_code,
        due_at=due,
        remind_at=due - REMIND_BEFORE,
    )


def processing_stops_open(*, events: Iterable[ConsentEvent]) -> list[ProcessingStopObligation]:
    """Open the stop-processing obligation of each withdrawal among `events` (call in their transaction)."""
    rows = [_obligation_for(event) for event in events if event.state == ConsentState.WITHDRAWN]
    return ProcessingStopObligation.objects.bulk_create(rows)


def processing_stops_catch_up(*, now: datetime | None = None, batch: int = 50_000) -> int:
    """Open the clock of withdrawals written by other paths (the bulk importer); return how many.

    Reads each operator's new ledger events once, past its `ProcessingStopCursor`, at
    most `batch` sequence numbers per operator and run (a huge import is worked through
    over several beat runs). Only clocks still running are opened: an imported
    withdrawal whose 3 x 24 h had already passed is history the portal cannot judge,
    not a deadline to report as missed. Obligations already open are left alone.
    """
    now = now or timezone.now()
    opened = 0
    cursors = dict(ProcessingStopCursor.objects.values_list("operator_id", "last_seq"))
    for operator_id, head_seq in LedgerHead.objects.values_list("operator_id", "last_seq"):
        start = cursors.get(operator_id, 0)
        if head_seq <= start:
            continue
        end = min(head_seq, start + batch)
        events = ConsentEvent.objects.filter(
            operator_id=operator_id,
            seq__gt=start,
            seq__lte=end,
            state=ConsentState.WITHDRAWN,
            stop_processing_by__gt=now,
        ).only("record_id", "operator_id", "purpose_code", "state", "event_at", "stop_processing_by")
        with transaction.atomic():
            rows = [_obligation_for(event) for event in events.iterator(chunk_size=2000)]
            # The unique event column makes a row record_consent already wrote a no-op.
            ProcessingStopObligation.objects.bulk_create(rows, ignore_conflicts=True)
            ProcessingStopCursor.objects.update_or_create(operator_id=operator_id, defaults={"last_seq": end})
        opened += len(rows)
    return opened


def processing_stop_confirm(
    *,
    obligation: ProcessingStopObligation,
    actor: User,
    stopped_at: datetime,
    note: str = "",
    request=None,
) -> ProcessingStopObligation:
    """Record that processing stopped after a withdrawal, and end the portal's use of the identity.

    From then on exports carry no decrypted identifier for that subject's events of
    that purpose up to the withdrawal (`purged_identities`). The ledger itself stays
    append-only: its encrypted value and blind index remain as evidence of the withdrawal.
    """
    if not Membership.objects.filter(
        user=actor, operator_id=obligation.operator_id, role__in=WRITE_ROLES
    ).exists():
        raise PermissionDenied(_("You are not allowed to do this."))
    now = timezone.now()
    if stopped_at > now:
        raise ValidationError({"stopped_at": _("The time processing stopped cannot be in the future.")})
    with transaction.atomic():
        claimed = (
            ProcessingStopObligation.objects.open()
            .filter(pk=obligation.pk)
            .update(met_at=stopped_at, met_note=note[:300], confirmed_by=actor, confirmed_at=now)
        )
        if not claimed:
            raise ValidationError(_("Processing was already confirmed as stopped for this withdrawal."))
        record(
            action="consent.processing_stopped",
            actor=actor,
            operator=obligation.operator,
            changes={
                "withdrawal": str(obligation.event_id),
                "purpose": obligation.purpose_code,
                "stopped_at": stopped_at.isoformat(),
                "on_time": stopped_at <= obligation.due_at,
            },
            request=request,
        )
    obligation.refresh_from_db()
    return obligation


def purged_identities(*, operator: Operator) -> dict[tuple[str, str], int]:
    """Return {(subject_index, purpose): last purged seq} for the operator's confirmed stops.

    The subject's current blind index is read through the withdrawal event, so the
    answer survives a `rotate_keys`.
    """
    rows = (
        ProcessingStopObligation.objects.for_operator(operator)
        .filter(met_at__isnull=False)
        .values("event__subject_index", "purpose_code")
        .annotate(seq=Max("event__seq"))
    )
    return {(r["event__subject_index"], r["purpose_code"]): r["seq"] for r in rows}


def is_purged(purged: dict[tuple[str, str], int], event: ConsentEvent) -> bool:
    """Return whether `event`'s identity is no longer used by the portal (see `purged_identities`)."""
    return purged.get((event.subject_index, event.purpose_code), -1) >= event.seq


# --- Reminders and overdue notices (beat) ------------------------------------------------


def _operator_recipients(operator_id: int) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True, memberships__operator_id=operator_id, memberships__role__in=WRITE_ROLES
        ).order_by("email")
    )


def _mail_operator(obligation: ProcessingStopObligation, template: str) -> None:
    operator = obligation.operator
    url = settings.SITE_URL.rstrip("/") + reverse("consent:deadlines", args=[operator.slug])
    for user in _operator_recipients(operator.pk):
        message = plain_email(
            to=[user.email],
            template=f"consent/emails/{template}",
            context={"obligation": obligation, "operator": operator, "url": url, "recipient": user},
            language=user.language or settings.LANGUAGE_CODE,
        )
        queue_email(message, template=f"consent/{template}", operator=operator)


def _mail_bssn(obligation: ProcessingStopObligation, template: str) -> None:
    recipients = list(settings.BSSN_NOTIFY_EMAILS)
    if not recipients:
        return
    message = plain_email(
        to=recipients,
        template=f"consent/emails/{template}",
        context={"obligation": obligation, "operator": obligation.operator},
        language=settings.LANGUAGE_CODE,
    )
    queue_email(message, template=f"consent/{template}", operator=obligation.operator)


def send_processing_stop_reminder(*, obligation_id: int, now: datetime) -> bool:
    """Send the "stop processing soon" reminder once: the conditional UPDATE claims it."""
    with transaction.atomic():
        if not ProcessingStopObligation.objects.claim_reminder(obligation_id, now):
            return False
        obligation = ProcessingStopObligation.objects.select_related("operator").get(pk=obligation_id)
        _mail_operator(obligation, "processing_stop_reminder")
    return True


def send_processing_stop_overdue(*, obligation_id: int, now: datetime) -> bool:
    """Report a missed stop deadline once, to the operator and to BSSN."""
    with transaction.atomic():
        if not ProcessingStopObligation.objects.claim_overdue(obligation_id, now):
            return False
        obligation = ProcessingStopObligation.objects.select_related("operator").get(pk=obligation_id)
        _mail_operator(obligation, "processing_stop_missed")
        _mail_bssn(obligation, "bssn_processing_stop_missed")
    return True


def send_processing_stop_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Send every stop-processing reminder and overdue notice that is due and not yet sent.

    First opens the clocks of withdrawals the importer wrote (`processing_stops_catch_up`).
    Selected by "due ≤ now and not yet sent", never by an exact elapsed time, so a
    late beat run catches up and a doubled run sends nothing twice. A run that first
    sees an obligation after its due time sends the overdue notice only.
    """
    now = now or timezone.now()
    processing_stops_catch_up(now=now)
    sent = {"reminders": 0, "overdue": 0}
    candidates = ProcessingStopObligation.objects.open()
    for pk in candidates.filter(overdue_sent_at__isnull=True, due_at__lte=now).values_list("pk", flat=True):
        sent["overdue"] += send_processing_stop_overdue(obligation_id=pk, now=now)
    soon = candidates.filter(reminder_sent_at__isnull=True, remind_at__lte=now, due_at__gt=now)
    for pk in soon.values_list("pk", flat=True):
        sent["reminders"] += send_processing_stop_reminder(obligation_id=pk, now=now)
    if sent["reminders"] or sent["overdue"]:
        logger.info("processing-stop reminders sent: %(reminders)d, overdue notices: %(overdue)d", sent)
    return sent


# --- Counting ----------------------------------------------------------------------------


def processing_stop_compliance(*, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Count stop-processing deadlines per sector and month of the due time (Jakarta time).

    Each row: sector, month, total, on_time, late, missed (past due, unconfirmed),
    pending — the same columns as the incidents' `deadline_compliance`.
    """
    now = timezone.now()
    rows = ProcessingStopObligation.objects.all()
    if since:
        rows = rows.filter(due_at__gte=since)
    if until:
        rows = rows.filter(due_at__lt=until)
    return list(
        rows.annotate(month=TruncMonth("due_at"))
        .values("operator__sector", "month")
        .annotate(
            total=Count("pk"),
            on_time=Count("pk", filter=Q(met_at__isnull=False, met_at__lte=models.F("due_at"))),
            late=Count("pk", filter=Q(met_at__gt=models.F("due_at"))),
            missed=Count("pk", filter=Q(met_at__isnull=True, due_at__lte=now)),
            pending=Count("pk", filter=Q(met_at__isnull=True, due_at__gt=now)),
        )
        .order_by("month", "operator__sector")
    )
