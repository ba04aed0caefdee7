"""API keys of operator organisations and the stored results of idempotent requests."""

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    INCIDENTS_READ = "incidents:read", _("Read incidents, reports, messages, evidence and deadlines")
    INCIDENTS_WRITE = "incidents:write", _("File and update incidents, post messages, upload evidence")
    CONSENT_READ = "consent:read", _("Read consent policies, subjects' state and receipts")
    CONSENT_WRITE = "consent:write", _("Record consent events")
    CASES_WRITE = "cases:write", _("Classify, flag, withdraw and correct suspected cases (healthtech)")


WRITE_SCOPES = frozenset({Scope.INCIDENTS_WRITE, Scope.CONSENT_WRITE, Scope.CASES_WRITE})


class ApiKeyQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "ApiKeyQuerySet":
        return self.filter(operator=operator)

    def usable(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiKey(models.Model):
    """A secret an organisation's tooling presents as `Authorization: Bearer <key>`.

    Only the SHA-256 of the key is stored; the key is shown once when created. Each key
    acts through its own user (no password, no staff flag, a membership of the key's
    organisation), so the services check its role and the audit log names the key like
    a person.
    """

    operator = models.ForeignKey(
        "accounts.Operator", on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("operator")
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key", editable=False
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotentRequest(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed on retries.

    The row is inserted before the request runs, in the request's transaction: a
    concurrent retry with the same key waits on the unique index, then replays.
    """

    operator = models.ForeignKey("accounts.Operator", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["operator", "key"], name="idempotent_request_unique_key"),
        ]
        indexes = [
            # The purge of old records: WHERE created_at < ?.
            models.Index(fields=["created_at"], name="idempotent_request_created"),
        ]

    def __str__(self) -> str:
        return self.key
