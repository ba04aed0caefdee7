"""The pipeline end to end: a real Redis broker, a real Celery worker process, a local receiver.

Each scenario ends with every alert received exactly once after de-duplication by
webhook-id. The worker runs with short backoff and sweep settings (tests/alerts/worker.py).
"""

import os
import time

import pytest
import redis
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from portal.alerts.models import Alert, Channel, Delivery, DeliveryStatus, EventType, Notice, NoticeStatus
from portal.alerts.notices import queue_email
from portal.alerts.services import emit_event
from tests.alerts.worker import ThrowawayRedis, Worker, use_broker

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

BROKER = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture
def broker():
    """This session's Redis database, with this process publishing to it."""
    use_broker(BROKER)
    yield BROKER
    use_broker("memory://")


@pytest.fixture(scope="module")
def shared_worker(django_db_setup, django_db_blocker):
    """One worker for the scenarios that need no special worker (starting one takes seconds)."""
    redis.Redis.from_url(BROKER).flushdb()
    worker = Worker(BROKER).start()
    yield worker
    worker.cleanup()


@pytest.fixture
def worker(shared_worker, broker):
    return shared_worker


@pytest.fixture
def private_broker():
    """A throwaway redis-server for the scenarios that stop the broker or need a worker of their own."""
    private = ThrowawayRedis().start()
    use_broker(private.url)
    yield private
    private.stop()
    use_broker("memory://")


@pytest.fixture
def worker_factory(private_broker):
    workers: list[Worker] = []

    def start(**env) -> Worker:
        broker_url = private_broker.url
        worker = Worker(broker_url, **env).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.cleanup()


def emit(operator, n: int) -> list[Alert]:
    alerts = []
    for i in range(n):
        with transaction.atomic():
            alerts.append(
                emit_event(
                    event_type=EventType.INCIDENT_SUBMITTED,
                    operator=operator,
                    payload={"schema": "incident.submitted/1", "incident": {"reference": f"INC-{i}"}},
                )
            )
    return alerts


def wait_until(predicate, timeout: float = 40.0, what: str = "condition", worker: Worker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    detail = ("\n--- worker log ---\n" + worker.output()[-4000:]) if worker else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


def statuses(channel: Channel) -> list[str]:
    return list(Delivery.objects.filter(channel=channel).values_list("status", flat=True))


def all_delivered(channel: Channel, n: int):
    return lambda: statuses(channel).count(DeliveryStatus.DELIVERED) == n


def assert_received_exactly_once(receiver, alerts: list[Alert]) -> None:
    unique = receiver.unique_accepted()
    assert sorted(unique) == sorted(a.webhook_id for a in alerts)
    for alert in alerts:
        assert unique[alert.webhook_id]["data"] == alert.payload
    assert all(r.verified for r in receiver.received)


# The scenarios with a worker of their own come first: the shared worker's sweeper must not
# be running yet, or it would pick up their deliveries.


def test_a_broker_down_at_commit_time_loses_nothing(worker_factory, private_broker, operator, hook, receiver):
    """(a) The broker is down when the event commits, then comes back: the sweeper sends it."""
    worker = worker_factory()
    private_broker.stop()
    alerts = emit(operator, 5)  # commits fine; publishing fails and is logged
    assert statuses(hook) == [DeliveryStatus.PENDING] * 5
    time.sleep(1)
    private_broker.start()
    wait_until(all_delivered(hook, 5), timeout=60, what="delivery after the broker came back", worker=worker)
    assert_received_exactly_once(receiver, alerts)


def test_a_frozen_broker_does_not_hold_the_request_and_the_sweeper_sends_later(
    worker_factory, private_broker, operator, reporter, client_for, hook, receiver
):
    """(a') Redis stopped by SIGSTOP (connects succeed, nothing answers): the submit returns at once."""
    from django.urls import reverse

    from tests.incidents.helpers import file_incident

    worker = worker_factory()
    incident = file_incident(operator, reporter, submit=False)
    client = client_for(reporter)
    url = reverse(
        "incidents:submit", kwargs={"operator_slug": operator.slug, "reference": incident.reference}
    )
    private_broker.freeze()
    try:
        started = time.monotonic()
        response = client.post(url)
        took = time.monotonic() - started
        time.sleep(2)  # the worker meets the frozen broker too
    finally:
        private_broker.thaw()
    assert response.status_code == 302
    assert took < 2.0, f"the request took {took:.1f} s with the broker frozen"
    [alert] = Alert.objects.filter(event_type=EventType.INCIDENT_SUBMITTED)
    wait_until(all_delivered(hook, 1), timeout=40, what="delivery after the broker thawed", worker=worker)
    assert_received_exactly_once(receiver, [alert])


def test_an_email_to_people_committed_while_the_broker_is_down_still_goes_out(
    worker_factory, private_broker, operator
):
    """E-mails to people share the outbox's guarantees: the sweeper sends what the broker missed."""
    worker = worker_factory()
    private_broker.stop()
    message = EmailMultiAlternatives(
        subject="INC-2026-0042: information requested", body="Please add the logs.", to=["it@acme.example"]
    )
    with transaction.atomic():
        notice = queue_email(message, template="incidents/information_requested", operator=operator)
    assert Notice.objects.get(pk=notice.pk).status == NoticeStatus.PENDING
    time.sleep(1)
    private_broker.start()
    wait_until(
        lambda: Notice.objects.get(pk=notice.pk).status == NoticeStatus.SENT,
        timeout=60,
        what="the e-mail after the broker came back",
        worker=worker,
    )
    [mail] = [m for m in worker.mails() if "INC-2026-0042" in m]
    assert "it@acme.example" in mail and "Please add the logs." in mail


def test_a_worker_killed_mid_send_loses_nothing(worker_factory, operator, hook, receiver):
    """(b) SIGKILL while the receiver is still answering; a new worker's sweeper sends it again."""
    receiver.script = [(200, {}, 6.0)]  # the first request hangs long enough to kill the worker
    worker = worker_factory()
    alerts = emit(operator, 3)
    assert receiver.first_request.wait(20), worker.output()
    worker.kill()
    stuck = Delivery.objects.get(channel=hook, status=DeliveryStatus.SENDING)
    assert stuck.alert.webhook_id == receiver.received[0].webhook_id
    worker = worker_factory()
    wait_until(all_delivered(hook, 3), timeout=60, what="delivery after the kill", worker=worker)
    assert_received_exactly_once(receiver, alerts)
    # The receiver saw the interrupted alert twice; the webhook-id made the second a duplicate.
    assert receiver.accepted_ids().count(stuck.alert.webhook_id) == 2


def test_a_worker_killed_mid_batch_sends_again_only_the_alert_it_was_sending(
    worker_factory, operator, hook, receiver
):
    """Each result is recorded as its send returns: a kill mid-batch repeats one alert, not the batch."""
    receiver.script = [(200, {}, 0)] * 8 + [(200, {}, 8.0)]  # the ninth request hangs
    alerts = emit(operator, 15)  # queued before the worker starts: one task sends them as a batch
    worker = worker_factory()
    wait_until(lambda: len(receiver.received) >= 9, what="the ninth request", worker=worker)
    worker.kill()
    assert statuses(hook).count(DeliveryStatus.DELIVERED) == 8  # recorded one by one, not at the end
    hung = receiver.received[8].webhook_id
    worker = worker_factory()  # its sweeper frees the hung one once the lease (3 s here) has expired
    wait_until(all_delivered(hook, 15), timeout=60, what="delivery after the kill", worker=worker)
    assert_received_exactly_once(receiver, alerts)
    repeated = [i for i in set(receiver.accepted_ids()) if receiver.accepted_ids().count(i) > 1]
    assert repeated == [hung]


def test_one_hanging_endpoint_does_not_delay_alerts_to_another_authority(
    worker_factory, operator, hook, receiver
):
    """With one endpoint hanging, at least 95 % of alerts to another reach it within 1 s of the commit."""
    from datetime import timedelta

    from portal.alerts.models import Authority, RoutingRule
    from tests.alerts.receiver import Receiver

    healthy = Receiver().start()
    try:
        authority = Authority.objects.create(code="healthy", name="Healthy Authority", language="en")
        other = Channel(authority=authority, kind="webhook", url=healthy.url)
        healthy.secrets = [other.rotate_secret(overlap=timedelta(0))]
        other.save()
        RoutingRule.objects.create(event_pattern="*", authority=authority)
        receiver.default = (200, {}, 30.0)  # the first endpoint hangs past the read timeout
        # Production's worker shape and sweeper timings (the short test ones would re-publish the
        # hanging endpoint's alerts every second).
        worker = worker_factory(
            pool="prefork",
            concurrency="4",
            ALERTS_READ_TIMEOUT="5",
            ALERTS_SWEEP_INTERVAL="5",
            ALERTS_PENDING_GRACE="10",
        )
        committed: dict[str, float] = {}
        for alert in emit(operator, 1):
            committed[alert.webhook_id] = time.time()
        assert receiver.first_request.wait(20), worker.output()
        for _ in range(20):
            [alert] = emit(operator, 1)
            committed[alert.webhook_id] = time.time()
            time.sleep(0.1)
        wait_until(lambda: len(healthy.unique_accepted()) == 21, timeout=30, what="the healthy endpoint")
        first_seen: dict[str, float] = {}
        for r in healthy.accepted():
            first_seen.setdefault(r.webhook_id, r.at)
        within_a_second = [i for i, t in committed.items() if first_seen[i] - t <= 1.0]
        late = {i: round(first_seen[i] - t, 2) for i, t in committed.items() if i not in within_a_second}
        assert len(within_a_second) >= 20, f"{late}\n--- worker log ---\n{worker.output()[-6000:]}"
        assert len(receiver.received) <= 2 + 2  # the hanging endpoint never had more than its cap at once
    finally:
        healthy.stop()


def test_the_worker_refuses_to_send_to_a_private_address_not_allowed_there(
    worker_factory, operator, hook, receiver
):
    """SSRF at send time: the worker's settings allow no private network; nothing reaches 127.0.0.1."""
    worker = worker_factory(ALERTS_TEST_ALLOWED_NETWORKS="")
    emit(operator, 1)
    wait_until(lambda: statuses(hook) == [DeliveryStatus.DEAD], worker=worker)
    assert "private" in Delivery.objects.get(channel=hook).last_error
    assert receiver.received == []


def test_a_committed_event_is_delivered_by_the_worker(worker, operator, hook, receiver):
    alerts = emit(operator, 5)
    wait_until(all_delivered(hook, 5), what="5 deliveries", worker=worker)
    assert_received_exactly_once(receiver, alerts)
    assert len(receiver.accepted()) == 5  # nothing was sent twice


def test_alerts_committed_while_the_worker_sends_to_their_endpoint_cost_no_task_and_all_arrive(
    worker, operator, hook, receiver, monkeypatch
):
    """A burst to one endpoint: the worker already sending there takes the later alerts itself."""
    from portal.alerts import services

    published: list[int] = []
    publish = services.enqueue_deliveries

    def counted(*, delivery_ids, countdown=None, kind=None):
        published.extend(delivery_ids)
        return publish(delivery_ids=delivery_ids, countdown=countdown, kind=kind)

    monkeypatch.setattr(services, "enqueue_deliveries", counted)
    receiver.script = [(200, {}, 2.0)]  # the first request takes a while: the worker is at it
    first = emit(operator, 1)
    assert receiver.first_request.wait(20), worker.output()
    burst = emit(operator, 20)
    wait_until(all_delivered(hook, 21), what="the burst", worker=worker)
    assert_received_exactly_once(receiver, first + burst)
    assert len(receiver.accepted()) == 21  # nothing was sent twice
    assert published == [first[0].deliveries.get().pk]  # one task for 21 alerts


def test_a_rolled_back_event_is_neither_kept_nor_sent(worker, operator, hook, receiver):
    with pytest.raises(RuntimeError), transaction.atomic():
        ghost = emit_event(
            event_type=EventType.INCIDENT_SUBMITTED,
            operator=operator,
            payload={"schema": "incident.submitted/1", "incident": {"reference": "GHOST"}},
        )
        raise RuntimeError("the incident failed to save")
    kept = emit(operator, 1)
    wait_until(all_delivered(hook, 1), worker=worker)
    time.sleep(2.5)  # two more sweeps: nothing else turns up
    assert not Alert.objects.filter(uuid=ghost.uuid).exists()
    assert ghost.webhook_id not in receiver.accepted_ids()
    assert_received_exactly_once(receiver, kept)


def test_a_receiver_answering_503_for_a_while_gets_everything(worker, operator, hook, receiver):
    """(c) 503s (one with Retry-After) then 200: retried with backoff, same webhook-id each time."""
    receiver.script = [(503, {"Retry-After": "1"}, 0)] + [(503, {}, 0)] * 5
    alerts = emit(operator, 3)
    wait_until(all_delivered(hook, 3), timeout=60, what="delivery after the 503s", worker=worker)
    assert_received_exactly_once(receiver, alerts)
    assert Delivery.objects.filter(channel=hook, attempt_count__gt=1).exists()
    failures = [r for r in receiver.received if r.status == 503]
    assert len(failures) == 6 and {r.webhook_id for r in failures} <= {a.webhook_id for a in alerts}


def test_after_a_410_later_alerts_are_held_and_enabling_the_endpoint_delivers_them_all(
    worker, operator, hook, receiver, staff_client, supervisor
):
    """(d) 410 disables the endpoint; the 40 events that follow are kept and all arrive once it is back."""
    receiver.default = (410, {}, 0)
    [first] = emit(operator, 1)
    wait_until(lambda: statuses(hook) == [DeliveryStatus.HELD], worker=worker)
    hook.refresh_from_db()
    assert not hook.enabled and hook.disabled_reason
    wait_until(lambda: any(hook.url in m for m in worker.mails()), what="the e-mail to BSSN", worker=worker)
    later = emit(operator, 40)
    assert statuses(hook) == [DeliveryStatus.HELD] * 41
    time.sleep(1.5)  # sweeps pass: nothing is sent to the disabled endpoint
    assert len(receiver.received) == 1
    # The authority fixed its endpoint; BSSN enables it again in the admin and releases the backlog.
    receiver.default = (200, {}, 0)
    response = staff_client(supervisor).post(
        "/admin/alerts/channel/", {"action": "enable_and_release", "_selected_action": [hook.pk]}
    )
    assert response.status_code == 302
    wait_until(all_delivered(hook, 41), what="the released backlog", worker=worker)
    assert_received_exactly_once(receiver, [first, *later])
    hook.refresh_from_db()
    assert hook.enabled and hook.disabled_reason == ""
    # Released in order: the alerts arrived oldest first.
    order = [r.webhook_id for r in receiver.accepted()]
    assert order == [a.webhook_id for a in [first, *later]]


def test_a_400_is_dead_after_one_attempt_and_the_admin_retry_delivers_it(
    worker, operator, hook, receiver, staff_client, analyst
):
    """(e) 400: dead after one attempt; the admin's retry action sends it again, once."""
    receiver.default = (400, {}, 0)
    [alert] = emit(operator, 1)
    wait_until(lambda: statuses(hook) == [DeliveryStatus.DEAD], worker=worker)
    delivery = Delivery.objects.get(channel=hook)
    assert delivery.attempt_count == 1 and len(receiver.received) == 1
    receiver.default = (200, {}, 0)
    response = staff_client(analyst).post(
        "/admin/alerts/delivery/", {"action": "retry", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    wait_until(all_delivered(hook, 1), worker=worker)
    assert_received_exactly_once(receiver, [alert])
    assert list(delivery.attempts.values_list("status_code", flat=True)) == [400, 200]
