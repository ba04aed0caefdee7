"""After a webhook goes through, the same call sends the other due alerts to that endpoint."""

import pytest

from portal.alerts.models import AttemptOutcome, Delivery, DeliveryStatus, EventType
from portal.alerts.services import deliver, emit_event

pytestmark = pytest.mark.django_db


def _emit_many(operator, channel, count: int) -> list[Delivery]:
    for number in range(count):
        emit_event(
            event_type=EventType.INCIDENT_SUBMITTED,
            operator=operator,
            payload={"schema": "incident.submitted/1", "incident": {"reference": f"INC-{number}"}},
        )
    return list(Delivery.objects.filter(channel=channel).order_by("pk"))


def test_one_call_sends_the_waiting_alerts_and_their_own_tasks_send_nothing(operator, hook, receiver):
    deliveries = _emit_many(operator, hook, 5)
    deliver(delivery_id=deliveries[0].pk)
    assert Delivery.objects.filter(channel=hook, status=DeliveryStatus.DELIVERED).count() == 5
    for delivery in deliveries[1:]:
        assert deliver(delivery_id=delivery.pk) is None  # each alert's own task, arriving later
    assert sorted(r.webhook_id for r in receiver.received) == sorted(d.alert.webhook_id for d in deliveries)
    assert all(r.verified for r in receiver.received)
    for delivery in Delivery.objects.filter(channel=hook):
        attempt = delivery.attempts.get()
        assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 200, AttemptOutcome.DELIVERED)
        assert delivery.delivered_at and delivery.claim_token is None and delivery.attempt_count == 1


def test_a_batch_claims_again_while_alerts_are_due(operator, hook, receiver, settings):
    settings.ALERTS_BATCH_SIZE = 3
    deliveries = _emit_many(operator, hook, 5)
    deliver(delivery_id=deliveries[0].pk)  # itself, then claims of at most 2
    assert Delivery.objects.filter(channel=hook, status=DeliveryStatus.DELIVERED).count() == 5
    assert len(receiver.received) == 5


def test_a_failure_stops_the_batch_and_leaves_the_rest_untouched(operator, hook, receiver, settings):
    settings.ALERTS_BACKOFF_BASE = 60
    receiver.script = [(200, {}, 0), (200, {}, 0), (503, {}, 0)]
    first, second, third, *rest = _emit_many(operator, hook, 6)
    deliver(delivery_id=first.pk)
    statuses = dict(Delivery.objects.filter(channel=hook).values_list("pk", "status"))
    assert statuses[first.pk] == statuses[second.pk] == DeliveryStatus.DELIVERED
    third.refresh_from_db()
    assert (third.status, third.last_error, third.attempt_count) == (DeliveryStatus.PENDING, "HTTP 503", 1)
    assert third.attempts.get().outcome == AttemptOutcome.RETRY
    for delivery in rest:  # never tried: pending, due, no attempt counted, for their own tasks
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempt_count, delivery.claim_token) == (
            DeliveryStatus.PENDING,
            0,
            None,
        )
        assert not delivery.attempts.exists()
    assert len(receiver.received) == 3
    deliver(delivery_id=rest[0].pk)  # their own task sends them
    assert Delivery.objects.filter(pk__in=[d.pk for d in rest], status=DeliveryStatus.DELIVERED).count() == 3


def _published(monkeypatch) -> list[int]:
    """Record the delivery tasks published from here on (instead of publishing them)."""
    published: list[int] = []

    def enqueue(*, delivery_ids, countdown=None, kind=None) -> int:
        published.extend(delivery_ids)
        return len(delivery_ids)

    monkeypatch.setattr("portal.alerts.services.enqueue_deliveries", enqueue)
    return published


def test_the_batch_stops_when_its_time_is_up_and_hands_the_rest_to_a_new_task(
    operator, hook, receiver, settings, monkeypatch
):
    settings.ALERTS_BATCH_SECONDS = 0
    receiver.script = [(200, {}, 0.05)]
    deliveries = _emit_many(operator, hook, 4)
    published = _published(monkeypatch)
    deliver(delivery_id=deliveries[0].pk)
    assert Delivery.objects.filter(channel=hook, status=DeliveryStatus.DELIVERED).count() <= 2
    untried = Delivery.objects.filter(channel=hook, status=DeliveryStatus.PENDING)
    assert untried.count() >= 2 and not untried.filter(attempt_count__gt=0).exists()
    # Their own tasks may have come and gone while the worker was at it: one is published
    # again, and its task sends the rest.
    assert len(published) == 1 and published[0] in {d.pk for d in untried}


def test_a_failure_hands_the_rest_of_the_endpoints_alerts_to_a_new_task(
    operator, hook, receiver, settings, monkeypatch
):
    settings.ALERTS_BACKOFF_BASE = 60
    receiver.script = [(503, {}, 0)]
    first, second, third = _emit_many(operator, hook, 3)
    published = _published(monkeypatch)
    assert deliver(delivery_id=first.pk) is not None  # its retry, scheduled by its task
    assert published == [second.pk]
    statuses = dict(Delivery.objects.filter(channel=hook).values_list("pk", "status"))
    assert statuses == {first.pk: "pending", second.pk: "pending", third.pk: "pending"}
    assert len(receiver.received) == 1


def test_alerts_committed_while_a_worker_sends_to_their_endpoint_are_left_to_it(
    operator, hook, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    import uuid

    from django.utils import timezone

    from portal.alerts import services, store

    published = _published(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = _emit_many(operator, hook, 1)
    assert first.pk in published  # nobody is sending to the endpoint: its task is published
    token = uuid.uuid4()
    claimed = store.claim(delivery_id=first.pk, token=token, now=timezone.now())  # a worker takes it
    with django_capture_on_commit_callbacks(execute=True):
        later = _emit_many(operator, hook, 2)[1:]
    assert not {d.pk for d in later} & set(published)  # no task for them: that worker claims again
    services._drain([claimed], token, own=first.pk)  # the worker goes on: the first, then a claim
    assert set(Delivery.objects.filter(channel=hook).values_list("status", flat=True)) == {"delivered"}
    assert len(receiver.received) == 3


def test_a_claim_whose_lease_ran_out_does_not_hold_back_new_alerts(
    operator, hook, monkeypatch, django_capture_on_commit_callbacks
):
    """A worker that died sending to the endpoint would never claim again: tasks are published."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from portal.alerts import store

    [first] = _emit_many(operator, hook, 1)
    store.claim(delivery_id=first.pk, token=uuid.uuid4(), now=timezone.now() - timedelta(minutes=5))
    published = _published(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        later = _emit_many(operator, hook, 2)[1:]
    assert {d.pk for d in later} <= set(published)


def test_a_batch_only_takes_alerts_for_the_same_endpoint(operator, hook, webhook_authority, receiver):
    from portal.alerts.models import RoutingRule

    RoutingRule.objects.create(event_pattern="*", authority=webhook_authority.authority)
    _emit_many(operator, hook, 3)
    first = Delivery.objects.filter(channel=hook).order_by("pk").first()
    deliver(delivery_id=first.pk)
    assert set(Delivery.objects.filter(channel=hook).values_list("status", flat=True)) == {"delivered"}
    other = Delivery.objects.filter(channel=webhook_authority)
    assert other.count() == 3 and set(other.values_list("status", flat=True)) == {"pending"}


def test_a_webhook_delivery_costs_a_few_statements(operator, hook, receiver, django_assert_max_num_queries):
    [delivery] = _emit_many(operator, hook, 1)
    # Claim and read; record; look for more (and, on SQLite, the attempt on its own).
    with django_assert_max_num_queries(4):
        deliver(delivery_id=delivery.pk)
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_at_once_never_take_the_same_alert(operator, hook, settings):
    import threading
    import uuid

    from django.db import connection
    from django.utils import timezone

    from portal.alerts import store

    settings.ALERTS_CHANNEL_CONCURRENCY = 100  # claims never finish here; the cap is tested below
    deliveries = _emit_many(operator, hook, 40)
    taken: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def drain(mine: list[int]) -> None:
        try:
            barrier.wait()
            while batch := store.claim_due(
                channel_id=hook.pk, token=uuid.uuid4(), now=timezone.now(), limit=3
            ):
                mine.extend(d.pk for d in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(taken[0]) & set(taken[1])
    assert sorted(taken[0] + taken[1]) == [d.pk for d in deliveries]


def test_no_more_than_the_channel_cap_send_to_one_endpoint_at_once(
    operator, hook, webhook_authority, settings
):
    import uuid

    from django.utils import timezone

    from portal.alerts import store
    from portal.alerts.models import RoutingRule

    settings.ALERTS_CHANNEL_CONCURRENCY = 2
    RoutingRule.objects.create(event_pattern="*", authority=webhook_authority.authority)
    first, second, third = _emit_many(operator, hook, 3)
    other = Delivery.objects.filter(channel=webhook_authority).first()
    now = timezone.now()
    assert store.claim(delivery_id=first.pk, token=uuid.uuid4(), now=now)  # hangs, say
    assert store.claim_due(channel_id=hook.pk, token=uuid.uuid4(), now=now, limit=1)  # a batch: one slot
    assert store.claim(delivery_id=third.pk, token=uuid.uuid4(), now=now) is None  # both slots taken
    assert store.claim(delivery_id=other.pk, token=uuid.uuid4(), now=now)  # another endpoint is not held up
    assert Delivery.objects.get(pk=third.pk).status == DeliveryStatus.PENDING  # still due, untouched
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.DELIVERED, claim_token=None)
    assert store.claim(delivery_id=third.pk, token=uuid.uuid4(), now=now)
