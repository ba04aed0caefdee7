"""Disclosure decided when a message leaves (issue 15.3): every send and retry checks the basis again."""

import hashlib
import json
import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from incidents.cases.models import CaseFlag, Disclosure
from portal.alerts.models import Alert, Authority, Channel, Delivery
from portal.alerts.services import deliver
from tests.alerts.receiver import Receiver
from tests.cases.conftest import ADDRESS, NAME, NIK, PHONE, flag_post
from tests.consent.helpers import give

pytestmark = pytest.mark.django_db

SUBJECT = "user-4711"
HEALTH = "share-identity-health"
IDENTITY_VALUES = [NAME, "Siti", PHONE, "8125555", NIK, ADDRESS, "Jalan Contoh"]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def health_office_hook(cases_seeded, receiver):
    """A webhook channel of the Sulawesi Selatan health office pointing at the local receiver."""
    channel = Channel(authority=Authority.objects.get(code="dinkes-sn"), kind="webhook", url=receiver.url)
    receiver.secrets = [channel.rotate_secret(overlap=timedelta(0))]
    channel.save()
    return channel


def _submit(client, operator, **overrides) -> CaseFlag:
    data = {**flag_post(**overrides), "action": "submit", "confirm_classification": "suspect_a"}
    response = client.post(reverse("cases:flag_create", kwargs={"operator_slug": operator.slug}), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    return CaseFlag.objects.latest("created_at")


def _delivery(channel: Channel) -> Delivery:
    return Delivery.objects.get(channel=channel)


def _email_delivery() -> Delivery:
    return Delivery.objects.get(kind="email", address__contains="kemkes")


def _make_due(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def _assert_no_identity(text: str) -> None:
    for value in IDENTITY_VALUES:
        assert value not in text, value


def _sent_records(flag: CaseFlag, delivery: Delivery) -> list[Disclosure]:
    return list(
        Disclosure.objects.filter(flag=flag, delivery_id=delivery.pk, stage="sent").order_by("attempt")
    )


def test_a_webhook_retried_after_consent_is_withdrawn_carries_no_identity(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    give(healthtech_operator, SUBJECT, HEALTH)
    flag = _submit(client_for(ht_reporter), healthtech_operator, subject_identifier=SUBJECT)
    delivery = _delivery(health_office_hook)

    receiver.script = [(503, {}, 0.0)]  # the health office's server is down
    assert deliver(delivery_id=delivery.pk) is not None, "a 503 is retried"
    [first] = receiver.received
    assert first.status == 503 and json.loads(first.body)["data"]["identity"]["nik"] == NIK

    give(healthtech_operator, SUBJECT, HEALTH, state="withdrawn")
    _make_due(delivery)
    assert deliver(delivery_id=delivery.pk) is None
    [retry] = receiver.accepted()
    assert retry.verified, "the minimal body is signed as it is sent"
    assert retry.headers["webhook-id"] == first.headers["webhook-id"], "the same message, retried"
    _assert_no_identity(retry.body.decode())
    data = json.loads(retry.body)["data"]
    assert "identity" not in data
    assert data["flag_id"] == str(flag.uid) and data["classification"] == "suspect_a"

    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempt_count == 2
    one, two = _sent_records(flag, delivery)
    assert (one.attempt, one.identity_included, one.basis) == (1, True, "consent")
    assert "identity.nik" in one.fields and one.body_sha256 == hashlib.sha256(first.body).hexdigest()
    assert (two.attempt, two.identity_included, two.basis) == (2, False, "")
    assert not [f for f in two.fields if f.startswith("identity")]
    assert two.body_sha256 == hashlib.sha256(retry.body).hexdigest()
    assert two.recipient == "Dinas Kesehatan Provinsi Sulawesi Selatan" and two.channel_kind == "webhook"

    # The operator sees both attempts in the flag's disclosure record.
    page = client_for(ht_reporter).get(flag.get_absolute_url()).content.decode()
    assert page.count('data-stage="sent"') == 2


def test_with_consent_still_present_the_retry_carries_the_identity(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    give(healthtech_operator, SUBJECT, HEALTH)
    flag = _submit(client_for(ht_reporter), healthtech_operator, subject_identifier=SUBJECT)
    delivery = _delivery(health_office_hook)
    receiver.script = [(503, {}, 0.0)]
    deliver(delivery_id=delivery.pk)
    _make_due(delivery)
    deliver(delivery_id=delivery.pk)

    [received] = receiver.accepted()
    assert json.loads(received.body)["data"]["identity"] == {
        "full_name": NAME,
        "phone": PHONE,
        "nik": NIK,
        "address": ADDRESS,
    }
    assert [(d.attempt, d.identity_included, d.basis) for d in _sent_records(flag, delivery)] == [
        (1, True, "consent"),
        (2, True, "consent"),
    ]


def test_a_queued_email_sent_after_the_withdrawal_carries_no_identity(
    client_for, ht_reporter, healthtech_operator, cases_seeded
):
    give(healthtech_operator, SUBJECT, HEALTH)
    flag = _submit(client_for(ht_reporter), healthtech_operator, subject_identifier=SUBJECT)
    delivery = _email_delivery()
    assert delivery.status == "pending"

    give(healthtech_operator, SUBJECT, HEALTH, state="withdrawn")
    deliver(delivery_id=delivery.pk)

    [email] = [m for m in mail.outbox if "kemkes" in m.to[0]]
    _assert_no_identity(email.message().as_bytes().decode("utf-8", "replace"))
    attachment = json.loads(email.attachments[0][1])
    assert "identity" not in attachment["data"] and attachment["data"]["flag_id"] == str(flag.uid)
    [record] = _sent_records(flag, delivery)
    assert not record.identity_included and record.channel_kind == "email"
    assert record.recipient == "Kementerian Kesehatan"


def test_an_email_that_failed_is_retried_without_identity_after_the_withdrawal(
    client_for, ht_reporter, healthtech_operator, cases_seeded, monkeypatch
):
    give(healthtech_operator, SUBJECT, HEALTH)
    flag = _submit(client_for(ht_reporter), healthtech_operator, subject_identifier=SUBJECT)
    delivery = _email_delivery()

    def mail_server_down(self, messages):
        raise smtplib.SMTPServerDisconnected("down")

    with monkeypatch.context() as patched:
        patched.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", mail_server_down)
        assert deliver(delivery_id=delivery.pk) is not None, "a mail server that is down is retried"
    give(healthtech_operator, SUBJECT, HEALTH, state="withdrawn")
    _make_due(delivery)
    deliver(delivery_id=delivery.pk)

    [email] = [m for m in mail.outbox if "kemkes" in m.to[0]]
    _assert_no_identity(email.message().as_bytes().decode("utf-8", "replace"))
    assert [(d.attempt, d.identity_included) for d in _sent_records(flag, delivery)] == [
        (1, True),
        (2, False),
    ]


def test_an_explicit_legal_basis_sends_the_identity_without_consent(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    flag = _submit(
        client_for(ht_reporter),
        healthtech_operator,
        legal_basis="vital_interest",
        share_identity="on",
        share_reason="Sesak berat, perlu dijemput ambulans segera",
    )
    delivery = _delivery(health_office_hook)
    receiver.script = [(503, {}, 0.0)]
    deliver(delivery_id=delivery.pk)
    _make_due(delivery)
    deliver(delivery_id=delivery.pk)

    [received] = receiver.accepted()
    assert json.loads(received.body)["data"]["identity"]["nik"] == NIK
    assert "ambulans" not in received.body.decode()
    assert [(d.identity_included, d.basis) for d in _sent_records(flag, delivery)] == [
        (True, "legal_basis"),
        (True, "legal_basis"),
    ]


def test_a_legal_basis_recorded_beside_consent_outlives_the_consent(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    give(healthtech_operator, SUBJECT, HEALTH)
    flag = _submit(
        client_for(ht_reporter),
        healthtech_operator,
        subject_identifier=SUBJECT,
        legal_basis="vital_interest",
        share_identity="on",
        share_reason="Sesak berat",
    )
    give(healthtech_operator, SUBJECT, HEALTH, state="withdrawn")
    deliver(delivery_id=_delivery(health_office_hook).pk)
    [received] = receiver.accepted()
    assert json.loads(received.body)["data"]["identity"]["nik"] == NIK
    [record] = _sent_records(flag, _delivery(health_office_hook))
    assert record.basis == "legal_basis"


def test_stopping_the_shared_basis_or_withdrawing_the_flag_keeps_queued_messages_minimal(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    client = client_for(ht_reporter)
    first = _submit(
        client,
        healthtech_operator,
        legal_basis="vital_interest",
        share_identity="on",
        share_reason="Sesak berat",
    )
    response = client.post(reverse("cases:flag_stop_sharing", args=[healthtech_operator.slug, first.pk]))
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.identity_basis == "" and first.identity_basis_reason == ""

    second = _submit(
        client,
        healthtech_operator,
        nik="",
        consultation_ref="K-2",
        legal_basis="vital_interest",
        share_identity="on",
        share_reason="Sesak berat",
    )
    client.post(
        reverse("cases:flag_withdraw", args=[healthtech_operator.slug, second.pk]), {"reason": "mistake"}
    )

    for delivery in Delivery.objects.filter(
        channel=health_office_hook, alert__event_type="suspected_case.flagged"
    ):
        deliver(delivery_id=delivery.pk)
    flagged = [r for r in receiver.accepted() if json.loads(r.body)["type"] == "suspected_case.flagged"]
    assert len(flagged) == 2
    for received in flagged:
        _assert_no_identity(received.body.decode())
    assert not Disclosure.objects.filter(stage="sent", identity_included=True).exists()


def test_stop_sharing_is_refused_to_a_viewer_and_404_for_another_operator(
    client_for, ht_reporter, ht_viewer, healthtech_operator, cases_seeded, outsider
):
    flag = _submit(
        client_for(ht_reporter),
        healthtech_operator,
        legal_basis="vital_interest",
        share_identity="on",
        share_reason="Sesak berat",
    )
    url = reverse("cases:flag_stop_sharing", args=[healthtech_operator.slug, flag.pk])
    assert client_for(ht_viewer).post(url).status_code == 403
    assert client_for(outsider).post(url).status_code == 404
    flag.refresh_from_db()
    assert flag.identity_basis == "legal_basis"


def test_the_outbox_and_the_admin_alert_page_never_hold_the_identity(
    client_for, ht_reporter, healthtech_operator, cases_seeded, staff_client, supervisor
):
    give(healthtech_operator, SUBJECT, HEALTH)
    flag = _submit(client_for(ht_reporter), healthtech_operator, subject_identifier=SUBJECT)
    give(healthtech_operator, SUBJECT, HEALTH, state="withdrawn")
    alert = Alert.objects.get(subject_id=str(flag.pk))
    _assert_no_identity(alert.body)
    page = staff_client(supervisor).get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    assert page.status_code == 200
    _assert_no_identity(page.content.decode())
    # What the alert was meant to carry when it was queued is still on record.
    queued = Disclosure.objects.filter(flag=flag, stage="queued")
    assert queued.count() == 2 and all(d.identity_included and d.basis == "consent" for d in queued)


def test_incident_alerts_leave_as_stored(db):
    from portal.alerts.disclosure import body_for_send, check_for

    assert check_for("incident.submitted") is None
    assert check_for("suspected_case.corrected") is not None
    alert = Alert(event_type="incident.submitted", body='{"data":{"schema":"incident.submitted/1"}}')
    assert body_for_send(Delivery(alert=alert)) == alert.body.encode()

    # A suspected-case document about no known flag leaves without anything personal.
    stray = {"schema": "suspected_case.flagged/1", "flag_id": "not-a-flag", "identity": {"nik": NIK}}
    alert = Alert(event_type="suspected_case.flagged", body=json.dumps({"data": stray}))
    sent = body_for_send(Delivery(alert=alert))
    assert NIK not in sent.decode() and json.loads(sent)["data"]["flag_id"] == "not-a-flag"


def test_alerts_queued_with_an_identity_before_the_change_lose_it(healthtech_operator, cases_seeded):
    """The data migration 0005 rewrites the stored body of alerts not yet delivered everywhere."""
    from importlib import import_module

    from django.apps import apps

    from portal.alerts.services import emit_event

    migration = import_module("incidents.cases.migrations.0005_purge_identity_from_queued_alerts")
    legacy = {
        "schema": "suspected_case.flagged/1",
        "flag_id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
        "province": "ID-SN",
        "identity": {"full_name": NAME, "nik": NIK},
    }
    queued = emit_event(event_type="suspected_case.flagged", operator=healthtech_operator, payload=legacy)
    delivered = emit_event(event_type="suspected_case.flagged", operator=healthtech_operator, payload=legacy)
    Delivery.objects.filter(alert=delivered).update(status="delivered")
    Delivery.objects.filter(alert=queued).exclude(pk=Delivery.objects.filter(alert=queued).first().pk).update(
        status="delivered"
    )

    migration.purge(apps, None)

    queued.refresh_from_db()
    _assert_no_identity(queued.body)
    assert json.loads(queued.body)["data"]["flag_id"] == legacy["flag_id"]
    delivered.refresh_from_db()
    assert NIK in delivered.body, "a message delivered everywhere stays the record of what was sent"


def test_a_batch_to_one_endpoint_checks_each_alert_as_it_leaves(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver, settings
):
    """After a webhook goes through, the same task sends other due alerts there: each is checked."""
    settings.ALERTS_BATCH_SIZE = 5
    give(healthtech_operator, SUBJECT, HEALTH)
    give(healthtech_operator, "user-2", HEALTH)
    client = client_for(ht_reporter)
    withdrawn = _submit(client, healthtech_operator, subject_identifier=SUBJECT)
    consenting = _submit(
        client, healthtech_operator, subject_identifier="user-2", nik="", consultation_ref="K-2"
    )
    give(healthtech_operator, SUBJECT, HEALTH, state="withdrawn")
    [lead, batched] = Delivery.objects.filter(channel=health_office_hook).order_by("pk")

    deliver(delivery_id=lead.pk)  # the first flag's alert, then the second's in the same batch

    assert Delivery.objects.get(pk=batched.pk).status == "delivered"
    by_flag = {json.loads(r.body)["data"]["flag_id"]: r for r in receiver.accepted()}
    _assert_no_identity(by_flag[str(withdrawn.uid)].body.decode())
    assert json.loads(by_flag[str(consenting.uid)].body)["data"]["identity"]["full_name"] == NAME
    assert [(d.attempt, d.identity_included) for d in _sent_records(withdrawn, lead)] == [(1, False)]
    assert [(d.attempt, d.basis) for d in _sent_records(consenting, batched)] == [(1, "consent")]
