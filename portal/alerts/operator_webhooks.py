"""An organisation's own webhook endpoints: what BSSN does about its incidents, sent back to it.

An endpoint is a `Channel` owned by an operator instead of an authority
(docs/decisions/0014-operator-webhooks.md), so its events take the authorities' path:
an outbox row written in the event's transaction, one delivery per endpoint, retries
with backoff, dead letters, held deliveries while it is disabled, leases, and Standard
Webhooks signatures with the endpoint's own secret. Only the routing differs:

    emit_operator_event(event_type=OperatorEventType.MESSAGE, operator=incident.operator,
                        payload={"schema": "operator.incident.message/1", ...}, subject=incident)

- Call it inside the transaction of the change it announces, as `services.emit_event`.
- The event goes to the endpoints of `operator` that subscribe to it (a disabled one
  holds it) and to nothing else: no routing rule, no default channel. With no such
  endpoint nothing is written and it returns None.
- `payload` carries `"schema": "<event_type>/1"`; it is the organisation's own data
  about its own incident and names nobody (see incidents/webhook_payloads.py).

The rest is what an organisation's admin does with its endpoints (each audited).
"""

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import ADMIN_ROLES, Operator, User
from portal.accounts.tenancy import require_role
from portal.audit.services import record
from portal.audit.updates import update_and_audit

from . import services
from .models import (
    OPERATOR_EVENT_TYPES,
    Alert,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    OperatorEventType,
)
from .store import ROUTED_CHANNEL

# Enough for a SIEM, a ticketing system and a spare; more is a sign of a mistake.
MAX_ENDPOINTS = 10
# Why an endpoint is disabled when its organisation disabled it (a 410 records the answer instead).
DISABLED_BY_ORGANISATION = "disabled by the organisation"
EDITABLE_FIELDS = ("name", "url", "event_types")


def _new_alert(event_type: str, operator: Operator, payload: dict, subject=None) -> Alert:
    alert = Alert(
        event_type=event_type,
        operator=operator,
        sector=operator.sector,
        province=operator.province,
        payload=payload,
        created_at=timezone.now(),
    )
    if subject is not None:
        alert.subject_type = ContentType.objects.get_for_model(subject)
        alert.subject_id = str(subject.pk)
    alert.body = alert.render_body()
    return alert


def emit_operator_event(*, event_type: str, operator: Operator, payload: dict, subject=None) -> Alert | None:
    """Queue an event to the organisation's own subscribed endpoints, in the caller's transaction.

    See the module docstring. Return the alert, or None when no endpoint wants it.
    """
    if event_type not in OPERATOR_EVENT_TYPES or event_type == OperatorEventType.TEST_PING:
        raise ValueError(f"not an operator event: {event_type!r}")
    if not isinstance(payload, dict) or payload.get("schema") != f"{event_type}/1":
        raise ValueError(f'payload must carry "schema": "{event_type}/1"')
    fields = [*ROUTED_CHANNEL, "operator_id"]
    endpoints = [
        c
        for c in Channel.objects.for_operator(operator).only(*fields).order_by("pk")
        if c.event_types and c.wants(event_type)
    ]
    if not endpoints:
        return None
    alert = _new_alert(event_type, operator, payload, subject)
    # No savepoint: inside the caller's transaction the event stands or falls with the change.
    with transaction.atomic(savepoint=False):
        alert.save(force_insert=True)
        services._create_deliveries(alert, endpoints)
    return alert


# --- What the organisation's admin does -------------------------------------------------


def _audit_view(field: str, value):
    return sorted(value) if field == "event_types" else value


def endpoint_create(
    *, operator: Operator, actor: User, name: str, url: str, event_types: list[str], request=None
) -> tuple[Channel, str]:
    """Register an endpoint of `operator` after the SSRF check; return it and its secret (shown once)."""
    require_role(actor, operator, ADMIN_ROLES)
    if Channel.objects.for_operator(operator).count() >= MAX_ENDPOINTS:
        raise ValidationError(
            _("An organisation can have at most %(count)d webhook endpoints.") % {"count": MAX_ENDPOINTS}
        )
    endpoint = Channel(
        operator=operator, kind=ChannelKind.WEBHOOK, name=name, url=url, event_types=sorted(set(event_types))
    )
    secret = endpoint.rotate_secret(overlap=timedelta(0))
    endpoint.full_clean()  # the same SSRF guard as the authorities' channels, and the event list
    with transaction.atomic():
        endpoint.save()
        record(
            action="alerts.endpoint_create",
            actor=actor,
            operator=operator,
            target=endpoint,
            changes={"name": name, "url": url, "event_types": endpoint.event_types},
            request=request,
        )
    return endpoint, secret


def endpoint_update(*, endpoint: Channel, actor: User, data: dict, request=None) -> dict:
    """Change an endpoint's name, URL or events (the URL checked again); return the changes.

    Events waiting for the endpoint (pending or held) follow it to its new URL.
    """
    require_role(actor, endpoint.operator, ADMIN_ROLES)
    data = {k: (sorted(set(v)) if k == "event_types" else v) for k, v in data.items() if k in EDITABLE_FIELDS}
    candidate = Channel.objects.get(pk=endpoint.pk)
    for field, value in data.items():
        setattr(candidate, field, value)
    candidate.full_clean()
    with transaction.atomic():
        old_url = endpoint.url
        changes = update_and_audit(
            instance=endpoint,
            data=data,
            fields=EDITABLE_FIELDS,
            action="alerts.endpoint_update",
            actor=actor,
            operator=endpoint.operator,
            request=request,
            shown=_audit_view,
        )
        if endpoint.url != old_url:
            Delivery.objects.filter(
                channel=endpoint, status__in=[DeliveryStatus.PENDING, DeliveryStatus.HELD]
            ).update(address=endpoint.url)
    return changes


def endpoint_disable(*, endpoint: Channel, actor: User, request=None) -> bool:
    """Stop sending to the endpoint; its events wait until it is enabled again. Return whether it changed."""
    require_role(actor, endpoint.operator, ADMIN_ROLES)
    changed = services._disable_channel(
        endpoint, reason=DISABLED_BY_ORGANISATION, actor=actor, request=request
    )
    endpoint.refresh_from_db(fields=["enabled", "disabled_reason"])
    return changed


def endpoint_enable(*, endpoint: Channel, actor: User, release: bool, request=None) -> int:
    """Send to the endpoint again; send what it held (oldest first) or discard it. Return the count."""
    require_role(actor, endpoint.operator, ADMIN_ROLES)
    return services.enable_channel(channel=endpoint, release=release, actor=actor, request=request)


def endpoint_rotate_secret(*, endpoint: Channel, actor: User, request=None) -> str:
    """Give the endpoint a new secret (shown once); the old one keeps signing for a while. Return it."""
    require_role(actor, endpoint.operator, ADMIN_ROLES)
    return services.rotate_secret(channel=endpoint, actor=actor, request=request)


def endpoint_send_test(*, endpoint: Channel, actor: User, request=None) -> Alert:
    """Send an `operator.test.ping` event to this one endpoint, whatever it subscribes to."""
    require_role(actor, endpoint.operator, ADMIN_ROLES)
    if not endpoint.enabled:
        raise ValidationError(_("Enable the endpoint before sending it a test event."))
    operator = endpoint.operator
    payload = {
        "schema": f"{OperatorEventType.TEST_PING}/1",
        "organisation": operator.slug,
        "message": "Test event from the incident reporting portal.",
    }
    with transaction.atomic():
        alert = _new_alert(OperatorEventType.TEST_PING, operator, payload)
        alert.save(force_insert=True)
        services._create_deliveries(alert, [endpoint])
        record(
            action="alerts.endpoint_test", actor=actor, operator=operator, target=endpoint, request=request
        )
    return alert


def endpoint_delete(*, endpoint: Channel, actor: User, request=None) -> None:
    """Delete the endpoint with its deliveries, and the events no other endpoint of the organisation has.

    Refused while an event is being sent to it (its worker is about to record the
    outcome); the next try a moment later succeeds.
    """
    operator = endpoint.operator
    require_role(actor, operator, ADMIN_ROLES)
    with transaction.atomic():
        Channel.objects.select_for_update().filter(pk=endpoint.pk).values_list("pk", flat=True).get()
        deliveries = Delivery.objects.filter(channel_id=endpoint.pk)
        alert_ids = set(deliveries.values_list("alert_id", flat=True))
        # A row a worker claims meanwhile is in "sending" and stays: then nothing is deleted.
        deliveries.exclude(status=DeliveryStatus.SENDING).delete()
        if deliveries.exists():
            raise ValidationError(
                _("An event is being sent to this endpoint right now; try again in a minute.")
            )
        # Each event's copy of BSSN's words goes with the last endpoint that had it.
        Alert.objects.filter(pk__in=alert_ids, deliveries__isnull=True).delete()
        record(
            action="alerts.endpoint_delete",
            actor=actor,
            operator=operator,
            target=endpoint,
            changes={"url": endpoint.url, "name": endpoint.name},
            request=request,
        )
        endpoint.delete()


def endpoint_resend(*, delivery: Delivery, actor: User, request=None) -> Delivery:
    """Send one event to its endpoint again (a failed one, say), whatever its earlier outcome; audited."""
    endpoint = delivery.channel
    require_role(actor, endpoint.operator, ADMIN_ROLES)
    return services.resend_alert(alert=delivery.alert, channel=endpoint, actor=actor, request=request)
