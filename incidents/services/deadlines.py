"""Deadline obligations: opened from the rules, kept current, met, confirmed, waived, counted."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import record

from ..models import Anchor, AppliesWhen, DeadlineRule, Incident, MetBy, Obligation
from ..permissions import WAIVE, require_perm, require_writer


def _rule_applies(rule: DeadlineRule, incident: Incident) -> bool:
    if rule.applies_when == AppliesWhen.IIV:
        return incident.operator.is_iiv
    if rule.applies_when == AppliesWhen.PERSONAL_DATA:
        return incident.personal_data_involved
    return True


ANCHOR_FIELDS = {
    # Peraturan BSSN 1/2024 Pasal 15(5): "1 x 24 jam setelah ditemukan" — from discovery.
    Anchor.DETECTED_AT: "detected_at",
    # UU 27/2022 (PDP) Pasal 46(1): from when the controller knows of the failure.
    Anchor.AWARE_AT: "aware_at",
    Anchor.INITIAL_REPORT: "submitted_at",
}


def _anchor_time(rule: DeadlineRule, incident: Incident) -> datetime | None:
    """Return the moment `rule` counts from for `incident` (None while it is unknown)."""
    return getattr(incident, ANCHOR_FIELDS[rule.anchor])


def sync_obligations(incident: Incident) -> None:
    """Give `incident` one obligation per applicable active rule and keep open ones' due times current.

    A draft loses obligations that stop applying (the operator corrected the facts);
    a submitted incident never loses one (BSSN waives instead). Met and waived
    obligations are history and are left alone.
    """
    existing = {o.rule_id: o for o in incident.obligations.all()}
    for rule in DeadlineRule.objects.filter(is_active=True):
        obligation = existing.get(rule.pk)
        anchor = _anchor_time(rule, incident)
        if not _rule_applies(rule, incident) or anchor is None:
            if obligation is not None and obligation.is_open and incident.is_draft:
                obligation.delete()
            continue
        due = anchor + rule.period
        remind_at = due - timedelta(hours=rule.remind_before_hours)
        if obligation is None:
            Obligation.objects.create(incident=incident, rule=rule, due_at=due, remind_at=remind_at)
        elif obligation.is_open and obligation.due_at != due:
            # A corrected clock is a new deadline: its reminders go out again.
            obligation.due_at, obligation.remind_at = due, remind_at
            obligation.reminder_sent_at = obligation.overdue_sent_at = None
            obligation.save(update_fields=["due_at", "remind_at", "reminder_sent_at", "overdue_sent_at"])
    refresh_next_due(incident)


def refresh_next_due(incident: Incident) -> None:
    """Store on the incident the earliest due time of its open obligations (None when none is open).

    Called by every write that opens, meets, waives or moves an obligation.
    """
    earliest = (
        Obligation.objects.open()
        .filter(incident=incident)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    incident.next_due_at = earliest
    Incident.objects.filter(pk=incident.pk).update(next_due_at=earliest)


def meet_obligations(incident: Incident, met_by: str, at: datetime) -> None:
    Obligation.objects.open().filter(incident=incident, rule__met_by=met_by).update(met_at=at)
    refresh_next_due(incident)


def confirm_notice(
    *, obligation: Obligation, actor: User, given_at: datetime, note: str = "", request=None
) -> Obligation:
    """Record, for the operator, that a notice obligation (e.g. UU PDP Pasal 46) was fulfilled."""
    incident = obligation.incident
    require_writer(actor, incident.operator)
    if obligation.rule.met_by != MetBy.OPERATOR_CONFIRMATION:
        raise ValidationError(_("This deadline is met by a report, not by a confirmation."))
    if given_at > timezone.now():
        raise ValidationError({"given_at": _("The time the notice was given cannot be in the future.")})
    with transaction.atomic():
        claimed = (
            Obligation.objects.open().filter(pk=obligation.pk).update(met_at=given_at, met_note=note[:300])
        )
        if not claimed:
            raise ValidationError(_("This deadline is already met or waived."))
        refresh_next_due(incident)
        record(
            action="incident.obligation_met",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"rule": obligation.rule.code, "met_at": given_at.isoformat()},
            request=request,
        )
    obligation.refresh_from_db()
    return obligation


def waive_obligation(*, obligation: Obligation, actor: User, reason: str, request=None) -> Obligation:
    """Waive a deadline (supervisors only), recording who and why."""
    require_perm(actor, WAIVE)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the deadline is waived.")})
    with transaction.atomic():
        claimed = (
            Obligation.objects.open()
            .filter(pk=obligation.pk)
            .update(waived_at=timezone.now(), waived_by=actor, waiver_reason=reason)
        )
        if not claimed:
            raise ValidationError(_("This deadline is already met or waived."))
        refresh_next_due(obligation.incident)
        record(
            action="incident.obligation_waived",
            actor=actor,
            operator=obligation.incident.operator,
            target=obligation.incident,
            changes={"rule": obligation.rule.code, "reason": reason},
            request=request,
        )
    obligation.refresh_from_db()
    return obligation


def deadline_compliance(*, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Count deadlines per sector, month (of the due time, in Jakarta time) and rule.

    Each row: sector, month, rule, total, on_time, late, missed (overdue and still
    open), waived, pending. "Reported within deadline" is `on_time`.
    """
    now = timezone.now()
    rows = Obligation.objects.filter(incident__submitted_at__isnull=False)
    if since:
        rows = rows.filter(due_at__gte=since)
    if until:
        rows = rows.filter(due_at__lt=until)
    return list(
        rows.annotate(month=TruncMonth("due_at"))
        .values("incident__operator__sector", "month", "rule__code", "rule__name")
        .annotate(
            total=Count("pk"),
            on_time=Count("pk", filter=Q(met_at__isnull=False, met_at__lte=models.F("due_at"))),
            late=Count("pk", filter=Q(met_at__gt=models.F("due_at"))),
            waived=Count("pk", filter=Q(waived_at__isnull=False)),
            missed=Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__lte=now)),
            pending=Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__gt=now)),
        )
        .order_by("month", "incident__operator__sector", "rule__code")
    )
