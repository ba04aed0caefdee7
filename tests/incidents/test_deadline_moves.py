"""An operator cannot postpone its own deadline; a BSSN supervisor extends one, with a reason, audited."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents.models import Obligation
from incidents.tasks import send_deadline_reminders_task
from portal.audit.models import AuditEvent
from tests.incidents.conftest import staff_client
from tests.incidents.helpers import file_incident, form_data

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PERSONAL = {
    "personal_data_involved": True,
    "personal_data_categories": ["contact"],
    "data_subjects_count": 300,
}
TIMES = {"occurred_at": T0 - 5 * HOUR, "detected_at": T0 - 4 * HOUR}


def _wib(value: datetime) -> str:
    return timezone.localtime(value, timezone.get_fixed_timezone(7 * 60)).strftime("%Y-%m-%dT%H:%M")


def _post_update(client, incident, **overrides):
    """Submit an update report through the operator's form, as the browser posts it."""
    url = reverse("incidents:report_edit", args=[incident.operator.slug, incident.reference])
    data = form_data(**PERSONAL, **TIMES, **overrides) | {
        "kind": "update",
        "summary": "Corrected the timeline",
        "action": "submit",
    }
    return client.post(url, data)


def _beat(capture):
    with capture(execute=True):
        return send_deadline_reminders_task()


def _pdp(incident) -> Obligation:
    return incident.obligations.get(rule__code="pdp-failure-notice")


def test_an_update_moving_aware_at_later_does_not_postpone_the_deadline_or_resend_its_reminder(
    client_for, operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False) as clock:
        incident = file_incident(operator, reporter, aware_at=T0 - 3 * HOUR, **PERSONAL, **TIMES)
        assert _pdp(incident).due_at == T0 + 69 * HOUR
        clock.move_to(T0 + 46 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 1, "overdue": 0}
        clock.move_to(T0 + 47 * HOUR)
        response = _post_update(client_for(reporter), incident, aware_at=T0 + 7 * HOUR)  # ten hours later
        assert response.status_code == 302
        incident.refresh_from_db()
        assert incident.aware_at == T0 + 7 * HOUR  # the facts are corrected...
        pdp = _pdp(incident)
        assert pdp.due_at == T0 + 69 * HOUR  # ...the deadline is not
        assert pdp.reminder_sent_at == T0 + 46 * HOUR
        assert incident.next_due_at == T0 + 69 * HOUR
        clock.move_to(T0 + 48 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    assert len(mailoutbox) == 1


def test_an_update_moving_aware_at_earlier_brings_the_deadline_forward_without_a_second_reminder(
    client_for, operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False) as clock:
        incident = file_incident(operator, reporter, aware_at=T0 - 3 * HOUR, **PERSONAL, **TIMES)
        clock.move_to(T0 + 46 * HOUR)
        _beat(django_capture_on_commit_callbacks)
        clock.move_to(T0 + 47 * HOUR)
        _post_update(client_for(reporter), incident, aware_at=T0 - 4 * HOUR - 30 * timedelta(minutes=1))
        pdp = _pdp(incident)
        assert pdp.due_at == T0 + 67 * HOUR + 30 * timedelta(minutes=1)
        # The new reminder time (T0 + 43.5 h) has passed and one was sent: not sent again.
        assert pdp.reminder_sent_at == T0 + 46 * HOUR
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
        clock.move_to(T0 + 68 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 1}
    assert len([m for m in mailoutbox if m.to == [reporter.email]]) == 2


def test_an_earlier_deadline_moves_its_unsent_reminder_forward(
    client_for, operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False) as clock:
        incident = file_incident(operator, reporter, aware_at=T0 - 3 * HOUR, **PERSONAL, **TIMES)
        clock.move_to(T0 + HOUR)
        _post_update(client_for(reporter), incident, aware_at=T0 - 4 * HOUR)
        assert _pdp(incident).remind_at == T0 + 44 * HOUR
        clock.move_to(T0 + 44 * HOUR + timedelta(minutes=5))
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 1, "overdue": 0}


def test_a_draft_deadline_follows_the_facts_both_ways(client_for, iiv_operator, iiv_reporter):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(iiv_operator, iiv_reporter, submit=False, **TIMES)
        assert incident.obligations.get().due_at == T0 + 20 * HOUR
        url = reverse("incidents:edit", args=[iiv_operator.slug, incident.reference])
        data = form_data(**TIMES) | {"detected_at": _wib(T0 - 2 * HOUR), "action": "save"}
        assert client_for(iiv_reporter).post(url, data).status_code == 302
        assert incident.obligations.get().due_at == T0 + 22 * HOUR


def test_a_supervisor_extends_a_deadline_with_a_reason_through_the_admin(
    supervisor, client_for, operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False) as clock:
        incident = file_incident(operator, reporter, aware_at=T0 - 3 * HOUR, **PERSONAL, **TIMES)
        pdp = _pdp(incident)
        clock.move_to(T0 + 70 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 1}
        client = staff_client(supervisor)
        url = reverse("admin:incidents_incident_extend", args=[incident.pk, pdp.pk])
        page = client.get(url)
        assert page.status_code == 200 and "Pasal 46" in page.content.decode()
        response = client.post(url, {"due_at": _wib(T0 + 120 * HOUR), "reason": "Regulator granted 2 days"})
        assert response.status_code == 302
        pdp.refresh_from_db()
        assert pdp.due_at == T0 + 120 * HOUR and pdp.remind_at == T0 + 96 * HOUR
        assert (pdp.extended_by, pdp.extension_reason) == (supervisor, "Regulator granted 2 days")
        assert pdp.overdue_sent_at is None and pdp.state() == "pending"  # no longer missed
        incident.refresh_from_db()
        assert incident.next_due_at == T0 + 120 * HOUR
        event = AuditEvent.objects.get(action="incident.obligation_extended")
        assert event.actor == supervisor and event.changes["reason"] == "Regulator granted 2 days"
        # The operator sees who moved it and why; a later correction of the facts does not undo it.
        text = client_for(reporter).get(incident.get_absolute_url()).content.decode()
        assert "Regulator granted 2 days" in text
        _post_update(client_for(reporter), incident, aware_at=T0 - 4 * HOUR)
        assert _pdp(incident).due_at == T0 + 120 * HOUR
        # The extended deadline reminds and reports again at its new times.
        clock.move_to(T0 + 97 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 1, "overdue": 0}


def test_only_a_supervisor_extends_and_only_later_and_with_a_reason(
    analyst_client, supervisor_client, operator, reporter
):
    incident = file_incident(operator, reporter, **PERSONAL)
    pdp = _pdp(incident)
    url = reverse("admin:incidents_incident_extend", args=[incident.pk, pdp.pk])
    later = _wib(pdp.due_at + 48 * HOUR)
    assert analyst_client.post(url, {"due_at": later, "reason": "Please"}).status_code == 403
    no_reason = supervisor_client.post(url, {"due_at": later, "reason": " "})
    assert no_reason.status_code == 200 and no_reason.context["form"].errors
    earlier = supervisor_client.post(url, {"due_at": _wib(pdp.due_at - 2 * HOUR), "reason": "Shorter"})
    assert "due_at" in earlier.context["form"].errors
    assert supervisor_client.post(url, {"due_at": "tomorrow", "reason": "x"}).status_code == 200
    assert Obligation.objects.get(pk=pdp.pk).due_at == pdp.due_at
    assert not AuditEvent.objects.filter(action="incident.obligation_extended").exists()


def test_another_incidents_deadline_is_a_404_on_the_extend_page(supervisor_client, operator, reporter):
    first = file_incident(operator, reporter)
    second = file_incident(operator, reporter)
    url = reverse("admin:incidents_incident_extend", args=[first.pk, second.obligations.get().pk])
    assert supervisor_client.get(url).status_code == 404
