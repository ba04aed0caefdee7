"""`manage.py webhook_receiver`: verifies signatures, drops duplicates by webhook-id, prints each alert."""

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from portal.alerts import signing
from portal.alerts.models import Channel, EventType
from portal.alerts.services import deliver, emit_event

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def secret():
    return Channel(kind="webhook").rotate_secret(overlap=timedelta(0))


@pytest.fixture
def receiver_process(secret):
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings_test", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "webhook_receiver", "--port", str(port), "--secret", secret],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = proc.stdout.readline()
    assert "Listening" in first, first
    yield f"http://127.0.0.1:{port}/hook", proc
    proc.terminate()
    proc.wait(timeout=10)


def _output(proc) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    return out


@pytest.mark.django_db
def test_it_prints_a_verified_alert_once_and_drops_the_duplicate(receiver_process, secret, operator):
    from portal.alerts.models import Authority, Delivery, RoutingRule

    url, proc = receiver_process
    authority = Authority.objects.create(code="rx", name="RX")
    channel = Channel(authority=authority, kind="webhook", url=url, secret=secret)
    channel.save()
    RoutingRule.objects.create(event_pattern="*", authority=authority)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED,
        operator=operator,
        payload={"schema": "incident.submitted/1", "incident": {"reference": "INC-77"}},
    )
    delivery = alert.deliveries.get(channel=channel)
    deliver(delivery_id=delivery.pk)
    assert Delivery.objects.get(pk=delivery.pk).status == "delivered"
    # The same message again (a retry after a lost answer): dropped as a duplicate.
    body = alert.body.encode()
    again = requests.post(
        url, data=body, headers=signing.webhook_headers([secret], alert.webhook_id, body), timeout=5
    )
    assert again.status_code == 200 and again.text == "duplicate"
    out = _output(proc)
    assert out.count(f"alert {alert.webhook_id}") == 1
    assert "INC-77" in out
    assert f"duplicate {alert.webhook_id} dropped" in out


def test_it_rejects_a_bad_signature_and_a_stale_timestamp(receiver_process, secret):
    url, proc = receiver_process
    body = b'{"id":"msg_x"}'
    wrong = Channel(kind="webhook").rotate_secret(overlap=timedelta(0))
    assert (
        requests.post(
            url, data=body, headers=signing.webhook_headers([wrong], "msg_x", body), timeout=5
        ).status_code
        == 401
    )
    stale = signing.webhook_headers([secret], "msg_x", body, timestamp=1_000_000_000)
    assert requests.post(url, data=body, headers=stale, timeout=5).status_code == 401
    assert requests.post(url, data=body, timeout=5).status_code == 401
    out = _output(proc)
    assert "signature does not verify" in out and "tolerance" in out


def test_it_accepts_the_reference_librarys_signature(receiver_process, secret):
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    url, proc = receiver_process
    now = datetime.now(tz=UTC)
    body = '{"id":"msg_ref","type":"test.ping","data":{"schema":"test.ping/1"}}'
    headers = {
        "webhook-id": "msg_ref",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_ref", now, body),
    }
    assert requests.post(url, data=body.encode(), headers=headers, timeout=5).status_code == 200
    assert "alert msg_ref" in _output(proc)
