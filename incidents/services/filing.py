"""The operator's filing: drafts, the initial report, staged update and final reports."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import Operator, User
from portal.audit.services import record

from .. import payloads
from ..models import (
    HIGH_SEVERITIES,
    Incident,
    IncidentReport,
    MetBy,
    ReferenceCounter,
    ReportKind,
    Status,
    StatusChange,
)
from ..permissions import require_writer
from .base import TransitionRefused, emit_incident_event, locked
from .content import OPERATOR_FIELDS, apply_content, report_data, snapshot, to_json_value, validate_content
from .deadlines import meet_obligations, sync_obligations
from .lifecycle import record_transition
from .notify import mail_bssn


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


def create_incident(*, operator: Operator, actor: User, data: dict, request=None) -> Incident:
    """Create a draft incident with a new reference number."""
    require_writer(actor, operator)
    validate_content(data, complete=False)
    with transaction.atomic():
        incident = Incident(operator=operator, created_by=actor, reference=next_reference())
        apply_content(incident, data)
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
    require_writer(actor, incident.operator)
    validate_content(data, complete=False)
    with transaction.atomic():
        locked(incident)
        if not incident.is_draft:
            raise TransitionRefused(_("Only a draft can be edited; add an update to a submitted incident."))
        changed = apply_content(incident, data)
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
    require_writer(actor, incident.operator)
    with transaction.atomic():
        locked(incident)
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
        change = record_transition(
            incident, Status.SUBMITTED, actor=actor, by_bssn=False, reason="", request=request
        )
        sync_obligations(incident)
        meet_obligations(incident, MetBy.INITIAL_REPORT, now)
        alert = emit_incident_event(
            event_type="incident.submitted", incident=incident, payload=payloads.submitted(incident)
        )
        if incident.effective_severity in HIGH_SEVERITIES:
            mail_bssn(incident, "bssn_new_incident", {"report": report, "change": change}, alert=alert)
    return incident


def save_report_draft(
    *, incident: Incident, actor: User, kind: str, data: dict, summary: str = "", request=None
) -> IncidentReport:
    """Create or update the incident's one draft update or final report."""
    require_writer(actor, incident.operator)
    validate_content(data, complete=False)
    with transaction.atomic():
        locked(incident)
        check_can_report(incident, kind)
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


def check_can_report(incident: Incident, kind: str) -> None:
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


def submit_report(*, report: IncidentReport, actor: User, request=None) -> IncidentReport:
    """Submit a draft update or final report: apply it to the incident and freeze it as a version."""
    incident = report.incident
    require_writer(actor, incident.operator)
    with transaction.atomic():
        locked(incident)
        report = IncidentReport.objects.select_for_update().get(pk=report.pk)
        if not report.is_draft:
            raise TransitionRefused(_("This report has already been submitted."))
        check_can_report(incident, report.kind)
        data = report_data(report)
        validate_content(data, complete=True)
        changed = apply_content(incident, data)
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
            meet_obligations(incident, MetBy.FINAL_REPORT, now)
        record(
            action="incident.report_submit",
            actor=actor,
            operator=incident.operator,
            target=incident,
            changes={"kind": report.kind, "number": report.number, "fields": changed},
            request=request,
        )
        emit_incident_event(
            event_type="incident.report_added",
            incident=incident,
            payload=payloads.report_added(incident, report),
        )
    return report
