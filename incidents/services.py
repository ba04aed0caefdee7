"""Every multi-step write on incidents: filing, staged reports, lifecycle, deadlines, conversation.

Each public function is keyword-only and runs in one transaction: the domain rows,
the audit event, the alert-pipeline event and the e-mails to people (notices, in the
outbox of portal.alerts.notices) are written together; a worker sends them after commit.
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
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from portal.accounts.models import WRITE_ROLES, Membership, Operator, User
from portal.alerts.notices import plain_email, queue_email
from portal.alerts.services import emit_event
from portal.audit.services import record

from . import payloads
from .evidence import check_upload
from .models import (
    CLOSING_STATUSES,
    HIGH_SEVERITIES,
    REASON_ANSWERED,
    REASON_REQUESTED,
    Anchor,
    AppliesWhen,
    Comment,
    CommentKind,
    DeadlineRule,
    Evidence,
    Incident,
    IncidentReport,
    MetBy,
    Obligation,
    ReferenceCounter,
    ReportKind,
    Status,
    StatusChange,
)

logger = logging.getLogger(__name__)

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

TRIAGE = "incidents.triage_incident"
CLOSE = "incidents.close_incident"
REOPEN = "incidents.reopen_incident"
WAIVE = "incidents.waive_obligation"
INTERNAL_NOTE = "incidents.add_internal_note"

_ACTIVE = (Status.SUBMITTED, Status.TRIAGE, Status.IN_PROGRESS, Status.AWAITING_OPERATOR)
# Transitions BSSN makes from the admin: (from, to) -> the permission it takes.
# Submitting, asking for information and answering have their own services.
STAFF_TRANSITIONS: dict[tuple[str, str], str] = {
    (Status.SUBMITTED, Status.TRIAGE): TRIAGE,
    (Status.SUBMITTED, Status.IN_PROGRESS): TRIAGE,
    (Status.TRIAGE, Status.IN_PROGRESS): TRIAGE,
    (Status.AWAITING_OPERATOR, Status.TRIAGE): TRIAGE,
    (Status.AWAITING_OPERATOR, Status.IN_PROGRESS): TRIAGE,
    **{(s, Status.RESOLVED): TRIAGE for s in _ACTIVE},
    **{(s, to): CLOSE for s in (*_ACTIVE, Status.RESOLVED) for to in CLOSING_STATUSES},
    **{(s, Status.TRIAGE): REOPEN for s in (Status.RESOLVED, *CLOSING_STATUSES)},
}
REQUEST_FROM = frozenset({Status.SUBMITTED, Status.TRIAGE, Status.IN_PROGRESS})


class TransitionRefused(ValidationError):
    """The requested status change is not allowed from the incident's current status."""


# --- Small helpers -------------------------------------------------------------------


def _require_perm(user: User, perm: str) -> None:
    if not (user.is_active and user.is_staff and user.has_perm(perm)):
        raise PermissionDenied(_("You are not allowed to do this."))


def _require_writer(user: User, operator: Operator) -> None:
    if not Membership.objects.filter(user=user, operator=operator, role__in=WRITE_ROLES).exists():
        raise PermissionDenied(_("You are not allowed to do this."))


def _locked(incident: Incident) -> Incident:
    """Take the incident's row lock and re-read it: the caller's copy may be stale."""
    Incident.objects.select_for_update().filter(pk=incident.pk).values_list("pk", flat=True).get()
    incident.refresh_from_db()
    return incident


def _emit(*, event_type: str, incident: Incident, payload: dict) -> None:
    """Hand an event to the alert pipeline inside the current transaction (outbox row)."""
    emit_event(
        event_type=event_type,
        operator=incident.operator,
        payload=payload,
        province=incident.operator.province,
        subject=incident,
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


# --- Reference numbers ------------------------------------------------------------------


def next_reference(*, now: datetime | None = None) -> str:
    """Return the next INS-YYYY-NNNNNN; call inside the creating transaction.

    The year's head row is locked (select_for_update) until that transaction ends, so
    two concurrent filings never get the same number and a rolled-back one never
    reuses a number another transaction has seen.
    """
    year = timezone.localtime(now or timezone.now()).year
    ReferenceCounter.objects.bulk_create([ReferenceCounter(year=year)], ignore_conflicts=True)
    counter = ReferenceCounter.objects.select_for_update().get(year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"INS-{year}-{counter.last_number:06d}"


# --- Deadlines ------------------------------------------------------------------------------


def _rule_applies(rule: DeadlineRule, incident: Incident) -> bool:
    if rule.applies_when == AppliesWhen.IIV:
        return incident.operator.is_iiv
    if rule.applies_when == AppliesWhen.PERSONAL_DATA:
        return incident.personal_data_involved
    return True


def _anchor_time(rule: DeadlineRule, incident: Incident) -> datetime | None:
    return incident.aware_at if rule.anchor == Anchor.AWARE_AT else incident.submitted_at


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


def _meet(incident: Incident, met_by: str, at: datetime) -> None:
    Obligation.objects.open().filter(incident=incident, rule__met_by=met_by).update(met_at=at)
    refresh_next_due(incident)


def confirm_notice(
    *, obligation: Obligation, actor: User, given_at: datetime, note: str = "", request=None
) -> Obligation:
    """Record, for the operator, that a notice obligation (e.g. UU PDP Pasal 46) was fulfilled."""
    incident = obligation.incident
    _require_writer(actor, incident.operator)
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
    _require_perm(actor, WAIVE)
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


# --- E-mails to people (outbox, sent by a worker) ----------------------------------------------------------


def _operator_recipients(incident: Incident) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True, memberships__operator_id=incident.operator_id, memberships__role__in=WRITE_ROLES
        ).order_by("email")
    )


def _mail_operator(incident: Incident, template: str, context: dict) -> None:
    """E-mail the organisation's admins and reporters, each in their own language (sent after commit)."""
    url = settings.SITE_URL.rstrip("/") + incident.get_absolute_url()
    base = {"incident": incident, "operator": incident.operator, "url": url, **context}
    for user in _operator_recipients(incident):
        message = plain_email(
            to=[user.email],
            template=f"incidents/emails/{template}",
            context={**base, "recipient": user},
            language=user.language or settings.LANGUAGE_CODE,
        )
        queue_email(message, template=f"incidents/{template}", operator=incident.operator)


def _mail_bssn(incident: Incident, template: str, context: dict) -> None:
    """E-mail BSSN's notification addresses (settings.BSSN_NOTIFY_EMAILS) (outbox: sent after commit)."""
    recipients = list(settings.BSSN_NOTIFY_EMAILS)
    if not recipients:
        return
    url = settings.SITE_URL.rstrip("/") + reverse("admin:incidents_incident_change", args=[incident.pk])
    message = plain_email(
        to=recipients,
        template=f"incidents/emails/{template}",
        context={"incident": incident, "operator": incident.operator, "url": url, **context},
        language=settings.LANGUAGE_CODE,
    )
    queue_email(message, template=f"incidents/{template}", operator=incident.operator)


# --- Filing and staged reports ----------------------------------------------------------------


def _apply(incident: Incident, data: dict) -> list[str]:
    changed = []
    for field in OPERATOR_FIELDS:
        if field in data and getattr(incident, field) != data[field]:
            setattr(incident, field, data[field])
            changed.append(field)
    return changed


def create_incident(*, operator: Operator, actor: User, data: dict, request=None) -> Incident:
    """Create a draft incident with a new reference number."""
    _require_writer(actor, operator)
    validate_content(data, complete=False)
    with transaction.atomic():
        incident = Incident(operator=operator, created_by=actor, reference=next_reference())
        _apply(incident, data)
        incident.save()
        StatusChange.objects.create(incident=incident, from_status="", to_status=Status.DRAFT, actor=actor)
        sync_obligations(incident)
        record(
            action="incident.create",
            actor=actor,
            operator=operator,
            target=incident,
            changes={"status": Status.DRAFT},
            request=request,
        )
    return incident


def update_draft(*, incident: Incident, actor: User, data: dict, request=None) -> Incident:
    """Save changes to a draft incident (only drafts are edited in place)."""
    _require_writer(actor, incident.operator)
    validate_content(data, complete=False)
    with transaction.atomic():
        _locked(incident)
        if not incident.is_draft:
            raise TransitionRefused(_("Only a draft can be edited; add an update to a submitted incident."))
        changed = _apply(incident, data)
        if changed:
            incident.save()
            sync_obligations(incident)
            record(
                action="incident.update_draft",
                actor=actor,
                operator=incident.operator,
                target=incident,
                changes={"fields": changed},
                request=request,
            )
    return incident


def submit_incident(*, incident: Incident, actor: User, request=None) -> Incident:
    """Submit a draft as the initial report: freeze it as report #1 and start the BSSN workflow."""
    _require_writer(actor, incident.operator)
    with transaction.atomic():
        _locked(incident)
        if not incident.is_draft:
            raise TransitionRefused(_("This incident has already been submitted."))
        validate_content({f: getattr(incident, f) for f in OPERATOR_FIELDS}, complete=True)
        now = timezone.now()
        incident.submitted_at = now
        report = IncidentReport.objects.create(
            incident=incident,
            kind=ReportKind.INITIAL,
            number=1,
            data=snapshot(incident),
            created_by=actor,
            submitted_by=actor,
            submitted_at=now,
        )
        change = _record_transition(
            incident, Status.SUBMITTED, actor=actor, by_bssn=False, reason="", request=request
        )
        sync_obligations(incident)
        _meet(incident, MetBy.INITIAL_REPORT, now)
        _emit(event_type="incident.submitted", incident=incident, payload=payloads.submitted(incident))
        if incident.effective_severity in HIGH_SEVERITIES:
            _mail_bssn(incident, "bssn_new_incident", {"report": report, "change": change})
    return incident


def save_report_draft(
    *, incident: Incident, actor: User, kind: str, data: dict, summary: str = "", request=None
) -> IncidentReport:
    """Create or update the incident's one draft update or final report."""
    _require_writer(actor, incident.operator)
    validate_content(data, complete=False)
    with transaction.atomic():
        _locked(incident)
        _check_can_report(incident, kind)
        payload = {f: to_json_value(f, data.get(f)) for f in OPERATOR_FIELDS}
        report = incident.reports.filter(submitted_at__isnull=True).first()
        if report is None:
            report = IncidentReport(incident=incident, created_by=actor)
        report.kind, report.data, report.summary = kind, payload, summary
        report.save()
        record(
            action="incident.report_draft",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": kind},
            request=request,
        )
    return report


def _check_can_report(incident: Incident, kind: str) -> None:
    if incident.is_draft:
        raise TransitionRefused(_("Submit the initial report first."))
    if incident.is_closed:
        raise TransitionRefused(_("This incident is closed; ask BSSN to reopen it to add a report."))
    if kind not in (ReportKind.UPDATE, ReportKind.FINAL):
        raise ValidationError(_("Choose an update or the final report."))
    if (
        kind == ReportKind.FINAL
        and incident.reports.filter(kind=ReportKind.FINAL, submitted_at__isnull=False).exists()
    ):
        raise TransitionRefused(_("The final report has already been submitted; add an update instead."))


def report_data(report: IncidentReport) -> dict:
    """Return a report's content with Python values (datetimes parsed)."""
    return {f: from_json_value(f, report.data.get(f)) for f in OPERATOR_FIELDS if f in report.data}


def submit_report(*, report: IncidentReport, actor: User, request=None) -> IncidentReport:
    """Submit a draft update or final report: apply it to the incident and freeze it as a version."""
    incident = report.incident
    _require_writer(actor, incident.operator)
    with transaction.atomic():
        _locked(incident)
        report = IncidentReport.objects.select_for_update().get(pk=report.pk)
        if not report.is_draft:
            raise TransitionRefused(_("This report has already been submitted."))
        _check_can_report(incident, report.kind)
        data = report_data(report)
        validate_content(data, complete=True)
        changed = _apply(incident, data)
        incident.save()
        now = timezone.now()
        report.number = (incident.reports.aggregate(n=Max("number"))["n"] or 0) + 1
        report.submitted_at, report.submitted_by = now, actor
        report.data = snapshot(incident)
        # Saved through the queryset: the model refuses to save a submitted report.
        IncidentReport.objects.filter(pk=report.pk).update(
            number=report.number, submitted_at=now, submitted_by=actor, data=report.data
        )
        sync_obligations(incident)
        if report.kind == ReportKind.FINAL:
            _meet(incident, MetBy.FINAL_REPORT, now)
        record(
            action="incident.report_submit",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": report.kind, "number": report.number, "fields": changed},
            request=request,
        )
        _emit(
            event_type="incident.report_added",
            incident=incident,
            payload=payloads.report_added(incident, report),
        )
    return report


# --- Lifecycle ------------------------------------------------------------------------------


def _record_transition(
    incident: Incident, to_status: str, *, actor: User, by_bssn: bool, reason: str, request=None
) -> StatusChange:
    """Move the (locked) incident to `to_status` and record who, when, from, to and why."""
    from_status = incident.status
    now = timezone.now()
    incident.status = to_status
    if to_status in CLOSING_STATUSES:
        incident.closed_at = now
    elif from_status in CLOSING_STATUSES:
        incident.closed_at = None
    if to_status != Status.DUPLICATE:
        incident.duplicate_of = None
    incident.save()
    change = StatusChange.objects.create(
        incident=incident,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        by_bssn=by_bssn,
        reason=reason,
        created_at=now,
    )
    record(
        action="incident.status",
        actor=actor,
        operator=incident.operator,
        target=incident,
        changes={"status": {"old": from_status, "new": to_status}, "reason": reason},
        request=request,
    )
    if to_status != Status.SUBMITTED:
        _emit(
            event_type="incident.status_changed",
            incident=incident,
            payload=payloads.status_changed(incident, change),
        )
    return change


def allowed_targets(*, incident: Incident, user: User) -> list[str]:
    """Return the statuses `user` may move `incident` to from the admin, in lifecycle order."""
    return [
        to for to in Status if (perm := STAFF_TRANSITIONS.get((incident.status, to))) and user.has_perm(perm)
    ]


def change_status(
    *,
    incident: Incident,
    actor: User,
    to_status: str,
    reason: str,
    duplicate_of: Incident | None = None,
    request=None,
) -> StatusChange:
    """Move an incident along the lifecycle on BSSN's behalf, guarded by role, with a reason."""
    reason = reason.strip()
    if not actor.is_staff:
        raise PermissionDenied(_("You are not allowed to do this."))
    with transaction.atomic():
        _locked(incident)
        perm = STAFF_TRANSITIONS.get((incident.status, to_status))
        if perm is None:
            raise TransitionRefused(
                _("An incident cannot go from “%(from)s” to “%(to)s”.")
                % {
                    "from": Status(incident.status).label,
                    "to": Status(to_status).label if to_status in Status.values else to_status,
                }
            )
        _require_perm(actor, perm)
        if not reason:
            raise ValidationError({"reason": _("Give a reason for the change.")})
        if to_status == Status.DUPLICATE:
            if duplicate_of is None or duplicate_of.pk == incident.pk or duplicate_of.is_draft:
                raise ValidationError({"duplicate_of": _("Name the original incident this one duplicates.")})
            incident.duplicate_of = duplicate_of
        change = _record_transition(
            incident, to_status, actor=actor, by_bssn=True, reason=reason, request=request
        )
        _mail_operator(incident, "status_changed", {"change": change})
    return change


def assign(*, incident: Incident, actor: User, assignee: User | None, request=None) -> Incident:
    """Assign (or unassign) a BSSN analyst."""
    _require_perm(actor, TRIAGE)
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise ValidationError(_("Only active BSSN staff can be assigned."))
    with transaction.atomic():
        _locked(incident)
        old = incident.assignee_id
        if old != (assignee.pk if assignee else None):
            incident.assignee = assignee
            incident.save(update_fields=["assignee", "updated_at"])
            record(
                action="incident.assign",
                actor=actor,
                operator=incident.operator,
                target=incident,
                changes={"assignee": {"old": old, "new": assignee.pk if assignee else None}},
                request=request,
            )
    return incident


BSSN_FIELDS = ("category", "bssn_severity", "tlp", "outcome")


def update_assessment(*, incident: Incident, actor: User, data: dict, request=None) -> list[str]:
    """Save BSSN's assessment fields (reclassification, severity, TLP, outcome) and the assignee."""
    _require_perm(actor, "incidents.change_incident")
    with transaction.atomic():
        _locked(incident)
        changes = {}
        for field in BSSN_FIELDS:
            if field in data and getattr(incident, field) != data[field]:
                changes[field] = {"old": getattr(incident, field), "new": data[field]}
                setattr(incident, field, data[field])
        if changes:
            incident.save()
            record(
                action="incident.assess",
                actor=actor,
                operator=incident.operator,
                target=incident,
                changes=changes,
                request=request,
            )
        if "assignee" in data and data["assignee"] != incident.assignee:
            assign(incident=incident, actor=actor, assignee=data["assignee"], request=request)
            changes["assignee"] = True
    return list(changes)


# --- Conversation -------------------------------------------------------------------------------


def add_operator_comment(*, incident: Incident, actor: User, body: str, request=None) -> Comment:
    """Post the operator's message; while BSSN awaits information it is the answer and resumes the case."""
    _require_writer(actor, incident.operator)
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    with transaction.atomic():
        _locked(incident)
        if incident.is_draft or incident.is_closed:
            raise TransitionRefused(_("Messages can be sent only on a submitted, open incident."))
        answering = incident.status == Status.AWAITING_OPERATOR
        comment = Comment.objects.create(
            incident=incident,
            author=actor,
            body=body,
            kind=CommentKind.ANSWER if answering else CommentKind.COMMENT,
        )
        if answering:
            back_to = (
                incident.status_changes.filter(to_status=Status.AWAITING_OPERATOR)
                .order_by("-created_at", "-id")
                .values_list("from_status", flat=True)
                .first()
            ) or Status.TRIAGE
            _record_transition(
                incident, back_to, actor=actor, by_bssn=False, reason=REASON_ANSWERED, request=request
            )
        record(
            action="incident.comment",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": comment.kind},
            request=request,
        )
    return comment


def add_bssn_comment(
    *, incident: Incident, actor: User, body: str, kind: str = CommentKind.COMMENT, request=None
) -> Comment:
    """Post BSSN's message: a comment the operator sees, an internal note, or a request for information."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    perm = {CommentKind.COMMENT: TRIAGE, CommentKind.REQUEST: TRIAGE, CommentKind.NOTE: INTERNAL_NOTE}.get(
        kind
    )
    if perm is None:
        raise ValidationError({"kind": _("Choose what kind of message this is.")})
    _require_perm(actor, perm)
    with transaction.atomic():
        _locked(incident)
        if incident.is_draft:
            raise TransitionRefused(_("This incident has not been submitted."))
        if kind == CommentKind.REQUEST and incident.status not in REQUEST_FROM:
            raise TransitionRefused(
                _("Ask for information only while the incident is submitted, in triage or in progress.")
            )
        comment = Comment.objects.create(
            incident=incident,
            author=actor,
            by_bssn=True,
            kind=kind,
            body=body,
            is_internal=kind == CommentKind.NOTE,
        )
        record(
            action="incident.comment",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": kind},
            request=request,
        )
        if kind == CommentKind.REQUEST:
            _record_transition(
                incident,
                Status.AWAITING_OPERATOR,
                actor=actor,
                by_bssn=True,
                reason=REASON_REQUESTED,
                request=request,
            )
            _emit(
                event_type="incident.information_requested",
                incident=incident,
                payload=payloads.information_requested(incident, comment.created_at),
            )
            _mail_operator(incident, "information_requested", {"comment": comment})
        elif kind == CommentKind.COMMENT:
            _mail_operator(incident, "new_comment", {"comment": comment})
        # Internal notes: no e-mail, no event, never an operator page.
    return comment


# --- Evidence ----------------------------------------------------------------------------------


def add_evidence(
    *, incident: Incident, actor: User, upload, description: str = "", by_bssn: bool = False, request=None
) -> Evidence:
    """Check an upload (size, type by content), record its sha256 and store it in private storage."""
    if by_bssn:
        _require_perm(actor, TRIAGE)
    else:
        _require_writer(actor, incident.operator)
    if incident.is_closed:
        raise TransitionRefused(_("This incident is closed; no more evidence can be added."))
    checked = check_upload(upload)
    with transaction.atomic():
        evidence = Evidence(
            incident=incident,
            original_name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            description=description[:300],
            uploaded_by=actor,
            by_bssn=by_bssn,
        )
        evidence.file.save(checked.name, upload, save=False)
        try:
            evidence.save()
            record(
                action="incident.evidence_upload",
                actor=actor,
                operator=incident.operator,
                target=evidence,
                changes={"incident": incident.reference, "sha256": checked.sha256, "size": checked.size},
                request=request,
            )
        except Exception:
            evidence.file.delete(save=False)
            raise
    return evidence


def record_evidence_download(*, evidence: Evidence, actor: User, request=None) -> None:
    record(
        action="incident.evidence_download",
        actor=actor,
        operator=evidence.incident.operator,
        target=evidence,
        changes={"incident": evidence.incident.reference, "sha256": evidence.sha256},
        request=request,
    )


# --- Deadline reminders (beat) -------------------------------------------------------------------


def _reminder_candidates() -> models.QuerySet:
    return Obligation.objects.open().exclude(incident__status__in=CLOSING_STATUSES)


def send_reminder(*, obligation_id: int, now: datetime) -> bool:
    """Send the "due soon" reminder once: the conditional UPDATE claims it; False if already sent."""
    with transaction.atomic():
        claimed = (
            Obligation.objects.open()
            .filter(pk=obligation_id, reminder_sent_at__isnull=True, due_at__gt=now)
            .update(reminder_sent_at=now)
        )
        if not claimed:
            return False
        obligation = Obligation.objects.select_related("rule", "incident__operator").get(pk=obligation_id)
        _mail_operator(obligation.incident, "deadline_reminder", {"obligation": obligation})
    return True


def send_overdue_notice(*, obligation_id: int, now: datetime) -> bool:
    """Send the "deadline missed" notice once; BSSN hears of it only for a submitted incident."""
    with transaction.atomic():
        claimed = (
            Obligation.objects.open()
            .filter(pk=obligation_id, overdue_sent_at__isnull=True, due_at__lte=now)
            .update(overdue_sent_at=now)
        )
        if not claimed:
            return False
        obligation = Obligation.objects.select_related("rule", "incident__operator").get(pk=obligation_id)
        incident = obligation.incident
        _mail_operator(incident, "deadline_missed", {"obligation": obligation})
        if not incident.is_draft:
            _emit(
                event_type="incident.deadline_missed",
                incident=incident,
                payload=payloads.deadline_missed(incident, obligation),
            )
            _mail_bssn(incident, "bssn_deadline_missed", {"obligation": obligation})
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


def staff_users_for_assignment() -> Iterable[User]:
    return User.objects.filter(is_staff=True, is_active=True).order_by("email")


def purge_expired_evidence(*, now: datetime | None = None) -> int:
    """Delete evidence files of incidents closed longer than EVIDENCE_RETENTION_DAYS.

    The file leaves storage; the row (name, size, sha256) stays, marked purged. Each
    purge is audited. Idempotent: purged rows are skipped, so a doubled run is harmless.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EVIDENCE_RETENTION_DAYS)
    expired = Evidence.objects.select_related("incident__operator").filter(
        purged_at__isnull=True, incident__status__in=CLOSING_STATUSES, incident__closed_at__lte=cutoff
    )
    purged = 0
    for evidence in expired.iterator(chunk_size=200):
        with transaction.atomic():
            claimed = Evidence.objects.filter(pk=evidence.pk, purged_at__isnull=True).update(purged_at=now)
            if not claimed:
                continue
            record(
                action="evidence.purge",
                operator=evidence.incident.operator,
                target=evidence,
                changes={"sha256": evidence.sha256, "retention_days": settings.EVIDENCE_RETENTION_DAYS},
            )
        # The file goes after the row is marked: a crash here leaves an orphan file, never
        # a row that points at nothing.
        evidence.file.delete(save=False)
        purged += 1
    if purged:
        logger.info("purged %d evidence files past retention", purged)
    return purged
