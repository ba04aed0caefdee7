"""Authorities, their channels, routing rules, and the alert outbox with its deliveries."""

import base64
import hashlib
import json
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from fernet_fields import EncryptedCharField, EncryptedTextField

from portal.accounts.models import Operator, Sector
from portal.regions import Province

from .ssrf import UnsafeURL, resolve

# The Standard Webhooks prefix, not a secret.
SECRET_PREFIX = "whsec_"  # noqa: S105 # nosec B105


class EventType(models.TextChoices):
    INCIDENT_SUBMITTED = "incident.submitted", _("Incident submitted")
    INCIDENT_STATUS_CHANGED = "incident.status_changed", _("Incident status changed")
    INCIDENT_INFORMATION_REQUESTED = "incident.information_requested", _("Information requested")
    INCIDENT_REPORT_ADDED = "incident.report_added", _("Incident report added")
    INCIDENT_DEADLINE_MISSED = "incident.deadline_missed", _("Incident deadline missed")
    SUSPECTED_CASE_FLAGGED = "suspected_case.flagged", _("Suspected case flagged")
    SUSPECTED_CASE_WITHDRAWN = "suspected_case.withdrawn", _("Suspected case withdrawn")
    SUSPECTED_CASE_CORRECTED = "suspected_case.corrected", _("Suspected case corrected")
    TEST_PING = "test.ping", _("Test alert")
    LEDGER_CHECKPOINT = "ledger.checkpoint", _("Ledger checkpoint")


# For membership tests on the hot path (EventType.values builds a new list each time).
EVENT_TYPES = frozenset(EventType.values)


class OperatorEventType(models.TextChoices):
    """Events an organisation's own webhook endpoints receive about its own incidents.

    Their own family: these documents differ from the authorities' (they carry BSSN's
    message text and the API address), so they never share a name with an authority
    alert, and routing rules (EventPattern) cannot name them.
    """

    STATUS_CHANGED = "operator.incident.status_changed", _("BSSN changed the status")
    MESSAGE = "operator.incident.message", _("Message from BSSN")
    INFORMATION_REQUESTED = "operator.incident.information_requested", _("BSSN asks for information")
    DEADLINE_REMINDER = "operator.incident.deadline_reminder", _("Deadline reminder")
    DEADLINE_OVERDUE = "operator.incident.deadline_overdue", _("Deadline passed")
    TEST_PING = "operator.test.ping", _("Test event")


OPERATOR_EVENT_TYPES = frozenset(OperatorEventType.values)
# What an endpoint can subscribe to (a test event goes to the one endpoint it is sent to).
OPERATOR_SUBSCRIBABLE = [c for c in OperatorEventType.choices if c[0] != OperatorEventType.TEST_PING]


class EventPattern(models.TextChoices):
    """What a routing rule matches: one event type, a family of them, or everything."""

    ANY = "*", _("Every event")
    INCIDENT_ANY = "incident.*", _("Every incident event")
    SUSPECTED_CASE_ANY = "suspected_case.*", _("Every suspected-case event")
    LEDGER_ANY = "ledger.*", _("Every ledger event")
    INCIDENT_SUBMITTED = EventType.INCIDENT_SUBMITTED.value, EventType.INCIDENT_SUBMITTED.label
    INCIDENT_STATUS_CHANGED = EventType.INCIDENT_STATUS_CHANGED.value, EventType.INCIDENT_STATUS_CHANGED.label
    INCIDENT_INFORMATION_REQUESTED = (
        EventType.INCIDENT_INFORMATION_REQUESTED.value,
        EventType.INCIDENT_INFORMATION_REQUESTED.label,
    )
    INCIDENT_REPORT_ADDED = EventType.INCIDENT_REPORT_ADDED.value, EventType.INCIDENT_REPORT_ADDED.label
    INCIDENT_DEADLINE_MISSED = (
        EventType.INCIDENT_DEADLINE_MISSED.value,
        EventType.INCIDENT_DEADLINE_MISSED.label,
    )
    SUSPECTED_CASE_FLAGGED = EventType.SUSPECTED_CASE_FLAGGED.value, EventType.SUSPECTED_CASE_FLAGGED.label
    SUSPECTED_CASE_WITHDRAWN = (
        EventType.SUSPECTED_CASE_WITHDRAWN.value,
        EventType.SUSPECTED_CASE_WITHDRAWN.label,
    )
    SUSPECTED_CASE_CORRECTED = (
        EventType.SUSPECTED_CASE_CORRECTED.value,
        EventType.SUSPECTED_CASE_CORRECTED.label,
    )
    LEDGER_CHECKPOINT = EventType.LEDGER_CHECKPOINT.value, EventType.LEDGER_CHECKPOINT.label

    @classmethod
    def matching(cls, event_type: str) -> list[str]:
        """Return every pattern value that matches `event_type`."""
        family = event_type.split(".", 1)[0] + ".*"
        return [event_type, family, cls.ANY.value]


class Authority(models.Model):
    """A body that receives alerts: BSSN's CSIRT, a ministry, a health office, a regulator."""

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    province = models.CharField(
        _("province"),
        max_length=5,
        choices=Province.choices,
        blank=True,
        help_text=_("Only for regional authorities such as a provincial health office."),
    )
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=settings.LANGUAGES,
        default="id",
        help_text=_("Language of the e-mails this authority receives."),
    )
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("authority")
        verbose_name_plural = _("authorities")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook")


def new_webhook_secret() -> str:
    """Return a fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class ChannelQuerySet(models.QuerySet):
    def for_operator(self, operator: Operator) -> "ChannelQuerySet":
        """The organisation's own webhook endpoints."""
        return self.filter(operator=operator)

    def of_authorities(self) -> "ChannelQuerySet":
        return self.filter(operator__isnull=True)


class Channel(models.Model):
    """One way to reach a recipient: an authority's e-mail address or webhook endpoint, or
    an organisation's own webhook endpoint (docs/decisions/0014-operator-webhooks.md).

    Exactly one owner: `authority` (routed by rules) or `operator` (receives only the
    operator events about its own incidents, never a routed alert).
    """

    authority = models.ForeignKey(
        Authority, on_delete=models.CASCADE, related_name="channels", null=True, blank=True
    )
    operator = models.ForeignKey(
        Operator,
        on_delete=models.PROTECT,
        related_name="webhook_endpoints",
        null=True,
        blank=True,
        verbose_name=_("organisation"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ChannelKind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail address"), blank=True)
    url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    # Standard Webhooks secrets, encrypted at rest; shown once when created or rotated.
    secret = EncryptedCharField(max_length=100, blank=True, editable=False)
    previous_secret = EncryptedCharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret signs until"), null=True, blank=True, editable=False
    )
    event_types = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        help_text=_("Event types this channel wants; empty means every event type."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    disabled_reason = models.CharField(_("why disabled"), max_length=200, blank=True)
    is_default = models.BooleanField(
        _("default channel"),
        default=False,
        help_text=_("Receives every alert no routing rule matches (BSSN)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["authority__name", "kind", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="alerts_channel_one_default"
            ),
            models.CheckConstraint(
                condition=Q(kind="email", url="") & ~Q(email="") | Q(kind="webhook", email="") & ~Q(url=""),
                name="alerts_channel_address_matches_kind",
            ),
            # An authority's channel, or an organisation's own webhook endpoint (never BSSN's default).
            models.CheckConstraint(
                condition=Q(authority__isnull=False, operator__isnull=True)
                | Q(authority__isnull=True, operator__isnull=False, kind="webhook", is_default=False),
                name="alerts_channel_one_owner",
            ),
        ]

    def __str__(self) -> str:
        if self.operator_id is not None:
            return f"{self.operator} · {self.name or self.url}"
        return f"{self.authority} · {self.get_kind_display()} {self.address}"

    @property
    def address(self) -> str:
        return self.email if self.kind == ChannelKind.EMAIL else self.url

    @property
    def is_webhook(self) -> bool:
        return self.kind == ChannelKind.WEBHOOK

    @property
    def owned_by_operator(self) -> bool:
        """Whether this is an organisation's own endpoint (not an authority's channel)."""
        return self.operator_id is not None

    def clean(self) -> None:
        """Check that the address matches the kind and that a webhook URL is safe to call."""
        errors = {}
        if self.kind == ChannelKind.EMAIL:
            if not self.email:
                errors["email"] = _("An e-mail channel needs an e-mail address.")
            self.url = ""
        elif self.kind == ChannelKind.WEBHOOK:
            self.email = ""
            if not self.url:
                errors["url"] = _("A webhook endpoint needs a URL.")
            else:
                try:
                    resolve(self.url)
                except UnsafeURL as exc:
                    errors["url"] = str(exc)
        # Each owner subscribes to its own family only: an authority's channel never
        # lists an organisation's events, nor an organisation's endpoint an authority alert.
        known = OPERATOR_EVENT_TYPES if self.operator_id is not None else EVENT_TYPES
        unknown = [e for e in self.event_types or [] if e not in known]
        if not isinstance(self.event_types, list) or unknown:
            errors["event_types"] = _("Unknown event types: %(types)s") % {
                "types": ", ".join(map(str, unknown))
            }
        elif self.operator_id is not None and not self.event_types:
            errors["event_types"] = _("Choose at least one event.")
        if errors:
            raise ValidationError(errors)

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now=None) -> list[str]:
        """Return the secrets that sign right now: the current one, then the previous during overlap."""
        now = now or timezone.now()
        found = [self.secret] if self.secret else []
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            found.append(self.previous_secret)
        return found

    def rotate_secret(self, *, overlap: timedelta) -> str:
        """Install a new secret (not saved); the old one keeps signing for `overlap`. Return the new one."""
        if self.secret and overlap.total_seconds() > 0:
            self.previous_secret = self.secret
            self.previous_secret_expires_at = timezone.now() + overlap
        else:
            # Clearing the old secret, not setting a password.
            self.previous_secret = ""  # nosec B105
            self.previous_secret_expires_at = None
        self.secret = new_webhook_secret()
        return self.secret


class RoutingRule(models.Model):
    """Event type × operator sector × province → authority. Empty sector/province means any."""

    event_pattern = models.CharField(_("event"), max_length=40, choices=EventPattern.choices)
    sector = models.CharField(_("operator sector"), max_length=20, choices=Sector.choices, blank=True)
    province = models.CharField(_("province"), max_length=5, choices=Province.choices, blank=True)
    authority = models.ForeignKey(Authority, on_delete=models.CASCADE, related_name="routing_rules")
    enabled = models.BooleanField(_("enabled"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["event_pattern", "sector", "province", "authority__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_pattern", "sector", "province", "authority"], name="alerts_rule_unique"
            ),
        ]
        indexes = [
            # Serves emit_event's "rules for this event pattern, sector and province".
            models.Index(fields=["event_pattern", "sector", "province"], name="alerts_rule_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.event_pattern} · {self.sector or '*'} · {self.province or '*'} → {self.authority}"


class AlertQuerySet(models.QuerySet):
    def for_operator(self, operator: Operator) -> "AlertQuerySet":
        return self.filter(operator=operator)

    def to_authorities(self) -> "AlertQuerySet":
        """Alerts for authorities, without the events sent to organisations' own endpoints."""
        return self.exclude(event_type__in=OPERATOR_EVENT_TYPES)


class Alert(models.Model):
    """The outbox row: one event, written in the event's own transaction."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(
        _("event"), max_length=40, choices=EventType.choices + OperatorEventType.choices
    )
    # No index of their own: the composite indexes below lead with these columns.
    operator = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="alerts", null=True, blank=True, db_index=False
    )
    sector = models.CharField(_("sector"), max_length=20, choices=Sector.choices, blank=True)
    province = models.CharField(_("province"), max_length=5, choices=Province.choices, blank=True)
    subject_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    subject_id = models.CharField(max_length=64, blank=True)
    # The exact envelope bytes every channel of this alert receives (JSON, UTF-8), which
    # hold the event's data (`payload`) once. Encrypted at rest: with the data subject's
    # consent the data carries an identity.
    body = EncryptedTextField(editable=False)
    unrouted = models.BooleanField(
        _("unrouted"),
        default=False,
        help_text=_("No routing rule matched; sent to BSSN's default channel."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = AlertQuerySet.as_manager()

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Serves the operator's "what was sent to my organisation" list.
            models.Index(fields=["operator", "-created_at"], name="alerts_alert_operator_recent"),
            # Serves "alerts about this incident / flag".
            models.Index(fields=["subject_type", "subject_id"], name="alerts_alert_subject"),
            # Serves the admin's list, newest first, and its date drill-down. An alert is
            # written once and never updated, so this costs one entry per alert.
            models.Index(fields=["-created_at", "-id"], name="alerts_alert_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} {self.uuid}"

    @property
    def payload(self) -> dict:
        """The event's data document: given when the alert is made, else read from its body."""
        if "_payload" not in self.__dict__:
            self.__dict__["_payload"] = json.loads(self.body)["data"] if self.body else None
        return self.__dict__["_payload"]

    @payload.setter
    def payload(self, value: dict) -> None:
        self.__dict__["_payload"] = value

    @property
    def webhook_id(self) -> str:
        """Return the Standard Webhooks message id: stable across retries and channels."""
        return f"msg_{self.uuid.hex}"

    def envelope(self) -> dict:
        return {
            "id": self.webhook_id,
            "type": self.event_type,
            "timestamp": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.payload,
        }

    def render_body(self) -> str:
        return json.dumps(self.envelope(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def disclosed_fields(self) -> list[str]:
        """Return the top-level data fields this alert carried (the same for every recipient)."""
        return sorted(self.payload)

    def disclosures(self) -> list[dict]:
        """Return, per delivery, who received which fields and the sha256 of the exact bytes."""
        digest = hashlib.sha256(self.body.encode()).hexdigest()
        return [
            {
                "authority": d.authority.code if d.authority_id else None,
                "channel": d.channel_id,
                "kind": d.kind,
                "address": d.address,
                "status": d.status,
                "fields": self.disclosed_fields(),
                "body_sha256": digest,
            }
            for d in self.deliveries.select_related("authority")
        ]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Failed")
    # The channel is disabled: kept, in order, until BSSN enables it again (and chooses
    # to send or discard what it held).
    HELD = "held", _("Held (channel disabled)")


class OutboxQuerySet(models.QuerySet):
    """Rows of an outbox (Delivery, Notice): pending → sending → done, or dead.

    Both models' status choices name these three states with the same values. A row
    in sending carries a lease (`leased_until`) that its worker renews while it works.
    """

    PENDING, SENDING, DEAD = "pending", "sending", "dead"

    def due(self, now, *, grace: timedelta) -> "OutboxQuerySet":
        return self.filter(status=self.PENDING, next_attempt_at__lte=now - grace)

    def stuck(self, now) -> "OutboxQuerySet":
        """Rows in sending whose worker stopped renewing the lease (a row claimed before leases had none)."""
        return self.filter(Q(leased_until__lt=now) | Q(leased_until__isnull=True), status=self.SENDING)


class DeliveryQuerySet(OutboxQuerySet):
    def for_operator(self, operator: Operator) -> "DeliveryQuerySet":
        return self.filter(alert__operator=operator)

    def to_authorities(self) -> "DeliveryQuerySet":
        """Alerts to authorities; organisations' own webhook endpoints are their business."""
        return self.filter(authority__isnull=False)


class Delivery(models.Model):
    """One alert to one channel. Retries reuse it; each try is an Attempt.

    Written twice per send (claim, outcome), so it carries only the indexes it needs:
    every index costs each of those writes.
    """

    # Indexed by the (alert, channel) constraint, which leads with it.
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="deliveries")
    # Null for a delivery to an organisation's own endpoint (its alert's operator owns it).
    authority = models.ForeignKey(
        Authority, on_delete=models.PROTECT, related_name="deliveries", null=True, blank=True
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ChannelKind.choices)
    # The recipient address at the time the alert was written (the channel may change later).
    address = models.CharField(_("address"), max_length=500)
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by each claim; only the holder of the current claim may record the outcome.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    # While sending: the claim holds until then; its worker renews it (lease.py), the
    # sweeper frees it once it has expired (the worker died).
    leased_until = models.DateTimeField(null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        # Newest first by id (ids follow creation): the primary key serves it, where an
        # index on created_at would be one more entry for each of a delivery's writes.
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="alerts_delivery_once_per_channel"),
        ]
        indexes = [
            # "Pending and due" by channel, oldest first: a batch's claim reads it in order
            # and stops at its limit; the sweeper reads all of it (pending rows only).
            # "Sending and claimed long ago" for the sweeper. Partial, so delivered and
            # dead rows (nearly all of them, in time) are not indexed.
            models.Index(
                fields=["channel", "next_attempt_at"],
                condition=Q(status="pending"),
                name="alerts_delivery_due_by_channel",
            ),
            # Rows in sending, by channel: the per-channel concurrency cap counts them, the
            # sweeper looks for expired leases among them.
            models.Index(
                fields=["channel", "leased_until"],
                condition=Q(status="sending"),
                name="alerts_delivery_sending",
            ),
            # What a disabled channel holds, in order, for its release.
            models.Index(fields=["channel", "id"], condition=Q(status="held"), name="alerts_delivery_held"),
            # The admin's "failed" list, where BSSN retries them. Rows enter it only when
            # they die, so the hot path never writes to it.
            models.Index(fields=["-id"], condition=Q(status="dead"), name="alerts_delivery_dead"),
        ]

    def __str__(self) -> str:
        return f"{self.alert.get_event_type_display()} → {self.address} ({self.get_status_display()})"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    RETRY = "retry", _("Will retry")
    FAILED = "failed", _("Failed permanently")


class Attempt(models.Model):
    """One try at a delivery: when, what came back, how long it took."""

    # Indexed by the (delivery, number) constraint, which leads with it.
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveSmallIntegerField(_("number"))
    started_at = models.DateTimeField(_("started"))
    latency_ms = models.PositiveIntegerField(_("latency (ms)"))
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=AttemptOutcome.choices)
    webhook_timestamp = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="alerts_attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.outcome} {self.status_code or self.error}"


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DEAD = "dead", _("Failed")


# What each e-mail template announces, as the admin lists it (codes are what notify.py passes).
NOTICE_TEMPLATE_LABELS = {
    "incidents/status_changed": _("Incident status changed (to the operator)"),
    "incidents/information_requested": _("Information requested (to the operator)"),
    "incidents/new_comment": _("New message (to the operator)"),
    "incidents/deadline_reminder": _("Deadline reminder (to the operator)"),
    "incidents/deadline_missed": _("Deadline missed (to the operator)"),
    "incidents/bssn_new_incident": _("New incident (to BSSN)"),
    "incidents/bssn_deadline_missed": _("Deadline missed (to BSSN)"),
    "alerts/channel_disabled": _("Alert channel disabled (to BSSN)"),
    "alerts/endpoint_disabled": _("Webhook endpoint disabled (to the organisation)"),
}


class Notice(models.Model):
    """An e-mail to people (an organisation's staff, BSSN), kept until a worker has sent it.

    Written in the transaction of what it announces, as alerts are: a rollback leaves no
    e-mail, and a mail server that is down only delays it (retries, then the sweeper).
    Recipients and text are personal data, encrypted at rest.
    """

    template = models.CharField(_("template"), max_length=100, editable=False)
    operator = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="notices", null=True, blank=True, editable=False
    )
    recipients = EncryptedTextField(editable=False)  # JSON list of addresses
    subject = EncryptedTextField(editable=False)
    text = EncryptedTextField(editable=False)
    html = EncryptedTextField(editable=False, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=NoticeStatus.choices, default=NoticeStatus.PENDING
    )
    attempt_count = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # While sending: renewed by its worker, freed by the sweeper once expired (as deliveries).
    leased_until = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = OutboxQuerySet.as_manager()

    class Meta:
        verbose_name = _("notice e-mail")
        verbose_name_plural = _("notice e-mails")
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="alerts_notice_due"),
            models.Index(fields=["leased_until"], condition=Q(status="sending"), name="alerts_notice_leased"),
        ]

    def __str__(self) -> str:
        return f"{self.template_label} ({self.get_status_display()})"

    @property
    def template_label(self) -> str:
        """Return what the e-mail is about, in the reader's language, for its template code."""
        label = NOTICE_TEMPLATE_LABELS.get(self.template)
        return str(label) if label else self.template.rsplit("/", 1)[-1].replace("_", " ").capitalize()

    @property
    def to(self) -> list[str]:
        return json.loads(self.recipients)
