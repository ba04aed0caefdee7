"""The append-only, hash-chained audit log."""

import hashlib
import json

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64


class AuditStream(models.Model):
    """Head of one hash chain: its row lock serialises writers of that chain."""

    name = models.CharField(max_length=40, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    # Keyed MAC of (stream, last_seq, last_hash) under a key derived from the checkpoint
    # signing key: a head moved outside the application (forged append, rollback) shows.
    mac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("audit stream")

    def __str__(self) -> str:
        return self.name


class AuditEventQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "AuditEventQuerySet":
        return self.filter(operator_id=operator.pk)


class AuditEvent(models.Model):
    """One audited action. Never updated or deleted (a PostgreSQL trigger refuses both)."""

    stream = models.CharField(max_length=40, default="main")
    seq = models.BigIntegerField()
    created_at = models.DateTimeField(_("time"))
    # No foreign-key constraints: deleting a user or operator must not touch the log.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(_("actor"), max_length=254, blank=True)
    operator = models.ForeignKey(
        "accounts.Operator",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("operator"),
    )
    action = models.CharField(_("action"), max_length=80)
    target_type = models.CharField(_("object type"), max_length=80, blank=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_repr = models.CharField(_("object"), max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    changes = models.JSONField(_("details"), default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["stream", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="audit_event_unique_seq"),
        ]
        indexes = [
            # Operator admins read their organisation's part of the log, newest first.
            models.Index(fields=["operator", "-created_at"], name="audit_operator_time"),
            models.Index(fields=["action", "-created_at"], name="audit_action_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def canonical(self) -> bytes:
        """Return the bytes the hash covers: every recorded field, in a fixed order."""
        doc = {
            "stream": self.stream,
            "seq": self.seq,
            "created_at": self.created_at.isoformat(),
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "operator_id": self.operator_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "target_repr": self.target_repr,
            "ip_address": self.ip_address,
            "changes": self.changes,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.prev_hash.encode() + self.canonical()).hexdigest()


class Checkpoint(models.Model):
    """A signed statement of one stream's size and Merkle root (portal/transparency.py).

    The same checkpoint is also written to the checkpoint store outside the database
    and sent to BSSN; this row is the portal's own copy, which a database superuser
    could delete, so verification trusts the signature and the store, not the row.
    """

    stream = models.CharField(_("stream"), max_length=80)
    number = models.PositiveIntegerField(_("number"))
    size = models.BigIntegerField(_("events"))
    root_hash = models.CharField(_("root hash"), max_length=64)
    # The signed time, exactly as signed (ISO 8601, UTC).
    timestamp = models.CharField(_("time"), max_length=40)
    key_id = models.CharField(_("key"), max_length=16)
    signature = models.CharField(max_length=100)
    # Compact state of the tree (subtree roots), so the next checkpoint reads only new events.
    frontier = models.JSONField(default=list)
    previous_size = models.BigIntegerField(default=0)
    previous_root = models.CharField(max_length=64, blank=True)
    consistency = models.JSONField(default=list)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
        ordering = ["stream", "-number"]
        constraints = [
            # Also serves "the latest checkpoint of this stream".
            models.UniqueConstraint(fields=["stream", "number"], name="audit_checkpoint_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.stream} #{self.number} ({self.size})"
