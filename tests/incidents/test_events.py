"""Events for the alert pipeline (outbox rows in the same transaction) and e-mails to people."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import time_machine
from django.conf import settings
from django.db import transaction

from incidents import payloads, services
from incidents.models import CommentKind, ReportKind, Status
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

Alert = pytest.importorskip("portal.alerts.models").Alert
DOCS_SCHEMAS = Path(settings.BASE_DIR) / "docs" / "schemas"


def _alerts(incident, event_type):
    return Alert.objects.filter(event_type=event_type, subject_id=str(incident.pk))


def test_submitting_writes_the_alert_row_in_the_same_transaction(
    operator, reporter, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        incident = file_incident(operator, reporter)
        # Before commit: the outbox row is already there, delivery waits for the commit.
        assert _alerts(incident, "incident.submitted").count() == 1
    assert callbacks  # delivery (and e-mail) work is queued for on-commit


def test_a_rolled_back_submission_leaves_no_alert(operator, reporter):
    incident = file_incident(operator, reporter, submit=False)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.submit_incident(incident=incident, actor=reporter)
        raise RuntimeError("crash after submitting")
    assert not Alert.objects.exists()


def test_each_event_is_emitted_with_a_valid_minimal_payload(operator, reporter, analyst, supervisor):
    t0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    with time_machine.travel(t0, tick=False):
        incident = file_incident(
            operator,
            reporter,
            personal_data_involved=True,
            personal_data_categories=["contact"],
            specific_data_categories=["health"],
            data_subjects_count=42,
        )
        services.change_status(incident=incident, actor=analyst, to_status=Status.TRIAGE, reason="Looking")
        services.add_bssn_comment(
            incident=incident, actor=analyst, kind=CommentKind.REQUEST, body="Which logs?"
        )
        services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.NOTE, body="note")
        services.add_operator_comment(incident=incident, actor=reporter, body="These")
        data = {f: getattr(incident, f) for f in services.OPERATOR_FIELDS}
        report = services.save_report_draft(
            incident=incident, actor=reporter, kind=ReportKind.UPDATE, data=data, summary="More"
        )
        services.submit_report(report=report, actor=reporter)
    with time_machine.travel(t0 + timedelta(days=4), tick=False):
        services.send_due_reminders()

    types_seen = list(Alert.objects.order_by("pk").values_list("event_type", flat=True))
    assert types_seen == [
        "incident.submitted",
        "incident.status_changed",
        "incident.status_changed",
        "incident.information_requested",
        "incident.status_changed",
        "incident.report_added",
        "incident.deadline_missed",
    ]
    for alert in Alert.objects.all():
        schema = payloads.SCHEMAS[alert.payload["schema"]]
        jsonschema.validate(alert.payload, schema)
        published = DOCS_SCHEMAS / f"{alert.event_type}.schema.json"
        if published.exists():  # the webhook body as documented for receivers
            jsonschema.validate(json.loads(alert.body), json.loads(published.read_text()))
        text = json.dumps(alert.payload)
        for secret in (
            "rina@acme.example",
            "+62 21 555 0101",
            "Rina Reporter",
            "Files on two billing",
            "Which logs?",
            "note",
            "These",
        ):
            assert secret not in text, (alert.event_type, secret)
        assert alert.payload["incident"]["personal_data"]["data_subjects"] == 42
        assert alert.payload["incident"]["operator"]["name"] == operator.name


def test_bssn_hears_of_a_new_high_or_critical_incident_only(
    operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        file_incident(operator, reporter, severity="low")
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        incident = file_incident(operator, reporter, severity="critical")
    assert [m.to for m in mailoutbox] == [["csirt@bssn.example"]]
    assert incident.reference in mailoutbox[0].subject
    assert "Files on two billing" not in mailoutbox[0].body  # the description stays in the portal
    assert mailoutbox[0].alternatives[0][1] == "text/html"


def test_a_status_change_mails_the_organisations_writers_in_their_language(
    operator, reporter, op_admin, viewer, analyst, mailoutbox, django_capture_on_commit_callbacks
):
    op_admin.language = "en"
    op_admin.save()
    incident = file_incident(operator, reporter)
    with django_capture_on_commit_callbacks(execute=True):
        services.change_status(
            incident=incident, actor=analyst, to_status=Status.TRIAGE, reason="Checking logs"
        )
    by_address = {m.to[0]: m for m in mailoutbox}
    assert set(by_address) == {reporter.email, op_admin.email}  # viewers are not mailed
    english = by_address[op_admin.email]
    assert "Status changed" in english.subject and "Checking logs" in english.body
    indonesian = by_address[reporter.email]
    assert "Status berubah" in indonesian.subject


def test_no_mail_leaves_before_the_transaction_commits(operator, reporter, analyst, mailoutbox):
    incident = file_incident(operator, reporter)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.change_status(incident=incident, actor=analyst, to_status=Status.TRIAGE, reason="x")
        raise RuntimeError
    assert mailoutbox == []
