from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail.backends.locmem import EmailBackend

from incidents import services
from incidents.models import DeadlineRule, Obligation, ReportKind
from incidents.tasks import send_deadline_reminders_task
from portal.accounts.models import Sector
from portal.alerts import notices
from portal.alerts.models import Notice, NoticeStatus
from tests.conftest import make_member, make_operator
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PERSONAL = {
    "personal_data_involved": True,
    "personal_data_categories": ["contact"],
    "data_subjects_count": 300,
}


def _beat(at, capture):
    """Run the beat task at `at` (frozen clock) and send what it queued on commit."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        return send_deadline_reminders_task()


def test_personal_data_gets_a_72_hour_obligation_from_aware_at(operator, reporter):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(operator, reporter, **PERSONAL)
    obligation = incident.obligations.get(rule__code="pdp-failure-notice")
    assert obligation.due_at == incident.aware_at + 72 * HOUR
    assert obligation.due_at == T0 + 69 * HOUR  # aware three hours before filing
    # Every incident also owes a final report, counted from the initial report.
    final = incident.obligations.get(rule__code="final-report")
    assert final.due_at == incident.submitted_at + timedelta(days=30)
    assert set(incident.obligations.values_list("rule__code", flat=True)) == {
        "pdp-failure-notice",
        "final-report",
    }


def test_an_iiv_organisation_gets_a_24_hour_obligation_met_by_the_initial_report(iiv_operator, iiv_reporter):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(iiv_operator, iiv_reporter, submit=False)
        obligation = incident.obligations.get(rule__code="iiv-initial-report")
        assert obligation.due_at == incident.detected_at + 24 * HOUR
        services.submit_incident(incident=incident, actor=iiv_reporter)
    obligation.refresh_from_db()
    assert obligation.met_at == T0 and obligation.state() == "met_on_time"


def test_a_non_iiv_incident_without_personal_data_owes_only_the_final_report(operator, reporter):
    incident = file_incident(operator, reporter)
    assert list(incident.obligations.values_list("rule__code", flat=True)) == ["final-report"]


def test_a_corrected_draft_drops_obligations_that_no_longer_apply(operator, reporter):
    incident = file_incident(operator, reporter, submit=False, **PERSONAL)
    assert incident.obligations.filter(rule__code="pdp-failure-notice").exists()
    data = {f: getattr(incident, f) for f in services.OPERATOR_FIELDS} | {"personal_data_involved": False}
    services.update_draft(incident=incident, actor=reporter, data=data)
    assert not incident.obligations.exists()


def test_the_final_report_period_is_data_a_supervisor_can_change(operator, reporter):
    DeadlineRule.objects.filter(code="final-report").update(period_hours=14 * 24)
    incident = file_incident(operator, reporter)
    assert incident.obligations.get(rule__code="final-report").due_at == incident.submitted_at + timedelta(
        days=14
    )


def test_reminders_fire_once_each_even_when_the_beat_is_late_or_doubled(
    operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(operator, reporter, **PERSONAL)
    obligation = incident.obligations.get(rule__code="pdp-failure-notice")
    assert obligation.remind_at == obligation.due_at - 24 * HOUR  # T0 + 45 h

    assert _beat(T0 + 44 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    # The beat that should have run at T0+45h runs an hour late: the reminder still goes out...
    assert _beat(T0 + 46 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 1, "overdue": 0}
    # ...and a doubled run at the same moment sends nothing more.
    assert _beat(T0 + 46 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    assert [m.to for m in mailoutbox] == [[reporter.email]]
    assert incident.reference in mailoutbox[0].subject

    # Long after the due time (a beat outage): one overdue notice to the operator and one to BSSN.
    assert _beat(T0 + 80 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 1}
    assert _beat(T0 + 81 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    assert [m.to for m in mailoutbox[1:]] == [[reporter.email], ["csirt@bssn.example"]]
    obligation.refresh_from_db()
    assert obligation.reminder_sent_at == T0 + 46 * HOUR
    assert obligation.overdue_sent_at == T0 + 80 * HOUR


def test_a_reminder_survives_a_mail_server_outage(
    operator, reporter, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    with time_machine.travel(T0, tick=False):
        file_incident(operator, reporter, **PERSONAL)
    server_down = [True]
    deliver = EmailBackend.send_messages

    def send_messages(backend, messages):
        if server_down[0]:
            raise ConnectionRefusedError
        return deliver(backend, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
    # The beat claims the reminder (it is never sent twice) while the mail server is down...
    assert _beat(T0 + 46 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 1, "overdue": 0}
    assert mailoutbox == []
    assert Notice.objects.get(template="incidents/deadline_reminder").status == NoticeStatus.PENDING
    # ...and the worker's retry, once the server is back, still delivers it.
    server_down[0] = False
    with time_machine.travel(T0 + 47 * HOUR, tick=False):
        notices.sweep_notices()
    reminder = Notice.objects.get(template="incidents/deadline_reminder")
    assert reminder.status == NoticeStatus.SENT
    assert [(m.to, m.subject) for m in mailoutbox if m.subject == reminder.subject] == [
        ([reporter.email], reminder.subject)
    ]


def test_a_beat_late_past_the_due_time_sends_the_overdue_notice_not_a_stale_reminder(
    iiv_operator, iiv_reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(iiv_operator, iiv_reporter, submit=False)  # due T0 + 20 h
    assert _beat(T0 + 30 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 1}
    assert _beat(T0 + 31 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    # A draft BSSN has not seen: only the operator hears of it.
    assert [m.to for m in mailoutbox] == [[iiv_reporter.email]]
    obligation = incident.obligations.get()
    assert obligation.overdue_sent_at and obligation.reminder_sent_at is None
    # Submitting late meets the obligation late: it counts as not within the deadline.
    with time_machine.travel(T0 + 32 * HOUR, tick=False):
        services.submit_incident(incident=incident, actor=iiv_reporter)
    obligation.refresh_from_db()
    assert obligation.state() == "met_late"


def test_met_and_waived_obligations_get_no_reminders(
    operator, reporter, supervisor, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(operator, reporter, **PERSONAL)
        pdp = incident.obligations.get(rule__code="pdp-failure-notice")
        services.confirm_notice(obligation=pdp, actor=reporter, given_at=T0 - HOUR, note="E-mailed users")
        final = incident.obligations.get(rule__code="final-report")
        services.waive_obligation(obligation=final, actor=supervisor, reason="Handled by the regulator")
    assert _beat(T0 + 40 * 24 * HOUR, django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    assert mailoutbox == []
    final.refresh_from_db()
    assert (final.waived_by, final.waiver_reason, final.state()) == (
        supervisor,
        "Handled by the regulator",
        "waived",
    )


def test_only_a_supervisor_waives_and_only_with_a_reason(operator, reporter, analyst, supervisor):
    incident = file_incident(operator, reporter)
    final = incident.obligations.get()
    with pytest.raises(PermissionDenied):
        services.waive_obligation(obligation=final, actor=analyst, reason="Please")
    with pytest.raises(ValidationError):
        services.waive_obligation(obligation=final, actor=supervisor, reason=" ")
    assert Obligation.objects.get(pk=final.pk).is_open


def test_the_final_report_meets_the_final_report_obligation(operator, reporter):
    incident = file_incident(operator, reporter)
    data = {f: getattr(incident, f) for f in services.OPERATOR_FIELDS}
    report = services.save_report_draft(
        incident=incident,
        actor=reporter,
        kind=ReportKind.FINAL,
        data=data,
        summary="Root cause: a phished VPN password",
    )
    services.submit_report(report=report, actor=reporter)
    assert incident.obligations.get(rule__code="final-report").state() == "met_on_time"


def test_reported_within_deadline_is_countable_per_sector_and_month(iiv_operator, iiv_reporter):
    fintech = make_operator("pay", sector=Sector.FINTECH_PAYMENT, is_iiv=True)
    fintech_reporter = make_member(fintech, "reporter")
    with time_machine.travel(T0, tick=False):
        on_time = file_incident(iiv_operator, iiv_reporter)  # submitted at once: within 24 h
        late = file_incident(iiv_operator, iiv_reporter, submit=False)
        file_incident(fintech, fintech_reporter)
    with time_machine.travel(T0 + 30 * HOUR, tick=False):
        services.submit_incident(incident=late, actor=iiv_reporter)
        rows = services.deadline_compliance()
    iiv_rows = {(r["incident__operator__sector"], r["rule__code"]): r for r in rows}
    ecommerce = iiv_rows[(Sector.ECOMMERCE, "iiv-initial-report")]
    assert (ecommerce["total"], ecommerce["on_time"], ecommerce["late"]) == (2, 1, 1)
    assert iiv_rows[(Sector.FINTECH_PAYMENT, "iiv-initial-report")]["on_time"] == 1
    assert ecommerce["month"].month == 3
    assert on_time.obligations.get(rule__code="iiv-initial-report").state() == "met_on_time"
