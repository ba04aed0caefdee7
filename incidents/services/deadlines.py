"""Deadline obligations: opened from the rules, kept current, met, confirmed, waived, counted."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import record

from ..models import Anchor, AppliesWhen, DeadlineRule, Incident, MetBy, Obligation
from ..permissions import EXTEND, WAIVE, require_perm, require_writer


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

    A draft's obligations follow its facts both ways, and it loses those that stop
    applying. Once the incident is submitted, an operator's corrected facts (an
    update or final report) only ever move an open deadline EARLIER: an operator
    cannot postpone its own deadline; only a BSSN supervisor extends one
    (`obligation_extend`), and an extended deadline no longer follows the facts.
    A submitted incident never loses an obligation (BSSN waives instead). Met and
    waived obligations are history and are left alone.
    """
    existing = {o.rule_id: o for o in incident.obligations.all()}
    now = timezone.now()
    for rule in DeadlineRule.objects.filter(is_active=True):
        obligation = existing.get(rule.pk)
        anchor = _anchor_time(rule, incident)
        if not _rule_applies(rule, incident) or anchor is None:
            if obligation is not None and obligation.is_open and incident.is_draft:
                obligation.delete()
            continue
        due = anchor + rule.period
        if obligation is None:
            Obligation.objects.create(
                incident=incident, rule=rule, due_at=due, remind_at=due - rule.remind_before
            )
            continue
        if not obligation.is_open or due == obligation.due_at:
            continue
        if not incident.is_draft and (due > obligation.due_at or obligation.extended_at):
            continue
        move_due(obligation, due_at=due, now=now)
        obligation.save(update_fields=["due_at", "remind_at", "reminder_sent_at", "overdue_sent_at"])
    refresh_next_due(incident)


def move_due(obligation: Obligation, *, due_at: datetime, now: datetime) -> None:
    """Set a new due time and reminder time on `obligation` (unsaved) and re-arm what must go out again.

    A reminder already sent goes out again only if its new time is still ahead: the
    operator then hears the corrected time when it matters, and a move that lands
    past the reminder time does not send a second "due soon" at once (the page
    shows the new time; the overdue notice follows if it is missed). An overdue
    notice is re-armed only when the deadline is no longer past (an extension).
    When the due time does not move, nothing is reset.
    """
    if due_at == obligation.due_at:
        return
    obligation.due_at = due_at
    obligation.remind_at = due_at - obligation.rule.remind_before
    if obligation.reminder_sent_at and obligation.remind_at > now:
        obligation.reminder_sent_at = None
    if obligation.overdue_sent_at and due_at > now:
        obligation.overdue_sent_at = None


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


def obligation_extend(
    *, obligation: Obligation, actor: User, due_at: datetime, reason: str, request=None
) -> Obligation:
    """Move an open deadline later (BSSN supervisors only), recording who, why and from when.

    The only way a deadline moves later once the incident is submitted; operator
    edits only move it earlier (`sync_obligations`). The audit event keeps every
    extension with the old and new due time; the obligation keeps the latest.
    """
    require_perm(actor, EXTEND)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the deadline is extended.")})
    with transaction.atomic():
        obligation = (
            Obligation.objects.select_for_update()
            .select_related("rule", "incident__operator")
            .get(pk=obligation.pk)
        )
        if not obligation.is_open:
            raise ValidationError(_("This deadline is already met or waived."))
        if due_at <= obligation.due_at:
            raise ValidationError({"due_at": _("An extension must be later than the current due time.")})
        old_due = obligation.due_at
        now = timezone.now()
        move_due(obligation, due_at=due_at, now=now)
        obligation.extended_at, obligation.extended_by, obligation.extension_reason = now, actor, reason
        obligation.save(
            update_fields=[
                "due_at",
                "remind_at",
                "reminder_sent_at",
                "overdue_sent_at",
                "extended_at",
                "extended_by",
                "extension_reason",
            ]
        )
        refresh_next_due(obligation.incident)
        record(
            action="incident.obligation_extended",
            actor=actor,
            operator=obligation.incident.operator,
            target=obligation.incident,
            changes={
                "rule": obligation.rule.code,
                "due_at": [old_due.isoformat(), due_at.isoformat()],
                "reason": reason,
            },
            request=request,
        )
    return obligation


def deadline_compliance(*, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Count deadlines per sector, month (of the due time, in Jakarta time) and rule.

    Each row: sector, month, rule, total, on_time, late, missed (overdue and still
    open), waived, pending, and extended (moved later by a supervisor; on time
    counts against the extended due time). "Reported within deadline" is `on_time`.
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
            extended=Count("pk", filter=Q(extended_at__isnull=False)),
            missed=Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__lte=now)),
            pending=Count("pk", filter=Q(met_at__isnull=True, waived_at__isnull=True, due_at__gt=now)),
        )
        .order_by("month", "incident__operator__sector", "rule__code")
    )
