"""Privacy policies (versioned) and the consent ledger (append-only, hash-chained).

A published policy version is immutable: its content and purposes are frozen and a
sha256 over its canonical text is stored. Ledger events are never updated or
deleted: the model, the queryset and the admin refuse, and on PostgreSQL a trigger
refuses raw UPDATE and DELETE (migration 0002).
"""

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import markdown
import nh3
from django.conf import settings
from django.db import models
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from fernet_fields import EncryptedCharField

from portal.crypto import Kind
from portal.deadlines import DeadlineQuerySet

# Purpose code for sharing a flagged user's identity with health authorities; the
# suspected-cases app asks `services.has_current_consent` about it.
SHARE_IDENTITY_WITH_HEALTH_AUTHORITIES = "share-identity-health"

GENESIS_HASH = "0" * 64
# UU PDP: processing must stop within 3 x 24 hours of a withdrawal.
WITHDRAWAL_STOP_HOURS = 72


class ImmutableError(Exception):
    """A write that would change a published policy version or a ledger event."""


# --- Privacy policies ------------------------------------------------------------


class PolicyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    RETIRED = "retired", _("Retired")


class LegalBasis(models.TextChoices):
    """Lawful bases for processing personal data (UU 27/2022, Pasal 20 ayat 2)."""

    CONSENT = "consent", _("Explicit consent")
    CONTRACT = "contract", _("Performance of a contract")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation")
    VITAL_INTEREST = "vital_interest", _("Vital interest of the data subject")
    PUBLIC_TASK = "public_task", _("Public task or official authority")
    LEGITIMATE_INTEREST = "legitimate_interest", _("Legitimate interest")


class SpecificData(models.TextChoices):
    """Specific personal data (UU PDP Pasal 4 ayat 2) a purpose may involve."""

    HEALTH = "health", _("Health")
    FINANCIAL = "financial", _("Personal financial")
    BIOMETRIC = "biometric", _("Biometric")
    GENETIC = "genetic", _("Genetic")
    CHILDREN = "children", _("Children's data")
    CRIMINAL = "criminal", _("Criminal records")


def render_markdown(text: str) -> str:
    """Return `text` (Markdown) as sanitised HTML, safe to show."""
    html = markdown.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    # nh3 (ammonia) has just sanitised it.
    return mark_safe(nh3.clean(html))  # noqa: S308  # nosec B308 B703


class PolicyVersionQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "PolicyVersionQuerySet":
        return self.filter(operator=operator)

    def shown_publicly(self) -> "PolicyVersionQuerySet":
        return self.exclude(status=PolicyStatus.DRAFT)

    def update(self, **kwargs):
        # Only the published -> retired transition may touch a non-draft row.
        allowed = set(kwargs) <= {"status", "retired_at"} and kwargs.get("status", PolicyStatus.RETIRED) == (
            PolicyStatus.RETIRED
        )
        if not allowed and self.exclude(status=PolicyStatus.DRAFT).exists():
            raise ImmutableError("a published policy version cannot be changed")
        return super().update(**kwargs)

    def delete(self):
        if self.exclude(status=PolicyStatus.DRAFT).exists():
            raise ImmutableError("a published policy version cannot be deleted")
        return super().delete()


class PolicyVersion(models.Model):
    """One version of an operator's privacy policy, with its purposes."""

    operator = models.ForeignKey(
        "accounts.Operator",
        on_delete=models.PROTECT,
        related_name="policy_versions",
        verbose_name=_("operator"),
    )
    number = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=10, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    title = models.CharField(_("title"), max_length=200)
    text_id = models.TextField(_("text (Bahasa Indonesia)"), blank=True, help_text=_("Markdown."))
    text_en = models.TextField(_("text (English)"), blank=True, help_text=_("Markdown."))
    effective_date = models.DateField(_("effective date"))
    change_summary = models.TextField(_("change summary"), blank=True)
    sha256 = models.CharField(_("sha256"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)

    objects = PolicyVersionQuerySet.as_manager()

    # Fields that may change after publication (the retire transition only).
    MUTABLE_AFTER_PUBLISH = frozenset({"status", "retired_at"})

    class Meta:
        verbose_name = _("privacy policy version")
        verbose_name_plural = _("privacy policy versions")
        ordering = ["operator", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "number"], name="consent_policy_unique_number"),
            # At most one current published version per operator (the public page's).
            models.UniqueConstraint(
                fields=["operator"],
                condition=models.Q(status="published"),
                name="consent_policy_one_published",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            self._refuse_change_if_frozen()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse(
            "consent:policy_detail", kwargs={"operator_slug": self.operator.slug, "version_id": self.pk}
        )

    def delete(self, *args, **kwargs):
        if self.is_frozen_in_db():
            raise ImmutableError("a published policy version cannot be deleted")
        return super().delete(*args, **kwargs)

    def get_public_url(self) -> str:
        return reverse(
            "public_policy:version", kwargs={"operator_slug": self.operator.slug, "number": self.number}
        )

    def is_frozen_in_db(self) -> bool:
        if self.pk is None:
            return False
        stored = PolicyVersion.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        return stored is not None and stored != PolicyStatus.DRAFT

    def _refuse_change_if_frozen(self) -> None:
        stored = PolicyVersion.objects.filter(pk=self.pk).first()
        if stored is None or stored.status == PolicyStatus.DRAFT:
            return
        for field in self._meta.concrete_fields:
            if field.name in self.MUTABLE_AFTER_PUBLISH:
                continue
            if field.value_from_object(self) != field.value_from_object(stored):
                raise ImmutableError(f"a published policy version cannot be changed ({field.name})")
        if self.status == PolicyStatus.DRAFT:
            raise ImmutableError("a published policy version cannot return to draft")

    @property
    def is_draft(self) -> bool:
        return self.status == PolicyStatus.DRAFT

    @property
    def is_published(self) -> bool:
        return self.status == PolicyStatus.PUBLISHED

    def languages(self) -> list[str]:
        return [code for code, text in (("id", self.text_id), ("en", self.text_en)) if text.strip()]

    def text_for(self, language: str | None) -> str:
        """Return the text in `language`, falling back to the other language."""
        if language and language.startswith("en"):
            return self.text_en or self.text_id
        return self.text_id or self.text_en

    def html_for(self, language: str | None) -> str:
        return render_markdown(self.text_for(language))

    def canonical_text(self) -> str:
        """Return the text the sha256 covers: content and purposes in a fixed form."""
        doc = {
            "operator": self.operator.slug,
            "number": self.number,
            "title": self.title,
            "text_id": self.text_id,
            "text_en": self.text_en,
            "effective_date": self.effective_date.isoformat(),
            "change_summary": self.change_summary,
            "purposes": [p.canonical() for p in self.purposes.order_by("code")],
        }
        return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def compute_sha256(self) -> str:
        return hashlib.sha256(self.canonical_text().encode("utf-8")).hexdigest()

    def purpose_codes(self) -> set[str]:
        return set(self.purposes.values_list("code", flat=True))


class PurposeQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "PurposeQuerySet":
        return self.filter(version__operator=operator)

    def update(self, **kwargs):
        if self.exclude(version__status=PolicyStatus.DRAFT).exists():
            raise ImmutableError("purposes of a published policy version cannot be changed")
        return super().update(**kwargs)

    def delete(self):
        if self.exclude(version__status=PolicyStatus.DRAFT).exists():
            raise ImmutableError("purposes of a published policy version cannot be deleted")
        return super().delete()


class Purpose(models.Model):
    """A processing purpose a policy version declares, with its lawful basis."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="purposes")
    code = models.SlugField(
        _("code"),
        max_length=60,
        help_text=_("Stable short code used in consent records, e.g. marketing-email."),
    )
    description = models.TextField(_("description"))
    legal_basis = models.CharField(_("legal basis"), max_length=24, choices=LegalBasis.choices)
    data_categories = models.TextField(
        _("personal-data categories"), help_text=_("For example: name, e-mail address, order history.")
    )
    specific_data = models.JSONField(_("specific personal data"), default=list, blank=True)
    retention = models.CharField(_("retention"), max_length=200)
    recipients = models.TextField(_("recipients"), blank=True)
    withdrawal_method = models.TextField(_("how to withdraw"), blank=True)

    objects = PurposeQuerySet.as_manager()

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["version", "code"]
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="consent_purpose_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs) -> None:
        if self.version.is_frozen_in_db():
            raise ImmutableError("purposes of a published policy version cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.version.is_frozen_in_db():
            raise ImmutableError("purposes of a published policy version cannot be deleted")
        return super().delete(*args, **kwargs)

    def canonical(self) -> dict:
        return {
            "code": self.code,
            "description": self.description,
            "legal_basis": self.legal_basis,
            "data_categories": self.data_categories,
            "specific_data": sorted(self.specific_data or []),
            "retention": self.retention,
            "recipients": self.recipients,
            "withdrawal_method": self.withdrawal_method,
        }

    @property
    def involves_specific_data(self) -> bool:
        return bool(self.specific_data)

    def specific_data_labels(self) -> list[str]:
        labels = dict(SpecificData.choices)
        return [str(labels.get(v, v)) for v in self.specific_data or []]

    def data_category_list(self) -> list[str]:
        return [c.strip() for c in self.data_categories.replace("\n", ",").split(",") if c.strip()]


# --- Consent ledger --------------------------------------------------------------


class ConsentState(models.TextChoices):
    GIVEN = "given", _("Given")
    REFUSED = "refused", _("Refused")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    EXPIRED = "expired", _("Expired")


class CollectionMethod(models.TextChoices):
    WEB_FORM = "web_form", _("Web form")
    MOBILE_APP = "mobile_app", _("Mobile app")
    API = "api", _("API")
    VERBAL = "verbal", _("Recorded verbal")
    PAPER = "paper", _("Scanned paper")


class ActorType(models.TextChoices):
    SUBJECT = "subject", _("Data subject")
    GUARDIAN = "guardian", _("Parent or guardian")
    STAFF = "staff", _("Operator staff")


class LedgerHead(models.Model):
    """Head of one operator's consent chain: its row lock serialises writers."""

    operator = models.OneToOneField(
        "accounts.Operator",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        primary_key=True,
        related_name="+",
    )
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    # Keyed MAC of (stream, last_seq, last_hash) under a key derived from the checkpoint
    # signing key: a head moved outside the application (forged append, rollback) shows.
    mac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("consent chain head")

    def __str__(self) -> str:
        return f"{self.operator_id}#{self.last_seq}"


class ConsentEventQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "ConsentEventQuerySet":
        return self.filter(operator=operator)

    def for_subject(self, subject_index: str) -> "ConsentEventQuerySet":
        return self.filter(subject_index=subject_index)

    def latest_per_purpose(self) -> "ConsentEventQuerySet":
        """Keep, per subject and purpose, only the latest event (by event time, then order).

        The database ranks the rows (a window function); nothing is loaded to rank in Python.
        """
        ranked = self.annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("subject_index"), F("purpose_code")],
                order_by=[F("event_at").desc(), F("seq").desc()],
            )
        )
        return ranked.filter(rank=1)

    def update(self, **kwargs):
        raise ImmutableError("consent events are append-only")

    def delete(self):
        raise ImmutableError("consent events are append-only")

    # bulk_update would bypass save(); refuse it too.
    def bulk_update(self, *args, **kwargs):
        raise ImmutableError("consent events are append-only")


class ConsentEvent(models.Model):
    """One consent decision of one data subject for one purpose. Never changed."""

    # The primary key doubles as the receipt's record id (ISO/IEC TS 27560 "record_id").
    record_id = models.UUIDField(_("record id"), primary_key=True, default=uuid.uuid4, editable=False)
    # No foreign-key constraints: the ledger outlives anything it refers to. No
    # single-column indexes either: the composite indexes below serve every query,
    # and each extra index slows the bulk import.
    operator = models.ForeignKey(
        "accounts.Operator",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("operator"),
    )
    seq = models.BigIntegerField(_("sequence"))
    subject_identifier = EncryptedCharField(_("subject identifier"), max_length=200)
    # Keyed HMAC of the identifier: serves "every event of this subject" without decrypting.
    subject_index = models.CharField(max_length=64, editable=False)
    # The blind index as it was when the event was written: the hash chain covers this
    # frozen copy, so `rotate_keys` can recompute `subject_index` under a new key
    # without breaking the chain.
    subject_digest = models.CharField(max_length=64, editable=False, default="")
    purpose_code = models.CharField(_("purpose"), max_length=60)
    policy_version = models.ForeignKey(
        PolicyVersion,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("policy version"),
    )
    state = models.CharField(_("state"), max_length=10, choices=ConsentState.choices)
    method = models.CharField(_("method"), max_length=12, choices=CollectionMethod.choices)
    actor_type = models.CharField(_("given by"), max_length=10, choices=ActorType.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    event_at = models.DateTimeField(_("event time"))
    recorded_at = models.DateTimeField(_("recorded"))
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    stop_processing_by = models.DateTimeField(_("stop processing by"), null=True, blank=True)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    # Keyed hash of an imported row's content: a re-imported row is recognised, not doubled.
    # 128 bits of the keyed hash (compact and quick to index); NULL for events recorded
    # by hand, which the unique constraint ignores.
    import_key = models.UUIDField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = ConsentEventQuerySet.as_manager()

    # Recomputed by `rotate_keys` (the chain covers `subject_digest`, which stays).
    BLIND_INDEXES = {"subject_index": ("subject_identifier", Kind.IDENTIFIER)}

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        ordering = ["operator", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "seq"], name="consent_event_unique_seq"),
            # Also serves the importer's "which of these rows are recorded already?".
            models.UniqueConstraint(
                fields=["operator", "import_key"], name="consent_event_unique_import_key"
            ),
        ]
        indexes = [
            # Subject lookup, current state and has_current_consent: one subject's
            # events per purpose, latest first.
            models.Index(
                fields=["operator", "subject_index", "purpose_code", "-event_at", "-seq"],
                name="consent_event_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operator_id}#{self.seq} {self.purpose_code} {self.state}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding or not kwargs.get("force_insert"):
            raise ImmutableError("consent events are written only by consent.services (append-only)")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("consent events are append-only")

    def get_receipt_url(self) -> str:
        return reverse(
            "consent:receipt", kwargs={"operator_slug": self.operator.slug, "record_id": self.record_id}
        )

    def canonical(self) -> bytes:
        return canonical_bytes(tuple(getattr(self, name) for name in CANONICAL_FIELDS))

    def compute_hash(self) -> str:
        return chain_hash(self.prev_hash, self.canonical())

    def effective_state(self, at=None) -> str:
        """Return the state at `at`: a given consent past its expiry counts as expired."""
        at = at or timezone.now()
        if self.state == ConsentState.GIVEN and self.expires_at is not None and self.expires_at <= at:
            return ConsentState.EXPIRED
        return self.state


# What an event's hash covers, in this order (with the previous hash in front).
CANONICAL_FIELDS = (
    "operator_id",
    "seq",
    "record_id",
    "subject_digest",
    "purpose_code",
    "policy_version_id",
    "state",
    "method",
    "actor_type",
    "recorded_by_id",
    "event_at",
    "recorded_at",
    "expires_at",
    "stop_processing_by",
    "evidence",
    "import_key",
)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# JSON escapes every control character, so the separator never occurs inside.
canonical_json = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def epoch_micros(value: datetime) -> int:
    """Return an aware time as whole microseconds since 1970 (exact, zone-independent)."""
    return (value - EPOCH) // MICROSECOND


def _canonical_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return str(epoch_micros(value))
    if isinstance(value, dict):
        return canonical_json(value)
    return str(value)


def canonical_bytes(values: tuple) -> bytes:
    """Return the canonical form of an event's values (CANONICAL_FIELDS order).

    Fields are joined with the ASCII unit separator, which no field can contain
    (codes are slugs, hashes hex, times microseconds since 1970, evidence JSON).
    """
    return "\x1f".join(map(_canonical_text, values)).encode()


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def stop_processing_deadline(event_at):
    return event_at + timedelta(hours=WITHDRAWAL_STOP_HOURS)


class ImportStatus(models.TextChoices):
    VALIDATING = "validating", _("Checking the file")
    PREVIEWED = "previewed", _("Awaiting confirmation")
    IMPORTING = "importing", _("Importing")
    COMMITTED = "committed", _("Imported")
    FAILED = "failed", _("Refused (errors)")
    DUPLICATE = "duplicate", _("Already imported")


class ConsentImportQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "ConsentImportQuerySet":
        return self.filter(operator=operator)


class ConsentImport(models.Model):
    """One uploaded CSV file: its preview, errors and outcome."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operator = models.ForeignKey("accounts.Operator", on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(_("file"), max_length=200)
    # Keyed hash of the file's bytes: the same file uploaded again is recognised.
    file_digest = models.CharField(max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=ImportStatus.choices)
    # Progress while a worker checks or imports the file: rows done of about `rows_expected`
    # (the file's line count, known when it is staged).
    rows_expected = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    imported_count = models.PositiveIntegerField(_("events imported"), default=0)
    skipped_count = models.PositiveIntegerField(_("rows already recorded"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    committed_at = models.DateTimeField(_("imported"), null=True, blank=True)

    objects = ConsentImportQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent import")
        verbose_name_plural = _("consent imports")
        ordering = ["-created_at"]
        indexes = [
            # "Was this file imported already?"
            models.Index(fields=["operator", "file_digest"], name="consent_import_digest"),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def staging_path(self) -> Path:
        """Where the uploaded file waits, Fernet-encrypted, until it is imported or refused."""
        return staging_dir() / f"{self.pk}.fernet"

    @property
    def in_progress(self) -> bool:
        return self.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING)

    @classmethod
    def encrypted_files(cls) -> list[Path]:
        """Return the staged files, for `rotate_keys` to re-encrypt under the first key."""
        return sorted(staging_dir().glob("*.fernet"))


def staging_dir() -> Path:
    return Path(settings.PRIVATE_STORAGE_ROOT) / "consent-imports"


class ImportSecret(models.Model):
    """The operator's key for import keys and file digests, kept apart from BLIND_INDEX_KEY.

    A row's import key is part of its event's hash, so it can never be recomputed;
    were it keyed by BLIND_INDEX_KEY, every re-import after an index-key rotation
    would double the ledger. This key is random per operator and never rotated;
    it is stored Fernet-encrypted (re-encrypted by `rotate_keys` like every
    encrypted column), so the database alone cannot test guesses of identifiers
    against import keys. Migration 0006 seeds operators that imported before with
    the blind-index key of that time, so their existing import keys keep matching.
    """

    operator = models.OneToOneField(
        "accounts.Operator", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    secret = EncryptedCharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("consent import key")

    def __str__(self) -> str:
        return str(self.operator_id)


# --- The clock a withdrawal starts ------------------------------------------------------

# UU 27/2022 (PDP) Pasal 40: once consent is withdrawn (the right of Pasal 9), the
# controller stops processing (ayat 1) at the latest 3 x 24 hours after it received the
# request to withdraw (ayat 2).
PROCESSING_STOP_SOURCE = (
    "UU No. 27 Tahun 2022 (PDP), Pasal 40 ayat (1) dan (2) jo. Pasal 9: penghentian pemrosesan paling lambat "
    "3 x 24 jam sejak penarikan persetujuan diterima"
)


class ProcessingStopQuerySet(DeadlineQuerySet):
    def for_operator(self, operator) -> "ProcessingStopQuerySet":
        return self.filter(operator=operator)

    def open(self) -> "ProcessingStopQuerySet":
        return self.filter(met_at__isnull=True)


class ProcessingStopObligation(models.Model):
    """One withdrawal's deadline to stop processing: due, reminded, confirmed by the operator or missed.

    A row of its own beside the append-only ledger (the withdrawal event never
    changes); the reminder mechanics mirror the incidents' `Obligation` (sent
    markers claimed by a conditional UPDATE). docs/decisions/0010.
    """

    operator = models.ForeignKey(
        "accounts.Operator", on_delete=models.CASCADE, related_name="+", verbose_name=_("operator")
    )
    # The withdrawal event (one per purpose). No database constraint: the ledger's
    # rows carry none either, and the event is never deleted.
    event = models.OneToOneField(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="processing_stop",
        verbose_name=_("withdrawal"),
    )
    purpose_code = models.CharField(_("purpose"), max_length=60)
    due_at = models.DateTimeField(_("stop processing by"))
    remind_at = models.DateTimeField(_("reminder at"))
    met_at = models.DateTimeField(_("processing stopped at"), null=True, blank=True)
    met_note = models.CharField(_("note"), max_length=300, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    # Sent markers: set by a conditional UPDATE before sending, so each notice goes out once.
    reminder_sent_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    overdue_sent_at = models.DateTimeField(_("overdue notice sent at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProcessingStopQuerySet.as_manager()

    class Meta:
        verbose_name = _("processing stop deadline")
        verbose_name_plural = _("processing stop deadlines")
        ordering = ["due_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(met_at__isnull=True) | Q(confirmed_by__isnull=False),
                name="processing_stop_met_has_who",
            ),
        ]
        indexes = [
            # The reminder sweep: open obligations by due time.
            models.Index(
                fields=["due_at"], condition=Q(met_at__isnull=True), name="processing_stop_open_due"
            ),
            # The operator's deadlines page: its open ones first, by due time.
            models.Index(fields=["operator", "due_at"], name="processing_stop_operator"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose_code} {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.met_at is None

    @property
    def legal_source(self) -> str:
        return PROCESSING_STOP_SOURCE

    def state(self, now=None) -> str:
        """Return one of met_on_time, met_late, overdue, pending (as incident deadlines)."""
        now = now or timezone.now()
        if self.met_at:
            return "met_on_time" if self.met_at <= self.due_at else "met_late"
        return "overdue" if self.due_at <= now else "pending"


class ProcessingStopCursor(models.Model):
    """How far the beat has looked through an operator's ledger for withdrawals without a clock.

    `record_consent` opens the obligation itself; this catches withdrawals written by
    any other path (the bulk importer) without touching it: events up to the chain
    head's `last_seq` are committed, so a range scan by (operator, seq) past this
    cursor sees each new event once.
    """

    operator = models.OneToOneField(
        "accounts.Operator", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("withdrawal scan position")

    def __str__(self) -> str:
        return f"{self.operator_id}#{self.last_seq}"
