"""Suspected Covid-19 case flags: case definitions as data, flags, the identity vault, disclosures."""

import secrets
import uuid
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from fernet_fields import EncryptedCharField, EncryptedTextField

from portal.crypto import Kind
from portal.regions import Province

from . import rules


class CriterionKind(models.TextChoices):
    SYMPTOM = "symptom", _("Symptom")
    EPIDEMIOLOGICAL = "epidemiological", _("Epidemiological criterion")


class Criterion(models.Model):
    """One code a case definition may use: a symptom or an epidemiological criterion."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=CriterionKind.choices)
    name = models.CharField(_("name (English)"), max_length=160)
    name_id = models.CharField(_("name (Bahasa Indonesia)"), max_length=160)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("symptom or criterion")
        verbose_name_plural = _("symptoms and criteria")
        ordering = ["kind", "position", "code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def label(self) -> str:
        """Return the name in the active language (Bahasa Indonesia or English)."""
        return self.name_id if (translation.get_language() or "id").startswith("id") else self.name


class CaseDefinitionQuerySet(models.QuerySet):
    def active(self) -> "CaseDefinitionQuerySet":
        return self.filter(is_active=True)


class CaseDefinition(models.Model):
    """One version of a surveillance case definition; its rule is data (see rules.py).

    A definition that flags already use is never changed: a correction is a new row,
    so every flag keeps the exact version it was classified with.
    """

    code = models.CharField(
        _("code"), max_length=120, unique=True, help_text=_("The issuer's document code, e.g. WHO/…/2020.2.")
    )
    short_name = models.CharField(_("short name"), max_length=60)
    issuer = models.CharField(_("issuer"), max_length=120)
    published_on = models.DateField(_("published on"))
    source_url = models.URLField(_("source"), blank=True)
    rule = models.JSONField(_("rule"), help_text=_("Symptom codes, criteria and classes; see docs/cases.md."))
    is_default = models.BooleanField(_("default for new flags"), default=False)
    is_active = models.BooleanField(_("offered for new flags"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = CaseDefinitionQuerySet.as_manager()

    class Meta:
        verbose_name = _("case definition")
        verbose_name_plural = _("case definitions")
        ordering = ["-is_default", "-published_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="cases_one_default_definition",
            ),
        ]

    def __str__(self) -> str:
        return self.short_name

    def clean(self) -> None:
        symptoms = Criterion.objects.filter(kind=CriterionKind.SYMPTOM).values_list("code", flat=True)
        epi = Criterion.objects.filter(kind=CriterionKind.EPIDEMIOLOGICAL).values_list("code", flat=True)
        rules.validate_rule(self.rule, known_symptoms=list(symptoms), known_criteria=list(epi))
        if self.pk and self.flags.exists():
            stored = type(self).objects.filter(pk=self.pk).values_list("rule", "code").first()
            if stored and (stored[0] != self.rule or stored[1] != self.code):
                raise ValidationError(
                    _("Flags were classified with this version; add a new definition instead of changing it.")
                )
        if self.is_default and not self.is_active:
            raise ValidationError(_("The default definition must be offered for new flags."))

    def validate_constraints(self, exclude=None) -> None:
        # Saving a new default replaces the previous one (admin save_model), so a second
        # default is not a validation error; the database constraint still guards writes.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})

    @property
    def symptom_codes(self) -> list[str]:
        return list(self.rule.get("symptoms", []))

    @property
    def epidemiological_codes(self) -> list[str]:
        return list(self.rule.get("epidemiological", []))

    def evaluate(self, facts: rules.Facts) -> rules.Evaluation:
        return rules.evaluate(self.rule, facts)


class Classification(models.TextChoices):
    SUSPECT_A = "suspect_a", _("Suspect A")
    SUSPECT_B = "suspect_b", _("Suspect B")
    SUSPECT_C = "suspect_c", _("Suspect C")
    NONE = "none", _("Does not meet the case definition")


class AntigenResult(models.TextChoices):
    NOT_DONE = "not_done", _("Not done or unknown")
    POSITIVE = "positive", _("Positive")
    NEGATIVE = "negative", _("Negative")


class AgeBand(models.TextChoices):
    UNDER_5 = "0-4", _("0–4 years")
    FROM_5 = "5-17", _("5–17 years")
    FROM_18 = "18-29", _("18–29 years")
    FROM_30 = "30-44", _("30–44 years")
    FROM_45 = "45-59", _("45–59 years")
    FROM_60 = "60+", _("60 years or older")
    UNKNOWN = "unknown", _("Unknown")


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    UNKNOWN = "unknown", _("Unknown")


class LegalBasis(models.TextChoices):
    """Bases for processing personal data, UU 27/2022 (PDP) Pasal 20(2)."""

    CONSENT = "consent", _("Explicit consent of the data subject (Pasal 20(2)a)")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation (Pasal 20(2)c)")
    VITAL_INTEREST = "vital_interest", _("Vital interest of the data subject (Pasal 20(2)d)")
    PUBLIC_TASK = "public_task", _("Public interest or public service task (Pasal 20(2)e)")


class FlagStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class WithdrawReason(models.TextChoices):
    MISTAKE = "mistake", _("Flagged by mistake")
    DUPLICATE = "duplicate", _("Duplicate of another flag")
    OTHER = "other", _("Other reason")


class IdentityBasis(models.TextChoices):
    NONE = "", _("Not shared")
    CONSENT = "consent", _("Current consent in the consent ledger")
    LEGAL_BASIS = "legal_basis", _("Explicit legal basis recorded by the operator")


def new_recontact_reference() -> str:
    """Return an opaque reference an authority quotes to ask the operator to recontact the person."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "RC-" + "".join(secrets.choice(alphabet) for _ in range(10))


class CaseFlagQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "CaseFlagQuerySet":
        return self.filter(operator=operator)

    def active(self) -> "CaseFlagQuerySet":
        return self.filter(status=FlagStatus.ACTIVE)


class CaseFlag(models.Model):
    """A suspected case flagged by a healthtech operator. Pseudonymous: identity lives in CaseIdentity."""

    uid = models.UUIDField(_("flag id"), default=uuid.uuid4, unique=True, editable=False)
    operator = models.ForeignKey(
        "accounts.Operator", on_delete=models.PROTECT, related_name="case_flags", verbose_name=_("operator")
    )
    definition = models.ForeignKey(
        CaseDefinition, on_delete=models.PROTECT, related_name="flags", verbose_name=_("case definition")
    )
    # The first class met, in the definition's order (A, B, C); `classes` holds every class met.
    classification = models.CharField(_("classification"), max_length=12, choices=Classification.choices)
    classes = models.JSONField(_("classes met"), default=list)
    # The evaluator's reasons: {"classes": [...], "criteria": [...], "facts": [...]}.
    evaluation = models.JSONField(_("criteria matched"), default=dict)
    symptoms = models.JSONField(_("symptoms"), default=list)
    onset_date = models.DateField(_("symptom onset"), null=True, blank=True)
    epidemiological = models.JSONField(_("epidemiological criteria"), default=list)
    sari = models.BooleanField(_("severe acute respiratory illness (needs hospitalisation)"), default=False)
    antigen_result = models.CharField(
        _("antigen rapid test"), max_length=10, choices=AntigenResult.choices, default=AntigenResult.NOT_DONE
    )
    province = models.CharField(_("province"), max_length=5, choices=Province.choices)
    regency_code = models.CharField(_("regency code"), max_length=5, blank=True)
    regency_name = models.CharField(_("regency"), max_length=100, blank=True)
    age_band = models.CharField(_("age band"), max_length=8, choices=AgeBand.choices)
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices)
    consultation_ref = EncryptedCharField(_("consultation reference"), max_length=64, blank=True)
    # Keyed HMAC of operator + consultation reference: serves the 30-day duplicate check.
    consultation_ref_index = models.CharField(max_length=64, blank=True, editable=False)
    legal_basis = models.CharField(_("legal basis"), max_length=20, choices=LegalBasis.choices)
    identity_basis = models.CharField(
        _("identity shared on"), max_length=12, choices=IdentityBasis.choices, blank=True, default=""
    )
    identity_basis_reason = EncryptedTextField(_("reason for sharing identity"), blank=True)
    note = EncryptedTextField(_("internal note (never forwarded)"), blank=True)
    recontact_ref = models.CharField(
        _("recontact reference"), max_length=16, unique=True, default=new_recontact_reference, editable=False
    )
    status = models.CharField(
        _("status"), max_length=10, choices=FlagStatus.choices, default=FlagStatus.ACTIVE
    )
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    withdraw_reason = models.CharField(
        _("reason for withdrawal"), max_length=10, choices=WithdrawReason.choices, blank=True
    )
    revision = models.PositiveIntegerField(_("revision"), default=1)
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="possible_duplicates",
        verbose_name=_("possible duplicate of"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("flagged by"),
    )
    created_at = models.DateTimeField(_("flagged"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CaseFlagQuerySet.as_manager()

    # Recomputed by `rotate_keys` (index field -> source field, kind[, prefix field]).
    BLIND_INDEXES = {"consultation_ref_index": ("consultation_ref", Kind.IDENTIFIER, "operator_id")}

    class Meta:
        verbose_name = _("suspected case flag")
        verbose_name_plural = _("suspected case flags")
        ordering = ["-created_at"]
        indexes = [
            # The operator's flag list, newest first.
            models.Index(fields=["operator", "-created_at"], name="cases_flag_operator_time"),
            # BSSN dashboard: flags per day and province.
            models.Index(fields=["created_at", "province"], name="cases_flag_time_province"),
            # Duplicate check: same operator's consultation reference within 30 days.
            models.Index(fields=["consultation_ref_index", "created_at"], name="cases_flag_consref"),
        ]

    def __str__(self) -> str:
        return _("Flag %(ref)s") % {"ref": self.recontact_ref}

    def get_absolute_url(self) -> str:
        return reverse("cases:flag_detail", kwargs={"operator_slug": self.operator.slug, "flag_id": self.pk})

    @property
    def is_active(self) -> bool:
        return self.status == FlagStatus.ACTIVE

    def classes_display(self) -> list[str]:
        """Return the labels of every class the flag meets (the primary classification first)."""
        codes = self.classes or [self.classification]
        return [str(Classification(c).label) if c in Classification.values else c for c in codes]

    @property
    def is_possible_duplicate(self) -> bool:
        return self.duplicate_of_id is not None

    def facts(self, *, as_of: date) -> rules.Facts:
        return rules.Facts(
            symptoms=frozenset(self.symptoms),
            epidemiological=frozenset(self.epidemiological),
            sari=self.sari,
            antigen_positive=self.antigen_result == AntigenResult.POSITIVE,
            onset_date=self.onset_date,
            as_of=as_of,
        )


class CaseIdentityQuerySet(models.QuerySet):
    def unpurged(self) -> "CaseIdentityQuerySet":
        return self.filter(purged_at__isnull=True)


class CaseIdentity(models.Model):
    """The identity vault: who a flag is about, Fernet-encrypted, apart from the flag.

    Only the keyed blind index of the NIK is searchable; nothing here is decrypted to
    find duplicates. Purged after IDENTITY_RETENTION_DAYS; the flag stays.
    """

    flag = models.OneToOneField(CaseFlag, on_delete=models.CASCADE, related_name="identity")
    full_name = EncryptedCharField(_("name"), max_length=150, blank=True)
    phone = EncryptedCharField(_("phone"), max_length=32, blank=True)
    nik = EncryptedCharField(_("NIK"), max_length=16, blank=True)
    address = EncryptedTextField(_("address"), blank=True)
    # The operator's identifier of the person (user id, consultation id) for the consent check.
    subject_identifier = EncryptedCharField(_("subject identifier"), max_length=128, blank=True)
    # Keyed HMAC of the normalised NIK: serves the 30-day "same person" duplicate check.
    nik_index = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(_("recorded"), default=timezone.now)
    purged_at = models.DateTimeField(_("purged"), null=True, blank=True)

    objects = CaseIdentityQuerySet.as_manager()

    # Recomputed by `rotate_keys` (index field -> source field, kind[, prefix field]).
    BLIND_INDEXES = {"nik_index": ("nik", Kind.NIK)}

    class Meta:
        verbose_name = _("identity (vault)")
        verbose_name_plural = _("identities (vault)")
        ordering = ["-created_at"]
        permissions = [("view_identity", _("Can view the decrypted identity of flagged people"))]
        indexes = [
            # Retention purge: unpurged identities older than the retention period.
            models.Index(fields=["purged_at", "created_at"], name="cases_identity_retention"),
        ]

    def __str__(self) -> str:
        return _("Identity for %(flag)s") % {"flag": self.flag}

    @property
    def is_empty(self) -> bool:
        return not (self.full_name or self.phone or self.nik or self.address)

    def shareable(self) -> dict[str, str]:
        """Return the identity fields that hold a value, as forwarded with consent or a legal basis."""
        values = {"full_name": self.full_name, "phone": self.phone, "nik": self.nik, "address": self.address}
        return {k: v for k, v in values.items() if v}


class DisclosureStage(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")


class Disclosure(models.Model):
    """What one alert about a flag disclosed to one recipient: the payload's field names.

    Two kinds of rows: when the alert is queued, one per recipient authority with what
    it is meant to carry; then, each time a delivery leaves (every send and retry), one
    with what that attempt actually carried, decided at that moment.
    """

    flag = models.ForeignKey(CaseFlag, on_delete=models.PROTECT, related_name="disclosures")
    event_type = models.CharField(_("event"), max_length=40)
    stage = models.CharField(
        _("stage"), max_length=10, choices=DisclosureStage.choices, default=DisclosureStage.QUEUED
    )
    alert_id = models.BigIntegerField(_("alert"), null=True, blank=True)
    # For sent rows: which delivery and which of its attempts carried these fields.
    delivery_id = models.BigIntegerField(_("delivery"), null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(_("attempt"), null=True, blank=True)
    channel_kind = models.CharField(_("channel"), max_length=10, blank=True)
    body_sha256 = models.CharField(_("sha256 of the bytes sent"), max_length=64, blank=True)
    # A snapshot of the recipient authority (its code and name when the alert was written).
    authority_code = models.CharField(_("authority code"), max_length=60, blank=True)
    recipient = models.CharField(_("recipient"), max_length=200)
    fields = models.JSONField(_("fields disclosed"), default=list)
    identity_included = models.BooleanField(_("identity disclosed"), default=False)
    basis = models.CharField(
        _("basis for identity"), max_length=12, choices=IdentityBasis.choices, blank=True
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("disclosure")
        verbose_name_plural = _("disclosures")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        from portal.alerts.models import EventType  # the alert pipeline loads after the cases app

        return f"{dict(EventType.choices).get(self.event_type, self.event_type)} → {self.recipient}"
