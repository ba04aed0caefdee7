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
  channels that want the event type get one Delivery: pending, or held when the
  channel is disabled (sent in order once BSSN enables it again, or discarded by
  BSSN's choice). No match → BSSN's default channel and `alert.unrouted = True`; an
  event is never dropped.
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
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import ADMIN_ROLES, User
from portal.audit.services import record

from . import disclosure, lease, outbox, store
from .emails import plain_email
from .models import (
    EVENT_TYPES,
    OPERATOR_EVENT_TYPES,
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
from .outbox import EMAIL_QUEUE, WEBHOOK_QUEUE, backoff_seconds, publish
from .transports import SendResult, TransportError, transport_for

logger = logging.getLogger(__name__)

# Published by name: tasks.py is the layer above this module, which never imports it.
DELIVER_TASK = "portal.alerts.tasks.deliver_task"


# --- Emitting ------------------------------------------------------------------


def route(*, event_type: str, sector: str, province: str) -> list[Channel]:
    """Return the channels (disabled ones too) that should receive this event, by id (no secrets)."""
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
            to_send, written = store.insert_routed(alert, patterns=patterns, sector=sector, province=province)
        else:
            channels = route(event_type=event_type, sector=sector, province=province)
            store.insert(Alert, [alert])
            deliveries = _create_deliveries(alert, channels, enqueue=False)
            to_send, written = _sendable(deliveries), len(deliveries)
        if not written:
            to_send = _sendable(_send_unrouted(alert, event_type=event_type, sector=sector))
        if to_send:
            transaction.on_commit(lambda: _publish_new(to_send), robust=True)
    return alert


def _sendable(deliveries: list[Delivery]) -> list[tuple[int, str, int]]:
    """Return (id, kind, channel id) of the deliveries to send now (not those held)."""
    return [(d.pk, d.kind, d.channel_id) for d in deliveries if d.status == DeliveryStatus.PENDING]


def _publish_new(deliveries: list[tuple[int, str, int]]) -> int:
    """After the commit: publish new deliveries' tasks, except to channels a worker is sending to now.

    A worker sending to a channel claims again before it stops, and that claim comes
    after this commit, so it takes these deliveries too (`_drain` keeps to that: it stops
    only when a claim finds nothing, and hands the channel over otherwise). A burst of
    alerts to one endpoint thus costs no message and no task per alert once a worker is
    at it. Should that worker die, the sweeper publishes them.
    """
    try:
        sending = store.channels_sending(
            channel_ids=sorted({channel for _, _, channel in deliveries}), now=timezone.now()
        )
    except DatabaseError as exc:  # publish them all: a task too many is only a look-up
        logger.warning("could not read which channels are being sent to (%s)", type(exc).__name__)
        sending = set()
    return _enqueue_kinds([(pk, kind) for pk, kind, channel in deliveries if channel not in sending])


def _send_unrouted(alert: Alert, *, event_type: str, sector: str) -> list[Delivery]:
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
    return _create_deliveries(alert, [fallback], enqueue=False)


def _create_deliveries(alert: Alert, channels: list[Channel], *, enqueue: bool = True) -> list[Delivery]:
    """Write one delivery per channel (held for a disabled channel); with `enqueue`, send after commit."""
    if not channels:
        return []
    deliveries = [
        Delivery(
            alert=alert,
            channel=c,
            authority_id=c.authority_id,
            kind=c.kind,
            address=c.address,
            status=DeliveryStatus.PENDING if c.enabled else DeliveryStatus.HELD,
            next_attempt_at=alert.created_at,
            created_at=alert.created_at,
        )
        for c in channels
    ]
    store.insert(Delivery, deliveries)
    to_send = [(pk, kind) for pk, kind, _channel in _sendable(deliveries)]
    if to_send and enqueue:
        transaction.on_commit(lambda: _enqueue_kinds(to_send), robust=True)
    return deliveries


def send_test_alert(*, channel: Channel, actor=None, request=None) -> Alert:
    """Send a `test.ping` alert to one authority channel, whatever the routing rules say."""
    if channel.owned_by_operator:
        raise ValueError("an organisation's endpoint is tested with operator_webhooks.endpoint_send_test")
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


def enqueue_deliveries(
    *, delivery_ids: list[int], countdown: float | None = None, kind: str = ChannelKind.WEBHOOK
) -> int:
    """Publish one delivery task per id, on the queue of their `kind`; return how many were published.

    See `outbox.publish`: a broker that is down or frozen leaves the rows to the sweeper.
    """
    queue = WEBHOOK_QUEUE if kind == ChannelKind.WEBHOOK else EMAIL_QUEUE
    return publish(DELIVER_TASK, delivery_ids, countdown=countdown, queue=queue, what="delivery")


def _enqueue_kinds(deliveries: list[tuple[int, str]], countdown: float | None = None) -> int:
    """Publish (id, kind) pairs, webhooks first; return how many were published."""
    published = 0
    for kind in (ChannelKind.WEBHOOK, ChannelKind.EMAIL):
        ids = [pk for pk, k in deliveries if k == kind]
        if ids:
            published += enqueue_deliveries(delivery_ids=ids, countdown=countdown, kind=kind)
    return published


def body_for_send(delivery: Delivery) -> str:
    """Return the envelope text this delivery is about to send (webhook body, e-mail attachment).

    The one place in the send path where the body is obtained. The send-time
    disclosure check (portal/alerts/disclosure.py) decides here, at every send and
    retry, what personal data this message may carry now.
    """
    if disclosure.check_for(delivery.alert.event_type) is None:
        return delivery.alert.body  # the hot path: nothing to decide, no copy of the body
    return disclosure.body_for_send(delivery).decode()


# --- Delivering ----------------------------------------------------------------


def deliver(*, delivery_id: int) -> float | None:
    """Send a due delivery, then what else is due to its channel; return seconds to its next try, or None.

    Idempotent: a delivery that is not pending and due (a batch sent it already, another
    worker holds it, or it is scheduled later) is left alone, as is one whose channel
    has ALERTS_CHANNEL_CONCURRENCY claims sending already (it stays due for one of
    those, or for the sweeper); the claim that finds so only reads it. Otherwise it is
    sent first, then the channel's other due deliveries (see `_drain`); the number
    returned is this delivery's retry.
    """
    token = uuid.uuid4()
    delivery = store.claim(delivery_id=delivery_id, token=token, now=timezone.now())
    if delivery is None:
        return None
    return _drain([delivery], token, own=delivery_id)


def _send(delivery: Delivery, transport=None) -> tuple:
    """Send one claimed delivery; return (started_at, latency_ms, SendResult or None, error or None).

    `transport` may be shared by a batch to one channel.
    """
    started_at = timezone.now()
    start = time.monotonic()
    result: SendResult | None = None
    error: TransportError | None = None
    body = body_for_send(delivery)
    if body != delivery.alert.body:
        delivery.alert.body = body
        delivery.alert.__dict__.pop("_payload", None)  # the e-mail's fields follow the body sent
    try:
        result = (transport or transport_for(delivery.channel)).send(delivery)
    except TransportError as exc:
        error = exc
    return started_at, int((time.monotonic() - start) * 1000), result, error


def _drain(batch: list[Delivery], token: uuid.UUID, *, own: int) -> float | None:
    """Send a claimed batch, then the channel's other due deliveries; return delivery `own`'s retry, or None.

    Each claim takes up to ALERTS_BATCH_SIZE of the channel's oldest due deliveries in
    one statement, and nothing while ALERTS_CHANNEL_CONCURRENCY claims are sending to
    that channel: a burst of alerts costs one claim per batch instead of per alert. Each
    result is recorded as soon as its send returns, so a worker killed mid-batch re-sends
    only the alert it was sending. It claims again until a claim finds nothing: alerts
    committed meanwhile were not published (`_publish_new`), and this claim is what
    sends them. When it must stop earlier, at the first failure or once
    ALERTS_BATCH_SECONDS have passed (a claim takes only as many as fit in the time left
    at the pace of the sends so far), deliveries it claimed and did not try go back to
    pending and are published again, or, if there are none, it hands the channel over
    (`_hand_over`). A failed delivery's retry is scheduled here, except `own`'s, which
    the caller's task schedules.
    """
    started = time.monotonic()
    deadline = started + settings.ALERTS_BATCH_SECONDS
    limit = max(1, settings.ALERTS_BATCH_SIZE)
    channel_id = batch[0].channel_id
    transport = None
    sent = 0
    while batch:
        if not batch[0].channel.enabled:
            _hold(delivery_ids=[d.pk for d in batch], token=token)
            return None
        if batch[0].kind != ChannelKind.WEBHOOK:
            # An e-mail is rendered from the whole alert, its operator and the authority.
            batch = list(
                Delivery.objects.select_related("alert", "channel", "authority").filter(
                    pk__in=[d.pk for d in batch]
                )
            )
            batch.sort(key=lambda d: d.pk)
        # One transport for the batches: it resolves and checks the endpoint once.
        transport = transport or transport_for(batch[0].channel)
        with lease.held(tokens=[token]):
            for position, delivery in enumerate(batch):
                if sent and time.monotonic() > deadline:
                    _give_back(batch[position:], token)
                    return None
                started_at, latency_ms, result, error = _send(delivery, transport)
                sent += 1
                retry_in = _record_outcome(delivery, token, started_at, latency_ms, result, error)
                if error is not None:
                    rest = batch[position + 1 :]
                    _give_back(rest, token)
                    if not rest:
                        _hand_over(channel_id)
                    if delivery.pk == own:
                        return retry_in
                    schedule_retry(delivery_id=delivery.pk, retry_in=retry_in, kind=delivery.kind)
                    return None
        now = time.monotonic()
        if now > deadline:
            _hand_over(channel_id)
            return None
        # Untried deliveries given back cost a release and a message each, and wait at
        # the back of the queue: claim only what the time left allows.
        size = max(1, min(limit, int((deadline - now) * sent / max(now - started, 1e-6))))
        token = uuid.uuid4()
        batch = store.claim_due(channel_id=channel_id, token=token, now=timezone.now(), limit=size)
    return None


def _hand_over(channel_id: int) -> None:
    """Leave a channel whose deliveries may still be due to a new task: claim one and give it back.

    Alerts committed while this worker was sending to the channel had no task published
    (`_publish_new`), and the tasks of others may have come while the cap was full: the
    task published here claims them.
    """
    token = uuid.uuid4()
    _give_back(store.claim_due(channel_id=channel_id, token=token, now=timezone.now(), limit=1), token)


def _give_back(deliveries: list[Delivery], token: uuid.UUID) -> None:
    """Release claimed, untried deliveries and publish them again (their own tasks may have come and gone)."""
    if deliveries and store.release(delivery_ids=[d.pk for d in deliveries], token=token):
        enqueue_deliveries(delivery_ids=[d.pk for d in deliveries], kind=deliveries[0].kind)


def _hold(*, delivery_ids: list[int], token: uuid.UUID) -> int:
    """Put claimed deliveries to a disabled channel on hold, untried (their attempt not counted)."""
    return Delivery.objects.filter(pk__in=delivery_ids, claim_token=token).update(
        status=DeliveryStatus.HELD, claim_token=None, attempt_count=F("attempt_count") - 1
    )


def schedule_retry(*, delivery_id: int, retry_in: float | None, kind: str | None = None) -> None:
    """Enqueue the delivery's next try (see `outbox.schedule_retry`)."""
    outbox.schedule_retry(lambda ids, countdown: _enqueue(ids, countdown, kind=kind), delivery_id, retry_in)


def _enqueue(ids: list[int], countdown: float | None, *, kind: str | None = None) -> int:
    """Publish deliveries by id; without `kind`, each one's kind is read first."""
    if kind is not None:
        return enqueue_deliveries(delivery_ids=ids, countdown=countdown, kind=kind)
    kinds = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "kind"))
    return _enqueue_kinds([(pk, kinds[pk]) for pk in ids if pk in kinds], countdown)


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
    """Record the attempt and move the delivery on, at once; return seconds to the next try, or None."""
    now = timezone.now()
    number = delivery.attempt_count
    retry_in: float | None = None
    disable = error is not None and error.disable
    if error is None:
        outcome, status, fields = (
            AttemptOutcome.DELIVERED,
            DeliveryStatus.DELIVERED,
            {"delivered_at": now, "last_error": ""},
        )
    elif disable:
        # Gone: the endpoint is disabled and this alert waits with the later ones for
        # BSSN to enable it again (or to discard them).
        outcome, status, fields = (
            AttemptOutcome.FAILED,
            DeliveryStatus.HELD,
            {"last_error": error.message[:500]},
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
    # A gone endpoint is disabled in the transaction that holds the delivery, so nobody
    # (no other worker, no admin page) sees the one without the other; BSSN's e-mail
    # about it is written there too (outbox) and sent after commit.
    with transaction.atomic() if disable else nullcontext():
        still_ours = store.finish(
            delivery_id=delivery.pk, token=token, attempt=attempt, fields={"status": status.value, **fields}
        )
        if disable and still_ours:
            _disable_channel(delivery.channel, reason=error.message)
            _notify_channel_disabled(delivery)
    if error is not None:
        logger.info("delivery %s attempt %s failed: %s", delivery.pk, number, error.message)
    return retry_in if still_ours else None


def _disable_channel(channel: Channel, *, reason: str, actor=None, request=None) -> bool:
    """Disable a channel (audited) and hold what is waiting for it; return whether it was enabled."""
    with transaction.atomic():
        updated = Channel.objects.filter(pk=channel.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:200], updated_at=timezone.now()
        )
        if updated:
            Delivery.objects.filter(channel_id=channel.pk, status=DeliveryStatus.PENDING).update(
                status=DeliveryStatus.HELD
            )
            record(
                action="alerts.channel_disabled",
                actor=actor,
                operator=_owner(channel),
                target=channel,
                changes={"enabled": {"old": True, "new": False}, "reason": reason[:200]},
                request=request,
            )
    return bool(updated)


def _owner(channel: Channel):
    """Return the organisation owning `channel` (its audit events are in that organisation's log), or None."""
    return channel.operator if channel.operator_id is not None else None


def _notify_channel_disabled(delivery: Delivery) -> None:
    """Tell who looks after the endpoint that it was disabled: its organisation's admins, or BSSN."""
    channel = delivery.channel
    if channel.operator_id is not None:
        _notify_operator_endpoint_disabled(channel)
    else:
        _notify_bssn_channel_disabled(delivery)


def _notify_operator_endpoint_disabled(channel: Channel) -> None:
    """E-mail the organisation's admins, each in their language (outbox: sent after commit)."""
    operator = channel.operator
    admins = User.objects.filter(
        is_active=True, memberships__operator=operator, memberships__role__in=ADMIN_ROLES
    ).order_by("email")
    url = settings.SITE_URL.rstrip("/") + reverse(
        "webhooks:detail", kwargs={"operator_slug": operator.slug, "endpoint_id": channel.pk}
    )
    for user in admins:
        message = plain_email(
            to=[user.email],
            template="alerts/email/endpoint_disabled",
            context={"channel": channel, "operator": operator, "recipient": user, "url": url},
            language=user.language or None,
        )
        queue_email(message, template="alerts/endpoint_disabled", operator=operator)


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


def resend_alert(*, alert: Alert, channel: Channel, actor=None, request=None) -> Delivery:
    """Send `alert` to `channel` (again), whatever its routing and its earlier outcome (admin, audited).

    The alert's delivery to that channel is created if there is none, else queued
    again with the channel's current address; one being sent right now is left alone.
    To a disabled channel it is held, like everything else for that channel. An
    authority's alert goes to authorities' channels only, and an organisation's event
    to that organisation's own endpoints only.
    """
    if alert.event_type in OPERATOR_EVENT_TYPES:
        allowed = channel.operator_id is not None and channel.operator_id == alert.operator_id
    else:
        allowed = channel.operator_id is None
    if not allowed:
        raise ValidationError(_("This alert cannot be sent to that channel."))
    status = DeliveryStatus.PENDING if channel.enabled else DeliveryStatus.HELD
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(alert=alert, channel=channel).first()
        old = delivery.status if delivery else None
        if delivery is None:
            [delivery] = _create_deliveries(alert, [channel], enqueue=False)
        elif delivery.status != DeliveryStatus.SENDING:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=status,
                kind=channel.kind,
                address=channel.address,
                next_attempt_at=timezone.now(),
                last_error="",
                claim_token=None,
            )
            delivery.status = status
        else:
            return delivery
        record(
            action="alerts.delivery_resend",
            actor=actor,
            operator=alert.operator,
            target=delivery,
            request=request,
            changes={"alert": alert.webhook_id, "channel": channel.pk, "status": {"old": old, "new": status}},
        )
        if status == DeliveryStatus.PENDING:
            pk, kind = delivery.pk, channel.kind
            transaction.on_commit(lambda: enqueue_deliveries(delivery_ids=[pk], kind=kind), robust=True)
    return delivery


def enable_channel(*, channel: Channel, release: bool, actor=None, request=None) -> int:
    """Enable a channel again and release (in order) or discard what it held; audited. Return the count.

    Released alerts keep their original time as their due time, so they go out oldest
    first; discarded ones become failed deliveries ("discarded" in their last error),
    which the admin's retry action can still send.
    """
    with transaction.atomic():
        was_enabled = Channel.objects.select_for_update().values_list("enabled", flat=True).get(pk=channel.pk)
        Channel.objects.filter(pk=channel.pk).update(
            enabled=True, disabled_reason="", updated_at=timezone.now()
        )
        channel.enabled, channel.disabled_reason = True, ""
        held = Delivery.objects.filter(channel_id=channel.pk, status=DeliveryStatus.HELD)
        ids = list(held.order_by("pk").values_list("pk", flat=True))
        if release:
            held.update(status=DeliveryStatus.PENDING, next_attempt_at=F("created_at"), last_error="")
        else:
            held.update(status=DeliveryStatus.DEAD, last_error="discarded when the channel was enabled again")
        record(
            action="alerts.channel_enable",
            actor=actor,
            operator=_owner(channel),
            target=channel,
            request=request,
            changes={
                "enabled": {"old": was_enabled, "new": True},
                "held": len(ids),
                "backlog": "released" if release else "discarded",
            },
        )
        if release and ids:
            kind = channel.kind
            transaction.on_commit(lambda: enqueue_deliveries(delivery_ids=ids, kind=kind), robust=True)
    return len(ids)


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
            operator=_owner(channel),
            target=channel,
            request=request,
            changes={"overlap_hours": overlap.total_seconds() / 3600},
        )
    return secret
