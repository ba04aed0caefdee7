"""A consent withdrawal starts a 3 x 24 h clock to stop processing (UU 27/2022 Pasal 40)."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consent.models import PROCESSING_STOP_SOURCE, ConsentEvent, ConsentImport, ProcessingStopObligation
from consent.services import mask_identifier
from consent.tasks import send_processing_stop_reminders_task
from portal.audit.models import AuditEvent
from tests.consent.helpers import PURPOSES, give, published_version
from tests.incidents.conftest import staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def bssn_addresses(settings):
    settings.BSSN_NOTIFY_EMAILS = ["csirt@bssn.example"]


T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SUBJECT = "customer-0042"


def _withdraw_through_the_form(client, operator, *, at: str = "2026-03-02T08:00"):
    """Record a withdrawal of both purposes as the operator's form posts it (08:00 WIB = T0)."""
    version = published_version(operator)
    data = {
        "subject_id": SUBJECT,
        "policy_version": version.pk,
        "purposes": list(PURPOSES),
        "state": "withdrawn",
        "method": "web_form",
        "actor_type": "subject",
        "event_at": at,
        "expires_at": "",
        "evidence": "",
    }
    return client.post(reverse("consent:record", args=[operator.slug]), data)


def _beat(capture):
    with capture(execute=True):
        return send_processing_stop_reminders_task()


def _wib(value: datetime) -> str:
    return timezone.localtime(value, timezone.get_fixed_timezone(7 * 60)).strftime("%Y-%m-%dT%H:%M")


def test_a_withdrawal_opens_a_stop_processing_deadline_per_purpose(client_for, reporter, operator):
    with time_machine.travel(T0 + HOUR, tick=False):
        assert _withdraw_through_the_form(client_for(reporter), operator).status_code == 200
    stops = list(ProcessingStopObligation.objects.order_by("purpose_code"))
    assert sorted(s.purpose_code for s in stops) == sorted(PURPOSES)
    assert {s.due_at for s in stops} == {T0 + 72 * HOUR}
    assert {s.remind_at for s in stops} == {T0 + 48 * HOUR}
    assert all(s.event.stop_processing_by == s.due_at for s in stops)


def test_giving_or_refusing_consent_starts_no_clock(operator):
    give(operator, SUBJECT)
    give(operator, SUBJECT, state="refused")
    assert not ProcessingStopObligation.objects.exists()


def test_the_operator_sees_its_deadlines_with_zone_and_source(
    client_for, reporter, viewer, operator, other_operator
):
    with time_machine.travel(T0 + HOUR, tick=False):
        _withdraw_through_the_form(client_for(reporter), operator)
        give(other_operator, "someone-else", state="withdrawn")
    client = client_for(viewer)
    client.cookies["django_language"] = "en"
    text = client.get(reverse("consent:deadlines", args=[operator.slug])).content.decode()
    assert "March 5, 2026, 8 a.m. WIB" in text  # T0 + 72 h in WIB
    assert PROCESSING_STOP_SOURCE in text
    assert mask_identifier(SUBJECT) in text and SUBJECT not in text  # masked on a list
    assert "someone-else" not in text and "so•" not in text
    assert "Confirm processing stopped" not in text  # a viewer reads only


def test_reminders_fire_once_before_the_due_time_and_catch_up_when_late(
    client_for, reporter, operator, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0 + HOUR, tick=False) as clock:
        _withdraw_through_the_form(client_for(reporter), operator)
        clock.move_to(T0 + 47 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
        clock.move_to(T0 + 50 * HOUR)  # two hours late: still sent
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 2, "overdue": 0}
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    assert [m.to for m in mailoutbox] == [[reporter.email], [reporter.email]]
    assert "stop processing" in mailoutbox[0].subject.lower() or "hentikan" in mailoutbox[0].subject.lower()
    assert SUBJECT not in mailoutbox[0].body  # no identity in e-mails


def test_a_missed_deadline_is_reported_to_the_operator_and_to_bssn_once(
    client_for, reporter, operator, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0 + HOUR, tick=False) as clock:
        _withdraw_through_the_form(client_for(reporter), operator)
        clock.move_to(T0 + 100 * HOUR)  # the beat was down past the due time: no stale reminder
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 2}
        clock.move_to(T0 + 101 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    recipients = sorted(m.to[0] for m in mailoutbox)
    assert recipients == sorted([reporter.email, reporter.email, "csirt@bssn.example", "csirt@bssn.example"])
    bssn = next(m for m in mailoutbox if m.to == ["csirt@bssn.example"])
    assert operator.name in bssn.body and "Pasal 40" in bssn.body and SUBJECT not in bssn.body


def test_confirming_from_the_subject_page_meets_the_deadline_and_purges_the_identity_from_exports(
    client_for, reporter, op_admin, operator, django_capture_on_commit_callbacks
):
    client = client_for(reporter)
    with time_machine.travel(T0 + HOUR, tick=False):
        give(operator, SUBJECT, actor=reporter, event_at=T0 - 24 * HOUR)  # earlier consent
        _withdraw_through_the_form(client, operator)
    with time_machine.travel(T0 + 10 * HOUR, tick=False):
        client = client_for(reporter)  # a fresh sign-in: the session idled out overnight
        client.cookies["django_language"] = "en"
        page = client.post(reverse("consent:lookup", args=[operator.slug]), {"subject_id": SUBJECT})
        text = page.content.decode()
        assert "Confirm processing stopped" in text and PROCESSING_STOP_SOURCE in text
        stop = ProcessingStopObligation.objects.get(purpose_code=PURPOSES[0])
        url = reverse("consent:processing_stop_confirm", args=[operator.slug, stop.pk])
        assert url in text
        response = client.post(url, {"stopped_at": _wib(T0 + 9 * HOUR), "note": "CRM and mailer cleared"})
        assert response.status_code == 302
        stop.refresh_from_db()
        assert (stop.met_at, stop.confirmed_by, stop.state()) == (T0 + 9 * HOUR, reporter, "met_on_time")
        assert AuditEvent.objects.get(action="consent.processing_stopped").actor == reporter
        # The confirmed purpose leaves the exports without its identity; the other purpose keeps it.
        admin = client_for(op_admin)
        rows = json.loads(
            b"".join(admin.get(reverse("consent:export_json", args=[operator.slug])).streaming_content)
        )
        by_purpose = {(r["purpose"], r["state"]): r["subject_id"] for r in rows}
        assert by_purpose[(PURPOSES[0], "given")] == "" and by_purpose[(PURPOSES[0], "withdrawn")] == ""
        assert by_purpose[(PURPOSES[1], "withdrawn")] == SUBJECT
        csv_body = b"".join(admin.get(reverse("consent:export_csv", args=[operator.slug])).streaming_content)
        assert csv_body.decode().count(SUBJECT) == 1
    # Only the unconfirmed purpose is reported missed.
    with time_machine.travel(T0 + 100 * HOUR, tick=False):
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 1}


def test_confirming_twice_or_in_the_future_is_refused_and_changes_nothing(client_for, reporter, operator):
    client = client_for(reporter)
    _withdraw_through_the_form(client, operator, at=_wib(timezone.now() - HOUR))
    stop = ProcessingStopObligation.objects.first()
    url = reverse("consent:processing_stop_confirm", args=[operator.slug, stop.pk])
    client.post(url, {"stopped_at": _wib(timezone.now() + 2 * HOUR)})
    assert ProcessingStopObligation.objects.get(pk=stop.pk).met_at is None
    client.post(url, {"stopped_at": "yesterday"})
    assert ProcessingStopObligation.objects.get(pk=stop.pk).met_at is None
    client.post(url, {"stopped_at": _wib(timezone.now() - HOUR)})
    first = ProcessingStopObligation.objects.get(pk=stop.pk).met_at
    response = client.post(url, {"stopped_at": _wib(timezone.now() - 0.5 * HOUR)}, follow=True)
    assert response.status_code == 200
    assert ProcessingStopObligation.objects.get(pk=stop.pk).met_at == first


def test_confirming_is_for_writers_of_the_organisation_only(
    client_for, reporter, viewer, outsider, operator, other_operator
):
    _withdraw_through_the_form(client_for(reporter), operator, at=_wib(timezone.now() - HOUR))
    stop = ProcessingStopObligation.objects.first()
    url = reverse("consent:processing_stop_confirm", args=[operator.slug, stop.pk])
    data = {"stopped_at": _wib(timezone.now() - HOUR)}
    assert client_for(viewer).post(url, data).status_code == 403
    other_url = reverse("consent:processing_stop_confirm", args=[other_operator.slug, stop.pk])
    assert client_for(outsider).post(other_url, data).status_code == 404
    assert client_for(reporter).get(url).status_code == 405
    anonymous = Client().post(url, data)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert ProcessingStopObligation.objects.get(pk=stop.pk).met_at is None


def test_bssns_compliance_view_counts_stop_deadlines_within_and_missed(
    analyst, client_for, reporter, operator
):
    client = client_for(reporter)
    with time_machine.travel(T0 + HOUR, tick=False):
        _withdraw_through_the_form(client, operator)
        stop = ProcessingStopObligation.objects.get(purpose_code=PURPOSES[0])
        client.post(
            reverse("consent:processing_stop_confirm", args=[operator.slug, stop.pk]),
            {"stopped_at": _wib(T0 + HOUR)},
        )
    with time_machine.travel(T0 + 80 * HOUR, tick=False):
        response = staff_client(analyst).get(reverse("admin:incidents_incident_compliance"))
    (row,) = [r for r in response.context["rows"] if r["legal_source"] == PROCESSING_STOP_SOURCE]
    assert (row["total"], row["on_time"], row["missed"], row["pending"]) == (2, 1, 1, 0)
    assert PROCESSING_STOP_SOURCE in response.content.decode()


def test_an_imported_withdrawal_gets_its_clock_from_the_beat_unless_it_already_ran_out(
    client_for, reporter, operator, mailoutbox, django_capture_on_commit_callbacks
):
    published_version(operator)
    rows = [
        "subject_id,purpose,state,event_time,method,policy_version",
        f"cust-1,{PURPOSES[0]},given,2026-02-01T08:00:00+07:00,web_form,1",
        f"cust-1,{PURPOSES[0]},withdrawn,2026-03-02T08:00:00+07:00,web_form,1",  # T0: still running
        f"cust-2,{PURPOSES[0]},withdrawn,2026-02-01T08:00:00+07:00,web_form,1",  # ran out in February
    ]
    upload = io.BytesIO("\n".join(rows).encode())
    upload.name = "consents.csv"
    with time_machine.travel(T0 + HOUR, tick=False) as clock:
        client = client_for(reporter)
        # The import is checked and committed by worker tasks once each request commits.
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("consent:import", args=[operator.slug]), {"file": upload})
        imported = ConsentImport.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("consent:import_confirm", args=[operator.slug, imported.pk]))
        assert ConsentEvent.objects.count() == 3
        clock.move_to(T0 + 2 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
        stop = ProcessingStopObligation.objects.get()
        assert (stop.event.subject_identifier, stop.due_at) == ("cust-1", T0 + 72 * HOUR)
        clock.move_to(T0 + 49 * HOUR)
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 1, "overdue": 0}
        assert _beat(django_capture_on_commit_callbacks) == {"reminders": 0, "overdue": 0}
    assert ProcessingStopObligation.objects.count() == 1
    assert [m.to for m in mailoutbox] == [[reporter.email]]
