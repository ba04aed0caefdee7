"""Users, operator organisations and their memberships."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from fernet_fields import EncryptedCharField

from portal.crypto import Kind, blind_index
from portal.regions import Province


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an e-mail address: operator staff or BSSN staff."""

    email = models.EmailField(_("e-mail address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("BSSN staff"), default=False, help_text=_("Can sign in to the BSSN admin.")
    )
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default="id")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Sector(models.TextChoices):
    ECOMMERCE = "ecommerce", _("E-commerce")
    FINTECH_PAYMENT = "fintech_payment", _("Fintech payment")
    FINTECH_LENDING = "fintech_lending", _("Fintech lending")
    HEALTHTECH = "healthtech", _("Healthtech")
    OTHER = "other", _("Other")


class TimeZone(models.TextChoices):
    WIB = "Asia/Jakarta", _("WIB (UTC+7)")
    WITA = "Asia/Makassar", _("WITA (UTC+8)")
    WIT = "Asia/Jayapura", _("WIT (UTC+9)")


class OperatorQuerySet(models.QuerySet):
    def for_user(self, user) -> "OperatorQuerySet":
        return self.filter(memberships__user=user)


class Operator(models.Model):
    """An electronic-system operator (PSE) organisation: the tenant."""

    name = models.CharField(_("legal name"), max_length=200)
    slug = models.SlugField(_("short name"), max_length=60, unique=True)
    sector = models.CharField(_("sector"), max_length=20, choices=Sector.choices)
    pse_registration_number = models.CharField(_("PSE registration number"), max_length=64, blank=True)
    is_iiv = models.BooleanField(
        _("vital information infrastructure (IIV)"),
        default=False,
        help_text=_("IIV organisations must send an initial incident report within 24 hours."),
    )
    timezone = models.CharField(_("time zone"), max_length=32, choices=TimeZone.choices, default=TimeZone.WIB)
    province = models.CharField(_("province"), max_length=5, choices=Province.choices, default=Province.JK)
    contact_email = models.EmailField(_("contact e-mail"))
    contact_phone = EncryptedCharField(_("contact phone"), max_length=32, blank=True)
    # Blind index of contact_phone: serves "which operator has this phone number?".
    contact_phone_index = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    # The controller's address on consent receipts (ISO/IEC TS 27560, Kantara "address").
    address = models.TextField(
        _("postal address"), blank=True, help_text=_("Shown on consent receipts as the controller's address.")
    )
    require_two_factor = models.BooleanField(_("require two-factor sign-in for members"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OperatorQuerySet.as_manager()

    # Blind indexes recomputed by `rotate_keys`: index field -> (source field, kind).
    BLIND_INDEXES = {"contact_phone_index": ("contact_phone", Kind.PHONE)}

    class Meta:
        verbose_name = _("operator")
        verbose_name_plural = _("operators")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.contact_phone_index = blind_index(Kind.PHONE, self.contact_phone) if self.contact_phone else ""
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("accounts:dashboard", kwargs={"operator_slug": self.slug})

    @property
    def is_healthtech(self) -> bool:
        return self.sector == Sector.HEALTHTECH


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    REPORTER = "reporter", _("Reporter")
    VIEWER = "viewer", _("Viewer")


ALL_ROLES = frozenset(Role)
WRITE_ROLES = frozenset({Role.ADMIN, Role.REPORTER})
ADMIN_ROLES = frozenset({Role.ADMIN})


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "operator"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.operator} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class InvitationQuerySet(models.QuerySet):
    def usable(self) -> "InvitationQuerySet":
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """A single-use, expiring invitation to join an operator. Only the token's hash is stored."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.REPORTER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.operator}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def new_token(cls) -> tuple[str, str]:
        """Return a fresh (token, token_hash) pair; the token goes only into the e-mail."""
        token = secrets.token_urlsafe(32)
        return token, cls.hash_token(token)

    @staticmethod
    def default_expiry():
        return timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS)

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class KeyRotationCheckpoint(models.Model):
    """Progress of `rotate_keys` per model and target keys, so an interrupted run resumes."""

    model_label = models.CharField(max_length=100)
    # Hash of the target keys (never the keys themselves).
    fingerprint = models.CharField(max_length=32)
    # The last primary key done, as text: integer and UUID keys alike ("" = none yet).
    last_pk = models.CharField(max_length=64, default="", blank=True)
    rows_done = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("key rotation checkpoint")
        constraints = [
            models.UniqueConstraint(fields=["model_label", "fingerprint"], name="keyrotation_unique_run"),
        ]

    def __str__(self) -> str:
        return f"{self.model_label} @ {self.last_pk}"

    def mark_finished(self) -> None:
        self.finished_at = timezone.now()
        self.save(update_fields=["finished_at"])


class PasswordResetRequest(models.Model):
    """An address someone asked a password-reset link for, until a worker answers it.

    The reset form only writes this row and enqueues its id, whether or not an account
    has the address, so the page answers in the same time either way; the worker looks
    the account up and sends the link. The address is encrypted and the row is deleted
    once answered.
    """

    email = EncryptedCharField(_("e-mail address"), max_length=254)
    language = models.CharField(max_length=10)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("password reset request")

    def __str__(self) -> str:
        return f"password reset request {self.pk}"
