"""The delivery service against a real local HTTP receiver (the boundary), no worker."""

import json
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from portal.alerts import store
from portal.alerts.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, EventType
from portal.alerts.services import backoff_seconds, deliver, emit_event, sweep_deliveries

pytestmark = pytest.mark.django_db


def _emit(operator):
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED,
        operator=operator,
        payload={"schema": "incident.submitted/1", "incident": {"reference": "INC-7"}},
    )
    return alert, alert.deliveries.get(kind="webhook")


def claim(*, delivery_id: int):
    """Claim a delivery as another worker would (the claim `deliver` starts with)."""
    return store.claim(delivery_id=delivery_id, token=uuid.uuid4(), now=timezone.now())


def _make_due(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_it_delivers_a_signed_webhook_and_records_the_attempt(operator, hook, receiver):
    alert, delivery = _emit(operator)
    assert deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at
    attempt = delivery.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 200, AttemptOutcome.DELIVERED)
    assert attempt.latency_ms >= 0 and attempt.started_at
    [got] = receiver.received
    assert got.verified  # checked with the standardwebhooks reference library
    assert got.webhook_id == alert.webhook_id
    assert got.body == alert.body.encode()
    assert json.loads(got.body)["data"]["incident"]["reference"] == "INC-7"


def test_a_second_run_of_the_same_task_sends_nothing(operator, hook, receiver):
    _alert, delivery = _emit(operator)
    deliver(delivery_id=delivery.pk)
    deliver(delivery_id=delivery.pk)
    assert len(receiver.received) == 1


def test_a_claimed_delivery_cannot_be_claimed_again(operator, hook):
    _alert, delivery = _emit(operator)
    assert claim(delivery_id=delivery.pk) is not None
    assert claim(delivery_id=delivery.pk) is None
    assert deliver(delivery_id=delivery.pk) is None
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENDING


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_it_retries_transient_answers_with_the_same_webhook_id(operator, hook, receiver, status, settings):
    settings.ALERTS_BACKOFF_BASE = 10
    receiver.script = [(status, {}, 0)]
    _alert, delivery = _emit(operator)
    retry_in = deliver(delivery_id=delivery.pk)
    assert 5 <= retry_in <= 10  # first backoff: base/2 .. base (jitter)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_error == f"HTTP {status}"
    assert delivery.next_attempt_at > timezone.now()
    assert deliver(delivery_id=delivery.pk) is None  # not due yet: nothing sent
    _make_due(delivery)
    deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [a.outcome for a in delivery.attempts.all()] == [AttemptOutcome.RETRY, AttemptOutcome.DELIVERED]
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id


def test_it_honours_retry_after(operator, hook, receiver, settings):
    settings.ALERTS_BACKOFF_BASE = 1
    receiver.script = [(503, {"Retry-After": "120"}, 0)]
    _alert, delivery = _emit(operator)
    assert deliver(delivery_id=delivery.pk) == 120


def test_backoff_grows_exponentially_up_to_the_cap(settings):
    settings.ALERTS_BACKOFF_BASE = 30
    settings.ALERTS_BACKOFF_CAP = 600
    waits = [backoff_seconds(attempt=n) for n in range(1, 8)]
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120
    assert all(300 <= w <= 600 for w in waits[5:])


def test_it_retries_a_connection_error(operator, hook, receiver, settings):
    receiver.stop()
    _alert, delivery = _emit(operator)
    assert deliver(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("connection failed")


def test_it_retries_a_read_timeout(operator, hook, receiver, settings):
    settings.ALERTS_READ_TIMEOUT = 0.3
    receiver.script = [(200, {}, 1.0)]
    _alert, delivery = _emit(operator)
    assert deliver(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    assert delivery.last_error == "timed out"


def test_a_400_is_permanent_after_one_attempt(operator, hook, receiver):
    receiver.default = (400, {}, 0)
    _alert, delivery = _emit(operator)
    assert deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempt_count == 1


def test_a_redirect_is_not_followed(operator, hook, receiver):
    receiver.default = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, 0)
    _alert, delivery = _emit(operator)
    deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert len(receiver.received) == 1


def test_a_410_disables_the_endpoint_and_tells_bssn(
    operator, hook, receiver, settings, django_capture_on_commit_callbacks
):
    settings.BSSN_NOTIFY_EMAILS = ["csirt@bssn.example.org"]
    receiver.default = (410, {}, 0)
    _alert, delivery = _emit(operator)
    with django_capture_on_commit_callbacks(execute=True):  # BSSN's e-mail leaves after the commit
        deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    hook.refresh_from_db()
    # Held with the alerts that follow, for BSSN to release or discard when it enables it again.
    assert delivery.status == DeliveryStatus.HELD and delivery.attempts.get().status_code == 410
    assert not hook.enabled and "410" in hook.disabled_reason or "gone" in hook.disabled_reason
    [notice] = [m for m in mail.outbox if m.to == ["csirt@bssn.example.org"]]
    assert hook.url in notice.body
    # The next alert is kept for the disabled endpoint, not sent to it.
    (_alert2,) = [_emit_any(operator)]
    later = _alert2.deliveries.get(channel=hook)
    assert later.status == DeliveryStatus.HELD
    assert deliver(delivery_id=later.pk) is None and len(receiver.received) == 1


def _emit_any(operator):
    return emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )


def test_the_last_attempt_makes_the_delivery_dead(operator, hook, receiver, settings):
    settings.ALERTS_MAX_ATTEMPTS = 2
    receiver.default = (503, {}, 0)
    _alert, delivery = _emit(operator)
    assert deliver(delivery_id=delivery.pk) is not None
    _make_due(delivery)
    assert deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempt_count == 2


def test_an_outcome_from_a_stale_claim_does_not_override_the_newer_one(operator, hook, receiver, settings):
    """A worker that hung past its lease must not undo what the newer claim recorded."""
    settings.ALERTS_LEASE_SECONDS = 0
    settings.ALERTS_PENDING_GRACE = 0
    _alert, delivery = _emit(operator)
    assert claim(delivery_id=delivery.pk)  # the first worker, then it hangs
    sweep_deliveries()  # frees it (stuck) and re-enqueues
    deliver(delivery_id=delivery.pk)  # the second worker delivers
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_count == 2


def test_the_email_transport_writes_the_alert_in_the_authoritys_language(operator, seeded):
    from portal.alerts.models import Authority

    Authority.objects.filter(code="bssn-csirt").update(language="en")
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED,
        operator=operator,
        payload={"schema": "incident.submitted/1", "incident": {"reference": "INC-9"}},
    )
    delivery = alert.deliveries.get(authority__code="bssn-csirt")
    mail.outbox.clear()
    deliver(delivery_id=delivery.pk)
    [message] = mail.outbox
    assert message.to == ["csirt@bssn.example.org"]
    assert "[INC-9] Incident submitted" in message.subject and operator.name in message.subject
    assert "INC-9" in message.body and "incident.reference" not in message.body
    html = message.alternatives[0]
    assert "INC-9" in html[0] and html[1] == "text/html"
    name, content, mimetype = message.attachments[0]
    assert name == "alert.json" and json.loads(content)["id"] == alert.webhook_id
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED


def test_the_email_is_in_indonesian_for_an_indonesian_authority(operator, seeded):
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    mail.outbox.clear()
    deliver(delivery_id=alert.deliveries.get(authority__code="bssn-csirt").pk)
    assert "Insiden" in mail.outbox[0].subject


def test_an_smtp_outage_is_retried(operator, seeded, monkeypatch):
    import smtplib

    def down(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("gone away")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", down)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    delivery = alert.deliveries.get(authority__code="bssn-csirt")
    assert deliver(delivery_id=delivery.pk) is not None
    assert Attempt.objects.get(delivery=delivery).outcome == AttemptOutcome.RETRY


def test_a_rejected_recipient_is_permanent(operator, seeded, monkeypatch):
    import smtplib

    def refused(*args, **kwargs):
        raise smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"no such user")})

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refused)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    delivery = alert.deliveries.get(authority__code="bssn-csirt")
    deliver(delivery_id=delivery.pk)
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DEAD


def test_the_sweeper_reenqueues_overdue_pending_deliveries(operator, hook, settings, monkeypatch):
    settings.ALERTS_PENDING_GRACE = 60
    enqueued = []
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: enqueued.extend(delivery_ids) or len(delivery_ids),
    )
    _alert, delivery = _emit(operator)
    assert sweep_deliveries() == 0  # fresh: its own task is on the way
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    assert sweep_deliveries() == 1 and enqueued == [delivery.pk]
    assert sweep_deliveries() == 0  # not again before another grace period


def test_the_sweeper_frees_a_delivery_once_its_lease_expired(operator, hook, settings, monkeypatch):
    settings.ALERTS_LEASE_SECONDS = 20
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: len(delivery_ids),
    )
    _alert, delivery = _emit(operator)
    claim(delivery_id=delivery.pk)
    assert sweep_deliveries() == 0  # the lease runs: its worker is alive
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENDING
    Delivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    assert sweep_deliveries() == 1
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING


def test_a_worker_renews_the_lease_of_a_slow_send(operator, hook, settings):
    from portal.alerts import lease

    settings.ALERTS_LEASE_SECONDS = 20
    _alert, delivery = _emit(operator)
    token = uuid.uuid4()
    assert store.claim(delivery_id=delivery.pk, token=token, now=timezone.now())
    almost_expired = timezone.now() + timedelta(seconds=1)
    Delivery.objects.filter(pk=delivery.pk).update(leased_until=almost_expired)
    with lease.held(tokens=[token]):
        assert lease.renew_now() == 1
    assert Delivery.objects.get(pk=delivery.pk).leased_until > almost_expired + timedelta(seconds=15)
    assert lease.renew_now() == 0  # done with it: no longer renewed


def test_a_broker_that_is_down_at_commit_leaves_the_delivery_pending(operator, hook, monkeypatch):
    from portal.alerts.tasks import deliver_task

    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(deliver_task, "apply_async", down)
    from portal.alerts.services import enqueue_deliveries

    _alert, delivery = _emit(operator)
    assert enqueue_deliveries(delivery_ids=[delivery.pk]) == 0
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING
