"""The alert pipeline's writes: emit an event into the outbox, deliver, retry, sweep.

Contract for the apps that raise events (incidents, suspected cases):

    emit_event(event_type=EventType.INCIDENT_SUBMITTED, operator=incident.operator,
               payload={"schema": "incident.submitted/1", ...}, subject=incident)

- Call it INSIDE your own transaction: the Alert (the outbox row) and one Delivery per
  channel are written in that transaction, and the delivery tasks are enqueued only
  when it commits (`transaction.on_commit`, with the delivery id only). Roll back and
  nothing is kept or sent.
- Routing: the enabled RoutingRules matching the event type (exactly, by family such
  as "incident.*", or "*"), the operator's sector (or any) and the province (or any;
  `province` defaults to `operator.province`) give authorities; each authority's
  enabled channels that want the event type get one Delivery. No match → BSSN's
  default channel and `alert.unrouted = True`; an event is never dropped.
- `payload` is your data document, already minimal; it must carry
  `"schema": "<event_type>/1"`. Every recipient of the alert receives exactly the
  bytes in `alert.body`: the envelope {"id", "type", "timestamp", "data": payload}
  (webhook body; attached as alert.json to the e-mail, whose text shows the same fields).
- Who got what: `alert.deliveries` (each with `.authority`, `.channel`, `.kind`,
  `.address`, `.status`), `alert.disclosed_fields()` and `alert.disclosures()` (one dict
  per recipient with the fields and the sha256 of the exact bytes).
"""

import logging
import time
import uuid
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from portal.audit.services import record

from . import outbox, store
from .disclosure import body_for_send
from .models import (
    EVENT_TYPES,
    Alert,
    Attempt,
    AttemptOutcome,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    EventPattern,
    EventType,
)
from .notices import queue_email
from .outbox import backoff_seconds, publish
from .transports import SendResult, TransportError, plain_email, transport_for

logger = logging.getLogger(__name__)


# --- Emitting ------------------------------------------------------------------


def route(*, event_type: str, sector: str, province: str) -> list[Channel]:
    """Return the enabled channels that should receive this event, in a stable order (secrets not loaded)."""
    channels = store.routed_channels(
        patterns=EventPattern.matching(event_type), sector=sector, province=province
    )
    return [c for c in channels if c.wants(event_type)]


def default_channel() -> Channel | None:
    return Channel.objects.filter(is_default=True).first()


def emit_event(
    *, event_type: str, operator, payload: dict, province: str | None = None, subject=None
) -> Alert:
    """Write the alert and its deliveries in the caller's transaction; enqueue them on commit.

    See the module docstring for the full contract.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not isinstance(payload, dict) or payload.get("schema") != f"{event_type}/1":
        raise ValueError(f'payload must carry "schema": "{event_type}/1"')
    province = province or (operator.province if operator is not None else "")
    sector = operator.sector if operator is not None else ""
    alert = Alert(
        event_type=event_type,
        operator=operator,
        sector=sector,
        province=province,
        payload=payload,
        created_at=timezone.now(),
    )
    if subject is not None:
        alert.subject_type = ContentType.objects.get_for_model(subject)
        alert.subject_id = str(subject.pk)
    alert.body = alert.render_body()
    patterns = EventPattern.matching(event_type)
    # No savepoint: inside the caller's transaction the alert stands or falls with the event.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            ids = store.insert_routed(alert, patterns=patterns, sector=sector, province=province)
        else:
            channels = route(event_type=event_type, sector=sector, province=province)
            store.insert(Alert, [alert])
            ids = [d.pk for d in _create_deliveries(alert, channels, enqueue=False)]
        if not ids:
            ids = _send_unrouted(alert, event_type=event_type, sector=sector)
        if ids:
            transaction.on_commit(lambda: enqueue_deliveries(delivery_ids=ids), robust=True)
    return alert


def _send_unrouted(alert: Alert, *, event_type: str, sector: str) -> list[int]:
    """Give an alert that no rule routed to BSSN's default channel, and flag it; return the delivery ids."""
    logger.warning(
        "alert %s for %s matched no routing rule; sending to the default channel", event_type, sector or "-"
    )
    Alert.objects.filter(pk=alert.pk).update(unrouted=True)
    alert.unrouted = True
    fallback = default_channel()
    if fallback is None:
        logger.error("alert %s has no channel at all (no default channel configured)", alert.pk)
        return []
    return [d.pk for d in _create_deliveries(alert, [fallback], enqueue=False)]


def _create_deliveries(alert: Alert, channels: list[Channel], *, enqueue: bool = True) -> list[Delivery]:
    if not channels:
        return []
    deliveries = [
        Delivery(
            alert=alert,
            channel=c,
            authority_id=c.authority_id,
            kind=c.kind,
            address=c.address,
            next_attempt_at=alert.created_at,
            created_at=alert.created_at,
        )
        for c in channels
    ]
    store.insert(Delivery, deliveries)
    ids = [d.pk for d in deliveries]
    if ids and enqueue:
        transaction.on_commit(lambda: enqueue_deliveries(delivery_ids=ids), robust=True)
    return deliveries


def send_test_alert(*, channel: Channel, actor=None, request=None) -> Alert:
    """Send a `test.ping` alert to one channel, whatever the routing rules say."""
    with transaction.atomic():
        alert = Alert(
            event_type=EventType.TEST_PING,
            payload={
                "schema": "test.ping/1",
                "authority": channel.authority.code,
                "message": "Test alert from the incident reporting portal.",
            },
            created_at=timezone.now(),
        )
        alert.body = alert.render_body()
        alert.save(force_insert=True)
        _create_deliveries(alert, [channel])
        record(action="alerts.test_alert", actor=actor, target=channel, request=request)
    return alert


def enqueue_deliveries(*, delivery_ids: list[int], countdown: float | None = None) -> int:
    """Publish one delivery task per id; return how many were published (see `outbox.publish`)."""
    from .tasks import deliver_task

    return publish(deliver_task, delivery_ids, countdown=countdown, what="delivery")


# --- Delivering ----------------------------------------------------------------


def deliver(*, delivery_id: int) -> float | None:
    """Claim, send outside any transaction, record the attempt. Return seconds to the next try, or None.

    Idempotent: a delivery that is not pending and due (already sent, claimed by another
    worker, or scheduled later) is left alone. After a webhook goes through, the same
    call sends other due deliveries to that endpoint (see `_deliver_more`).
    """
    token = uuid.uuid4()
    # One statement claims the delivery and reads what a webhook send needs.
    delivery = store.claim(delivery_id=delivery_id, token=token, now=timezone.now())
    if delivery is None:
        return None
    if delivery.kind != ChannelKind.WEBHOOK:
        # An e-mail is rendered from the whole alert, its operator and the authority.
        delivery = Delivery.objects.select_related("alert", "channel", "authority").get(pk=delivery_id)
    started_at, latency_ms, result, error = _send(delivery)
    retry_in = _record_outcome(delivery, token, started_at, latency_ms, result, error)
    if error is None and delivery.kind == ChannelKind.WEBHOOK and settings.ALERTS_BATCH_SIZE > 1:
        _deliver_more(delivery.channel_id)
    return retry_in


def _send(delivery: Delivery, transport=None) -> tuple:
    """Send one claimed delivery; return (started_at, latency_ms, SendResult or None, error or None).

    `transport` may be shared by a batch to one channel.
    """
    started_at = timezone.now()
    start = time.monotonic()
    result: SendResult | None = None
    error: TransportError | None = None
    if not delivery.channel.enabled:
        error = TransportError("channel disabled", permanent=True)
    else:
        # Send-time disclosure: the basis for personal data is checked again, now.
        body_for_send(delivery)
        try:
            result = (transport or transport_for(delivery.channel)).send(delivery)
        except TransportError as exc:
            error = exc
    return started_at, int((time.monotonic() - start) * 1000), result, error


def _deliver_more(channel_id: int) -> None:
    """Send up to ALERTS_BATCH_SIZE - 1 more due deliveries to an endpoint that just answered.

    Each delivery's own task still comes, finds it sent, and does nothing; meanwhile a
    burst of alerts costs one claim and one record per batch instead of per alert. The
    batch stops at the first failure, or when ALERTS_BATCH_SECONDS have passed; what it
    did not try goes back to pending untouched, for its own task.
    """
    token = uuid.uuid4()
    batch = store.claim_due(
        channel_id=channel_id, token=token, now=timezone.now(), limit=settings.ALERTS_BATCH_SIZE - 1
    )
    deadline = time.monotonic() + settings.ALERTS_BATCH_SECONDS
    # One transport for the batch: it resolves and checks the endpoint once.
    transport = transport_for(batch[0].channel) if batch else None
    sent: list[Attempt] = []
    for position, delivery in enumerate(batch):
        if time.monotonic() > deadline:
            store.release(delivery_ids=[d.pk for d in batch[position:]], token=token)
            break
        started_at, latency_ms, result, error = _send(delivery, transport)
        if error is not None:
            retry_in = _record_outcome(delivery, token, started_at, latency_ms, result, error)
            schedule_retry(delivery_id=delivery.pk, retry_in=retry_in)
            store.release(delivery_ids=[d.pk for d in batch[position + 1 :]], token=token)
            break
        sent.append(_attempt(delivery, started_at, latency_ms, result, None, AttemptOutcome.DELIVERED))
    store.finish_delivered(token=token, attempts=sent, now=timezone.now())


def schedule_retry(*, delivery_id: int, retry_in: float | None) -> None:
    """Enqueue the delivery's next try (see `outbox.schedule_retry`)."""
    outbox.schedule_retry(_enqueue, delivery_id, retry_in)


def _enqueue(ids: list[int], countdown: float | None) -> int:
    return enqueue_deliveries(delivery_ids=ids, countdown=countdown)


def _attempt(delivery, started_at, latency_ms, result, error, outcome) -> Attempt:
    return Attempt(
        delivery_id=delivery.pk,
        number=delivery.attempt_count,
        started_at=started_at,
        latency_ms=latency_ms,
        status_code=(result.status_code if result else error.status_code),
        error="" if error is None else error.message[:500],
        outcome=outcome,
        webhook_timestamp=(result.webhook_timestamp if result else error.webhook_timestamp),
    )


def _record_outcome(delivery, token, started_at, latency_ms, result, error) -> float | None:
    now = timezone.now()
    number = delivery.attempt_count
    retry_in: float | None = None
    if error is None:
        outcome, status, fields = (
            AttemptOutcome.DELIVERED,
            DeliveryStatus.DELIVERED,
            {"delivered_at": now, "last_error": ""},
        )
    elif error.permanent or number >= settings.ALERTS_MAX_ATTEMPTS:
        outcome, status, fields = (
            AttemptOutcome.FAILED,
            DeliveryStatus.DEAD,
            {"last_error": error.message[:500]},
        )
    else:
        retry_in = backoff_seconds(attempt=number, retry_after=error.retry_after)
        outcome, status = AttemptOutcome.RETRY, DeliveryStatus.PENDING
        fields = {"last_error": error.message[:500], "next_attempt_at": now + timedelta(seconds=retry_in)}
    # The attempt is recorded whatever happens; only the current claim may move the
    # delivery on: if the sweeper re-queued it meanwhile, the newer claim decides.
    # (On SQLite these are two statements: a crash between them leaves the delivery
    # "sending", which the sweeper frees and sends again.)
    attempt = _attempt(delivery, started_at, latency_ms, result, error, outcome)
    disable = error is not None and error.disable
    # A gone endpoint is disabled in the transaction that makes the delivery dead, so
    # nobody (no other worker, no admin page) sees the one without the other; BSSN's
    # e-mail about it is written there too (outbox) and sent after commit.
    with transaction.atomic() if disable else nullcontext():
        still_ours = store.finish(
            delivery_id=delivery.pk, token=token, attempt=attempt, fields={"status": status.value, **fields}
        )
        if disable and still_ours:
            _disable_channel(delivery.channel, reason=error.message)
            _notify_bssn_channel_disabled(delivery)
    if error is not None:
        logger.info("delivery %s attempt %s failed: %s", delivery.pk, number, error.message)
    return retry_in if still_ours else None


def _disable_channel(channel: Channel, *, reason: str) -> None:
    with transaction.atomic():
        updated = Channel.objects.filter(pk=channel.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:200]
        )
        if updated:
            record(
                action="alerts.channel_disabled",
                target=channel,
                changes={"enabled": {"old": True, "new": False}, "reason": reason[:200]},
            )


def _notify_bssn_channel_disabled(delivery: Delivery) -> None:
    if not settings.BSSN_NOTIFY_EMAILS:
        return
    message = plain_email(
        to=settings.BSSN_NOTIFY_EMAILS,
        template="alerts/email/channel_disabled",
        context={
            "channel": delivery.channel,
            "authority": delivery.authority,
            "delivery": delivery,
            "site_url": settings.SITE_URL,
        },
        language=settings.LANGUAGE_CODE,
    )
    queue_email(message, template="alerts/channel_disabled")


def retry_delivery(*, delivery: Delivery, actor=None, request=None) -> bool:
    """Put a dead delivery back in the queue (admin action); return whether it was dead."""
    return outbox.retry_dead(delivery, _enqueue, action="alerts.delivery_retry", actor=actor, request=request)


# --- Sweeping ------------------------------------------------------------------


def sweep_deliveries(*, limit: int = 5000) -> int:
    """Re-enqueue overdue deliveries and free stuck ones (see `outbox.sweep`); return the count."""
    return outbox.sweep(Delivery, _enqueue, limit=limit, what="deliveries", claim_token=None)


# --- Channels -------------------------------------------------------------------


def create_webhook_channel(
    *, authority, url: str, event_types: list[str] | None = None, actor=None, request=None
) -> tuple[Channel, str]:
    """Create a webhook endpoint after the SSRF check; return it and its secret (shown once)."""
    channel = Channel(authority=authority, kind="webhook", url=url, event_types=event_types or [])
    secret = channel.rotate_secret(overlap=timedelta(0))
    channel.full_clean()
    with transaction.atomic():
        channel.save()
        record(
            action="alerts.channel_create", actor=actor, target=channel, request=request, changes={"url": url}
        )
    return channel, secret


def rotate_secret(*, channel: Channel, actor=None, request=None, overlap: timedelta | None = None) -> str:
    """Give a webhook a new secret; the old one keeps signing during the overlap. Return the new secret."""
    if not channel.is_webhook:
        raise ValidationError("Only webhook endpoints have a secret.")
    if overlap is None:
        overlap = timedelta(hours=settings.ALERTS_SECRET_OVERLAP_HOURS)
    secret = channel.rotate_secret(overlap=overlap)
    with transaction.atomic():
        channel.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        record(
            action="alerts.secret_rotate",
            actor=actor,
            target=channel,
            request=request,
            changes={"overlap_hours": overlap.total_seconds() / 3600},
        )
    return secret
