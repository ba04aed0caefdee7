"""Signatures interoperate with the Standard Webhooks reference library, also across a rotation."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.alerts import signing
from portal.alerts.models import Channel, EventType
from portal.alerts.services import deliver, emit_event, rotate_secret

BODY = b'{"id":"msg_1","type":"test.ping","data":{"schema":"test.ping/1"}}'


def test_a_new_secret_has_the_standard_form():
    channel = Channel(kind="webhook", url="https://hooks.example.org/")
    secret = channel.rotate_secret(overlap=timedelta(0))
    assert secret.startswith("whsec_") and len(signing.secret_key(secret)) == 32


def test_the_reference_library_verifies_our_signature():
    secret = Channel(kind="webhook").rotate_secret(overlap=timedelta(0))
    headers = signing.webhook_headers([secret], "msg_1", BODY)
    assert Webhook(secret).verify(BODY, headers) is not None


def test_our_verifier_accepts_the_reference_librarys_signature():
    secret = Channel(kind="webhook").rotate_secret(overlap=timedelta(0))
    now = timezone.now()
    signature = Webhook(secret).sign("msg_2", now, BODY.decode())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    signing.verify(secret, headers, BODY)


def test_a_tampered_body_or_an_old_timestamp_fails():
    secret = Channel(kind="webhook").rotate_secret(overlap=timedelta(0))
    headers = signing.webhook_headers([secret], "msg_1", BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, headers, BODY + b" ")
    old = signing.webhook_headers([secret], "msg_1", BODY, timestamp=int(time.time()) - 3600)
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, old, BODY)


@pytest.mark.django_db
def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(operator, hook, receiver):
    old_secret = receiver.secrets[0]
    new_secret = rotate_secret(channel=hook, overlap=timedelta(hours=2))
    assert new_secret != old_secret
    receiver.secrets = []  # record without checking; checked below with each secret alone
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    deliver(delivery_id=alert.deliveries.get(channel=hook).pk)
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(got.body, got.headers)  # a receiver not yet updated
    Webhook(new_secret).verify(got.body, got.headers)  # a receiver already updated

    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        hook.refresh_from_db()
        assert hook.signing_secrets() == [new_secret]
        headers = signing.webhook_headers(hook.signing_secrets(), alert.webhook_id, got.body)
        Webhook(new_secret).verify(got.body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old_secret).verify(got.body, headers)


@pytest.mark.django_db
def test_the_secret_is_stored_encrypted(hook):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM alerts_channel WHERE id = %s", [hook.pk])
        raw = cursor.fetchone()[0]
    raw = raw.tobytes() if isinstance(raw, memoryview) else raw
    assert b"whsec_" not in (raw if isinstance(raw, bytes) else raw.encode())
