import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from incidents import services
from incidents.models import CommentKind, Incident, ReportKind, Status, StatusChange
from portal.audit.models import AuditEvent
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db


def _history(incident) -> list[tuple[str, str]]:
    return list(incident.status_changes.order_by("created_at", "id").values_list("from_status", "to_status"))


def test_submitting_freezes_the_initial_report_and_records_the_step(operator, reporter):
    incident = file_incident(operator, reporter)
    assert incident.status == Status.SUBMITTED and incident.submitted_at
    report = incident.reports.get()
    assert (report.kind, report.number, report.data["title"]) == (ReportKind.INITIAL, 1, incident.title)
    assert _history(incident) == [("", "draft"), ("draft", "submitted")]
    assert AuditEvent.objects.filter(action="incident.status", target_id=str(incident.pk)).exists()


def test_the_full_lifecycle_is_guarded_by_role(operator, reporter, analyst, supervisor):
    incident = file_incident(operator, reporter)
    services.change_status(incident=incident, actor=analyst, to_status=Status.TRIAGE, reason="Looking")
    services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.REQUEST, body="Logs please")
    assert incident.status == Status.AWAITING_OPERATOR
    services.add_operator_comment(incident=incident, actor=reporter, body="Attached the logs")
    assert incident.status == Status.TRIAGE  # back to where it was before the request
    services.change_status(incident=incident, actor=analyst, to_status=Status.IN_PROGRESS, reason="Analysing")
    services.change_status(incident=incident, actor=analyst, to_status=Status.RESOLVED, reason="Contained")
    with pytest.raises(PermissionDenied):
        services.change_status(incident=incident, actor=analyst, to_status=Status.CLOSED, reason="Done")
    services.change_status(incident=incident, actor=supervisor, to_status=Status.CLOSED, reason="Done")
    assert incident.closed_at is not None
    with pytest.raises(PermissionDenied):
        services.change_status(incident=incident, actor=analyst, to_status=Status.TRIAGE, reason="Reopen")
    services.change_status(incident=incident, actor=supervisor, to_status=Status.TRIAGE, reason="New facts")
    assert incident.closed_at is None
    assert _history(incident) == [
        ("", "draft"),
        ("draft", "submitted"),
        ("submitted", "triage"),
        ("triage", "awaiting_operator"),
        ("awaiting_operator", "triage"),
        ("triage", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
        ("closed", "triage"),
    ]
    step = incident.status_changes.get(to_status=Status.CLOSED)
    assert (step.actor, step.by_bssn, step.reason) == (supervisor, True, "Done")


def test_an_invalid_transition_is_refused_with_a_message_and_changes_nothing(operator, reporter, supervisor):
    incident = file_incident(operator, reporter)
    before = StatusChange.objects.count(), AuditEvent.objects.count()
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        services.change_status(incident=incident, actor=supervisor, to_status=Status.DRAFT, reason="Undo")
    assert excinfo.value.messages == ["An incident cannot go from “Submitted” to “Draft”."]
    incident.refresh_from_db()
    assert incident.status == Status.SUBMITTED
    assert (StatusChange.objects.count(), AuditEvent.objects.count()) == before


def test_a_change_of_status_needs_a_reason(operator, reporter, analyst):
    incident = file_incident(operator, reporter)
    with pytest.raises(ValidationError):
        services.change_status(incident=incident, actor=analyst, to_status=Status.TRIAGE, reason="  ")
    assert Incident.objects.get(pk=incident.pk).status == Status.SUBMITTED


def test_a_duplicate_links_to_its_original(operator, reporter, supervisor):
    original = file_incident(operator, reporter)
    incident = file_incident(operator, reporter)
    with pytest.raises(ValidationError):
        services.change_status(incident=incident, actor=supervisor, to_status=Status.DUPLICATE, reason="Same")
    services.change_status(
        incident=incident, actor=supervisor, to_status=Status.DUPLICATE, reason="Same", duplicate_of=original
    )
    assert Incident.objects.get(pk=incident.pk).duplicate_of == original


def test_an_operator_cannot_move_an_incident_through_the_bssn_workflow(operator, reporter):
    incident = file_incident(operator, reporter)
    with pytest.raises(PermissionDenied):
        services.change_status(incident=incident, actor=reporter, to_status=Status.TRIAGE, reason="Please")


def test_a_viewer_cannot_file_or_submit(operator, reporter, viewer):
    incident = file_incident(operator, reporter, submit=False)
    with pytest.raises(PermissionDenied):
        services.submit_incident(incident=incident, actor=viewer)
    assert Incident.objects.get(pk=incident.pk).status == Status.DRAFT


def test_information_can_be_requested_only_from_an_open_incident(operator, reporter, analyst, supervisor):
    incident = file_incident(operator, reporter)
    services.change_status(
        incident=incident, actor=supervisor, to_status=Status.REJECTED, reason="Out of scope"
    )
    with pytest.raises(ValidationError):
        services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.REQUEST, body="More?")
    assert incident.comments.count() == 0


def test_updates_and_the_final_report_are_immutable_versions(operator, reporter):
    incident = file_incident(operator, reporter)
    data = {f: getattr(incident, f) for f in services.OPERATOR_FIELDS} | {"users_affected": 5000}
    draft = services.save_report_draft(
        incident=incident, actor=reporter, kind=ReportKind.UPDATE, data=data, summary="More users"
    )
    # A draft can be edited until it is submitted.
    draft = services.save_report_draft(
        incident=incident,
        actor=reporter,
        kind=ReportKind.UPDATE,
        data=data | {"users_affected": 6000},
        summary="Even more users",
    )
    services.submit_report(report=draft, actor=reporter)
    incident.refresh_from_db()
    assert incident.users_affected == 6000
    update = incident.reports.get(number=2)
    assert update.data["users_affected"] == 6000 and update.submitted_at
    assert incident.reports.get(number=1).data["users_affected"] == 1200  # history keeps the first version
    update.summary = "rewritten"
    with pytest.raises(ValidationError):
        update.save()
    with pytest.raises(ValidationError):
        services.submit_report(report=update, actor=reporter)

    final = services.save_report_draft(
        incident=incident, actor=reporter, kind=ReportKind.FINAL, data=data, summary="Root cause found"
    )
    services.submit_report(report=final, actor=reporter)
    with pytest.raises(ValidationError):
        services.save_report_draft(incident=incident, actor=reporter, kind=ReportKind.FINAL, data=data)
