"""Security incidents: the incident, its staged reports, deadlines, conversation and evidence.

Rules live in the `incidents.services` package (filing, lifecycle, deadlines, events); the models hold
fields, constraints, tenant-scoped querysets and small read-only helpers.
"""

import os
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from portal.deadlines import DeadlineQuerySet

from .observables import MAX_VALUE_LENGTH as MAX_OBSERVABLE_LENGTH
from .observables import ObservableKind


class Category(models.TextChoices):
    DEFACEMENT = "defacement", _("Defacement")
    PHISHING = "phishing", _("Phishing")
    MALWARE = "malware", _("Malware")
    RANSOMWARE = "ransomware", _("Ransomware")
    DDOS = "ddos", _("DDoS")
    UNAUTHORISED_ACCESS = "unauthorised_access", _("Unauthorised access")
    DATA_LEAK = "data_leak", _("Personal-data leak")
    DATA_ALTERATION = "data_alteration", _("Data alteration or sabotage")
    ACCOUNT_TAKEOVER = "account_takeover", _("Account takeover")
    OTHER = "other", _("Other")


class Severity(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


HIGH_SEVERITIES = frozenset({Severity.HIGH, Severity.CRITICAL})


class TLP(models.TextChoices):
    CLEAR = "clear", "TLP:CLEAR"
    GREEN = "green", "TLP:GREEN"
    AMBER = "amber", "TLP:AMBER"
    AMBER_STRICT = "amber+strict", "TLP:AMBER+STRICT"
    RED = "red", "TLP:RED"


class Impact(models.TextChoices):
    NONE = "none", _("None")
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class PersonalDataCategory(models.TextChoices):
    IDENTITY = "identity", _("Identity (name, NIK, date of birth)")
    CONTACT = "contact", _("Contact details (e-mail, phone, address)")
    CREDENTIALS = "credentials", _("Account credentials")
    TRANSACTIONS = "transactions", _("Transactions and usage")
    LOCATION = "location", _("Location")
    OTHER = "other", _("Other personal data")


class SpecificDataCategory(models.TextChoices):
    """Specific personal data (UU 27/2022 Pasal 4(2))."""

    HEALTH = "health", _("Health data")
    BIOMETRIC = "biometric", _("Biometric data")
    GENETIC = "genetic", _("Genetic data")
    CRIMINAL = "criminal", _("Criminal records")
    CHILDREN = "children", _("Children's data")
    FINANCIAL = "financial", _("Personal financial data")
    OTHER = "other", _("Other specific data")


class Status(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    TRIAGE = "triage", _("In triage")
    AWAITING_OPERATOR = "awaiting_operator", _("Awaiting operator")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    REJECTED = "rejected", _("Rejected")
    DUPLICATE = "duplicate", _("Duplicate")


CLOSING_STATUSES = frozenset({Status.CLOSED, Status.REJECTED, Status.DUPLICATE})
# Submitted and not yet resolved or closed: BSSN's open workload.
OPEN_STATUSES = (Status.SUBMITTED, Status.TRIAGE, Status.AWAITING_OPERATOR, Status.IN_PROGRESS)


class ReferenceCounter(models.Model):
    """Head row of one year's reference sequence: its row lock serialises numbering."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("reference counter")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class IncidentQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "IncidentQuerySet":
        return self.filter(operator=operator)

    def reported(self) -> "IncidentQuerySet":
        """Return incidents BSSN can see: everything but the operator's drafts."""
        return self.exclude(status=Status.DRAFT)


class Incident(models.Model):
    """A security incident reported by an operator (Peraturan BSSN 1/2024, Pasal 15(4))."""

    reference = models.CharField(_("reference"), max_length=20, unique=True, editable=False)
    operator = models.ForeignKey(
        "accounts.Operator", on_delete=models.PROTECT, related_name="incidents", verbose_name=_("operator")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    title = models.CharField(
        _("title"),
        max_length=200,
        help_text=_("A short summary, for example “Ransomware on the billing servers”."),
    )
    category = models.CharField(_("category"), max_length=24, choices=Category.choices)
    severity = models.CharField(
        _("severity (operator's assessment)"), max_length=10, choices=Severity.choices, blank=True
    )
    bssn_severity = models.CharField(
        _("severity (BSSN's assessment)"), max_length=10, choices=Severity.choices, blank=True
    )
    tlp = models.CharField(_("TLP"), max_length=12, choices=TLP.choices, default=TLP.AMBER)

    # Contacts of the reporting organisation (Pasal 15(4): reporter contact).
    reporter_name = models.CharField(_("reporter name"), max_length=150, blank=True)
    reporter_email = models.EmailField(_("reporter e-mail"), blank=True)
    reporter_phone = models.CharField(_("reporter phone"), max_length=32, blank=True)
    technical_contact_name = models.CharField(_("technical contact name"), max_length=150, blank=True)
    technical_contact_email = models.EmailField(_("technical contact e-mail"), blank=True)
    technical_contact_phone = models.CharField(_("technical contact phone"), max_length=32, blank=True)

    description = models.TextField(_("description"), blank=True)
    chronology = models.TextField(_("chronology"), blank=True, help_text=_("What happened when, in order."))
    impact_confidentiality = models.CharField(
        _("impact on confidentiality"), max_length=8, choices=Impact.choices, blank=True
    )
    impact_integrity = models.CharField(
        _("impact on integrity"), max_length=8, choices=Impact.choices, blank=True
    )
    impact_availability = models.CharField(
        _("impact on availability"), max_length=8, choices=Impact.choices, blank=True
    )
    affected_systems = models.TextField(_("systems affected"), blank=True)
    affected_services = models.TextField(_("services affected"), blank=True)
    users_affected = models.PositiveIntegerField(_("users affected"), null=True, blank=True)

    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)
    detected_at = models.DateTimeField(_("detected at"), null=True, blank=True)
    aware_at = models.DateTimeField(
        _("became known to the operator at"),
        null=True,
        blank=True,
        help_text=_("The legal clock: reporting deadlines run from this moment."),
    )

    personal_data_involved = models.BooleanField(_("personal data involved"), default=False)
    personal_data_categories = models.JSONField(_("personal data categories"), default=list, blank=True)
    specific_data_categories = models.JSONField(_("specific personal data"), default=list, blank=True)
    data_subjects_count = models.PositiveIntegerField(_("number of data subjects"), null=True, blank=True)
    actions_taken = models.TextField(_("actions taken"), blank=True)

    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    outcome = models.TextField(
        _("outcome"), blank=True, help_text=_("BSSN's conclusion, shown to the operator.")
    )
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="duplicates",
        verbose_name=_("duplicate of"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_incidents",
        limit_choices_to={"is_staff": True},
        verbose_name=_("BSSN assignee"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    # The earliest due time of the incident's open obligations, kept by
    # services.refresh_next_due(): lists sort and filter on it without a subquery per row.
    next_due_at = models.DateTimeField(_("next deadline"), null=True, blank=True, editable=False)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("triage_incident", _("Can triage, assign, ask for information and resolve incidents")),
            ("close_incident", _("Can close, reject or mark incidents as duplicates")),
            ("reopen_incident", _("Can reopen incidents")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="duplicate") | Q(duplicate_of__isnull=False),
                name="incident_duplicate_has_original",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(submitted_at__isnull=False),
                name="incident_submitted_has_time",
            ),
        ]
        indexes = [
            # The operator's incident list: WHERE operator_id = ? [AND status, category, severity]
            # ORDER BY created_at DESC; the filtered columns are in the index, so a filter that
            # skips most of a large organisation's incidents reads no table row it skips.
            models.Index(
                fields=["operator", "-created_at", "-id", "status", "category", "severity"],
                name="incident_operator_list",
            ),
            # The BSSN changelist: ORDER BY submitted_at DESC, id DESC, optionally by status.
            models.Index(fields=["-submitted_at", "-id"], name="incident_submitted"),
            # ... filtered by status, and sorted by it either way (newest first within a status).
            models.Index(fields=["status", "-submitted_at", "-id"], name="incident_status"),
            models.Index(fields=["-status", "-submitted_at", "-id"], name="incident_status_desc"),
            # The "overdue" filters (WHERE next_due_at <= now) and the changelist sorted by the
            # next deadline, soonest first (descending: migration 0009, PostgreSQL only).
            models.Index(fields=["next_due_at", "-submitted_at", "-id"], name="incident_deadline"),
            # The dashboard's open incidents by severity and age, counted live: the open few
            # of a million, read from the index alone (every column the count needs is in it).
            models.Index(
                fields=["submitted_at", "severity", "bssn_severity", "operator"],
                condition=Q(status__in=OPEN_STATUSES),
                name="incident_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse(
            "incidents:detail", kwargs={"operator_slug": self.operator.slug, "reference": self.reference}
        )

    @property
    def is_draft(self) -> bool:
        return self.status == Status.DRAFT

    @property
    def is_overdue(self) -> bool:
        """Return whether an open obligation is past its due time."""
        return self.next_due_at is not None and self.next_due_at <= timezone.now()

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSING_STATUSES

    @property
    def effective_severity(self) -> str:
        """Return BSSN's assessment where there is one, else the operator's."""
        return self.bssn_severity or self.severity

    def personal_data_category_labels(self) -> list[str]:
        labels = dict(PersonalDataCategory.choices)
        return [str(labels.get(c, c)) for c in self.personal_data_categories]

    def specific_data_category_labels(self) -> list[str]:
        labels = dict(SpecificDataCategory.choices)
        return [str(labels.get(c, c)) for c in self.specific_data_categories]


class ReportKind(models.TextChoices):
    INITIAL = "initial", _("Initial report")
    UPDATE = "update", _("Update")
    FINAL = "final", _("Final report")


class IncidentReport(models.Model):
    """One staged report. A draft (submitted_at empty) is editable; a submitted one is frozen.

    `data` holds the incident's operator-editable fields as the report states them;
    submitting applies them to the incident, so the incident shows the latest state
    and the reports are its history.
    """

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(_("kind"), max_length=10, choices=ReportKind.choices)
    number = models.PositiveIntegerField(_("number"), null=True, blank=True)
    summary = models.TextField(_("what changed"), blank=True)
    data = models.JSONField(_("reported content"), default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("submitted by"),
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        ordering = ["incident", "number", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "number"], name="report_unique_number"),
            # At most one open draft per incident.
            models.UniqueConstraint(
                fields=["incident"], condition=Q(submitted_at__isnull=True), name="report_one_draft"
            ),
            models.UniqueConstraint(
                fields=["incident"],
                condition=Q(kind="final") & Q(submitted_at__isnull=False),
                name="report_one_final",
            ),
        ]

    def __str__(self) -> str:
        label = self.get_kind_display()
        return f"{label} #{self.number}" if self.number else f"{label} ({_('draft')})"

    def save(self, *args, **kwargs) -> None:
        # Submitted reports are immutable versions: refuse to rewrite one.
        if self.pk and IncidentReport.objects.filter(pk=self.pk, submitted_at__isnull=False).exists():
            raise ValidationError(_("A submitted report cannot be changed."))
        super().save(*args, **kwargs)

    @property
    def is_draft(self) -> bool:
        return self.submitted_at is None


# Reasons the portal writes itself: stored in English, shown in the reader's language.
REASON_ANSWERED = gettext_noop("The operator answered the request for information.")
REASON_REQUESTED = gettext_noop("BSSN asked for more information.")
SYSTEM_REASONS = frozenset({REASON_ANSWERED, REASON_REQUESTED})


class StatusChange(models.Model):
    """One step of the lifecycle: who moved the incident, when, from what, to what and why."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(_("from"), max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=20, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    by_bssn = models.BooleanField(_("by BSSN"), default=False)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status history")
        ordering = ["incident", "created_at", "id"]

    def __str__(self) -> str:
        return self.change_display

    @property
    def change_display(self) -> str:
        """Return the step with its statuses' labels, e.g. "(new) → Submitted", in the reader's language."""
        start = self.get_from_status_display() if self.from_status else gettext("(new)")
        return f"{start} → {self.get_to_status_display()}"

    @property
    def reason_display(self) -> str:
        return gettext(self.reason) if self.reason in SYSTEM_REASONS else self.reason


class CommentQuerySet(models.QuerySet):
    def visible_to_operator(self) -> "CommentQuerySet":
        """Return the conversation without BSSN's internal notes (how operator code reads comments)."""
        return self.filter(is_internal=False)


class CommentKind(models.TextChoices):
    COMMENT = "comment", _("Comment")
    REQUEST = "request", _("Request for information")
    ANSWER = "answer", _("Answer")
    NOTE = "note", _("Internal note")


class Comment(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("author")
    )
    by_bssn = models.BooleanField(_("by BSSN"), default=False)
    kind = models.CharField(
        _("kind"), max_length=10, choices=CommentKind.choices, default=CommentKind.COMMENT
    )
    is_internal = models.BooleanField(_("internal note"), default=False)
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    objects = CommentQuerySet.as_manager()

    class Meta:
        verbose_name = _("comment")
        verbose_name_plural = _("conversation")
        ordering = ["incident", "created_at", "id"]
        permissions = [("add_internal_note", _("Can add BSSN internal notes"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_internal=False) | Q(by_bssn=True, kind="note"),
                name="comment_internal_is_bssn_note",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


@deconstructible
class PrivateStorage(FileSystemStorage):
    """File storage under settings.PRIVATE_STORAGE_ROOT, read when used (never a public URL)."""

    def __init__(self) -> None:
        super().__init__(base_url=None)

    @property
    def base_location(self):
        return str(settings.PRIVATE_STORAGE_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("Private files have no public URL; use the access-checked download view.")


private_storage = PrivateStorage()


def _evidence_path(instance: "Evidence", filename: str) -> str:
    # The stored name is random: the original name is kept in a column, never in the path.
    return f"evidence/{timezone.now():%Y/%m}/{instance.sha256[:2]}/{os.urandom(16).hex()}"


class Evidence(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="evidence")
    file = models.FileField(_("file"), storage=private_storage, upload_to=_evidence_path, max_length=200)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField("SHA-256", max_length=64)
    description = models.CharField(_("description"), max_length=300, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    by_bssn = models.BooleanField(default=False)
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    # Set when the retention period after closing removed the file; the row (name,
    # size, sha256) stays as the record that it existed.
    purged_at = models.DateTimeField(_("deleted after retention"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("evidence file")
        verbose_name_plural = _("evidence")
        ordering = ["incident", "uploaded_at", "id"]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse(
            "incidents:evidence_download",
            kwargs={
                "operator_slug": self.incident.operator.slug,
                "reference": self.incident.reference,
                "evidence_id": self.pk,
            },
        )


class AppliesWhen(models.TextChoices):
    ALWAYS = "always", _("Every incident")
    IIV = "iiv", _("The organisation is IIV")
    PERSONAL_DATA = "personal_data", _("Personal data is involved")


class Anchor(models.TextChoices):
    """The moment a deadline is counted from: each rule names the one its legal source uses."""

    DETECTED_AT = "detected_at", _("When the incident was detected")
    AWARE_AT = "aware_at", _("When the operator became aware")
    INITIAL_REPORT = "initial_report", _("When the initial report was submitted")


class MetBy(models.TextChoices):
    INITIAL_REPORT = "initial_report", _("Submitting the initial report")
    FINAL_REPORT = "final_report", _("Submitting the final report")
    OPERATOR_CONFIRMATION = "operator_confirmation", _("The operator confirming the notice was given")


# Names of the rules seeded by migration 0002, so the catalogue can translate them.
SEEDED_RULE_NAMES = frozenset(
    {
        gettext_noop("IIV initial report (24 hours)"),
        gettext_noop("Personal-data failure notice to data subjects and the PDP authority (72 hours)"),
        gettext_noop("Final report"),
    }
)
# Legal sources seeded by incidents/seed.py that read differently in each language
# (statute citations are Indonesian names and stay as written).
SEEDED_LEGAL_SOURCES = frozenset({gettext_noop("BSSN internal service level (not a statutory deadline)")})


class DeadlineRule(models.Model):
    """A reporting deadline as data: a supervisor corrects it in the admin, no deploy needed."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    applies_when = models.CharField(_("applies when"), max_length=20, choices=AppliesWhen.choices)
    anchor = models.CharField(_("counted from"), max_length=20, choices=Anchor.choices)
    period_hours = models.PositiveIntegerField(_("period (hours)"))
    met_by = models.CharField(_("met by"), max_length=24, choices=MetBy.choices)
    remind_before_hours = models.PositiveIntegerField(
        _("remind before (hours)"),
        default=6,
        help_text=_("A reminder goes out this long before the due time."),
    )
    legal_source = models.TextField(
        _("legal source"),
        blank=True,
        help_text=_("The regulation and article the deadline comes from, shown beside every deadline."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("deadline rule")
        verbose_name_plural = _("deadline rules")
        ordering = ["period_hours", "code"]

    def __str__(self) -> str:
        return self.name_display

    @property
    def name_display(self) -> str:
        """Return the name in the reader's language when it is one of the seeded rules' names."""
        return gettext(self.name) if self.name in SEEDED_RULE_NAMES else self.name

    @property
    def legal_source_display(self) -> str:
        """Return the legal source in the reader's language when it is one the seed wrote."""
        return gettext(self.legal_source) if self.legal_source in SEEDED_LEGAL_SOURCES else self.legal_source

    @property
    def legal_source_lazy(self):
        """Return the legal source translated when rendered (for texts written in several languages)."""
        if self.legal_source in SEEDED_LEGAL_SOURCES:
            return _(self.legal_source)
        return self.legal_source

    @property
    def period(self) -> timedelta:
        return timedelta(hours=self.period_hours)

    @property
    def remind_before(self) -> timedelta:
        return timedelta(hours=self.remind_before_hours)


class ObligationQuerySet(DeadlineQuerySet):
    def open(self) -> "ObligationQuerySet":
        return self.filter(met_at__isnull=True, waived_at__isnull=True)


class Obligation(models.Model):
    """One deadline an incident must meet: due, met, or waived by a supervisor (with why)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="obligations")
    rule = models.ForeignKey(
        DeadlineRule, on_delete=models.PROTECT, related_name="obligations", verbose_name=_("rule")
    )
    due_at = models.DateTimeField(_("due"))
    remind_at = models.DateTimeField(_("reminder at"))
    met_at = models.DateTimeField(_("met at"), null=True, blank=True)
    met_note = models.CharField(_("note"), max_length=300, blank=True)
    waived_at = models.DateTimeField(_("waived at"), null=True, blank=True)
    waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("waived by"),
    )
    waiver_reason = models.TextField(_("why waived"), blank=True)
    # Operator edits only ever move an open deadline earlier; only a BSSN supervisor
    # moves it later, with a reason (the latest extension is kept here, each one in
    # the audit log). An extended deadline no longer follows the operator's facts.
    extended_at = models.DateTimeField(_("extended at"), null=True, blank=True)
    extended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("extended by"),
    )
    extension_reason = models.TextField(_("why extended"), blank=True)
    # Sent markers: set by a conditional UPDATE before sending, so each reminder goes out once.
    reminder_sent_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    overdue_sent_at = models.DateTimeField(_("overdue notice sent at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ObligationQuerySet.as_manager()

    class Meta:
        verbose_name = _("deadline")
        verbose_name_plural = _("deadlines")
        ordering = ["incident", "due_at"]
        permissions = [
            ("waive_obligation", _("Can waive reporting deadlines")),
            ("extend_obligation", _("Can extend reporting deadlines")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["incident", "rule"], name="obligation_unique_rule"),
            models.CheckConstraint(
                condition=Q(waived_at__isnull=True) | (Q(waived_by__isnull=False) & ~Q(waiver_reason="")),
                name="obligation_waiver_has_who_and_why",
            ),
            models.CheckConstraint(
                condition=Q(extended_at__isnull=True)
                | (Q(extended_by__isnull=False) & ~Q(extension_reason="")),
                name="obligation_extension_has_who_and_why",
            ),
        ]
        indexes = [
            # The reminder sweep and the overdue filter: open obligations by due time.
            models.Index(
                fields=["due_at"],
                condition=Q(met_at__isnull=True, waived_at__isnull=True),
                name="obligation_open_due",
            ),
            models.Index(
                fields=["remind_at"],
                condition=Q(met_at__isnull=True, waived_at__isnull=True, reminder_sent_at__isnull=True),
                name="obligation_reminder_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.incident.reference})"

    @property
    def is_open(self) -> bool:
        return self.met_at is None and self.waived_at is None

    @property
    def legal_source(self) -> str:
        """Return the rule's legal source as the reader should see it beside the due time."""
        return self.rule.legal_source_display

    def state(self, now=None) -> str:
        """Return one of met_on_time, met_late, waived, overdue, pending."""
        now = now or timezone.now()
        if self.waived_at:
            return "waived"
        if self.met_at:
            return "met_on_time" if self.met_at <= self.due_at else "met_late"
        return "overdue" if self.due_at <= now else "pending"


class ObservableQuerySet(models.QuerySet):
    def for_operator(self, operator) -> "ObservableQuerySet":
        return self.filter(operator=operator)

    def shareable(self) -> "ObservableQuerySet":
        """Return observables whose own TLP lets their existence be told to other organisations."""
        return self.filter(tlp__in=[TLP.CLEAR, TLP.GREEN])


class Observable(models.Model):
    """An indicator of compromise attached to an incident, normalised so that reports correlate."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="observables", verbose_name=_("incident")
    )
    # Copied from the incident: correlation counts operators without joining the incident table.
    operator = models.ForeignKey(
        "accounts.Operator",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("operator"),
        editable=False,
    )
    kind = models.CharField(_("kind"), max_length=8, choices=ObservableKind.choices)
    value = models.CharField(_("value"), max_length=MAX_OBSERVABLE_LENGTH)
    tlp = models.CharField(_("TLP"), max_length=12, choices=TLP.choices, default=TLP.AMBER)
    note = models.CharField(_("note"), max_length=300, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("added by"),
    )
    added_by_bssn = models.BooleanField(_("added by BSSN"), default=False, editable=False)
    created_at = models.DateTimeField(_("added at"), default=timezone.now, editable=False)

    objects = ObservableQuerySet.as_manager()

    class Meta:
        verbose_name = _("observable")
        verbose_name_plural = _("observables")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "kind", "value"], name="observable_unique_per_incident"
            ),
        ]
        indexes = [
            # Correlation: "which incidents share this (kind, value)?", newest first, and the
            # 30-day "seen at two or more operators" list, from the index alone.
            models.Index(fields=["kind", "value", "created_at", "operator"], name="observable_correlation"),
            # The admin list, newest first, read a page at a time.
            models.Index(fields=["-created_at", "-id"], name="observable_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


# --- The dashboard's summary tables (incidents/summaries.py fills them) -------------------------
#
# Counts are kept per day in the project's zone (WIB), so any period of whole days adds them
# up exactly; percentiles per month or day. Each table holds every sector/province
# combination, "*" standing for "all": a filter reads only its own rows, and from the
# index alone (each index holds every column its panel reads).


class DashboardRefresh(models.Model):
    """When the summary tables were last refreshed, and how large the data was then (one row)."""

    refreshed_at = models.DateTimeField(null=True)  # None until the first refresh
    seconds = models.FloatField(default=0)
    incidents = models.PositiveIntegerField(default=0)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"dashboard summaries as of {self.refreshed_at:%Y-%m-%d %H:%M}"


class SummaryRow(models.Model):
    sector = models.CharField(max_length=20, blank=True)
    province = models.CharField(max_length=5, blank=True)

    class Meta:
        abstract = True
        default_permissions = ()

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.sector}/{self.province}"


class IncidentDaySummary(SummaryRow):
    """Reported incidents per day of submission, sector, province and category."""

    day = models.DateField()
    category = models.CharField(max_length=24)
    incidents = models.PositiveIntegerField()

    class Meta(SummaryRow.Meta):
        indexes = [
            models.Index(
                fields=["sector", "province", "day", "category", "incidents"], name="summary_incident_day"
            )
        ]


class DeadlineDaySummary(SummaryRow):
    """Deadlines per due day, sector, province and rule, by outcome at the time of the refresh."""

    day = models.DateField()
    rule_code = models.CharField(max_length=40)
    on_time = models.PositiveIntegerField()
    late = models.PositiveIntegerField()
    missed = models.PositiveIntegerField()
    waived = models.PositiveIntegerField()

    class Meta(SummaryRow.Meta):
        indexes = [
            models.Index(
                fields=["sector", "province", "day", "rule_code", "on_time", "late", "missed", "waived"],
                name="summary_deadline_day",
            )
        ]


class DurationMonthSummary(SummaryRow):
    """Time to triage and to close (hours) of the incidents submitted in a month."""

    month = models.DateField()
    triage_p50 = models.FloatField(null=True)
    triage_p90 = models.FloatField(null=True)
    close_p50 = models.FloatField(null=True)
    close_p90 = models.FloatField(null=True)

    class Meta(SummaryRow.Meta):
        indexes = [models.Index(fields=["sector", "province", "month"], name="summary_duration_filter")]


class CaseDaySummary(SummaryRow):
    """Active, de-duplicated suspected-case flags per onset day, the flag's province, sector and class."""

    day = models.DateField()
    classification = models.CharField(max_length=12)
    flags = models.PositiveIntegerField()

    class Meta(SummaryRow.Meta):
        indexes = [
            models.Index(
                fields=["sector", "province", "day", "classification", "flags"], name="summary_case_day"
            )
        ]


class DeliveryDaySummary(SummaryRow):
    """Alert deliveries per day, the alert's sector and province, and outcome; dead letters by authority."""

    day = models.DateField()
    status = models.CharField(max_length=10)
    authority = models.ForeignKey(
        "alerts.Authority", on_delete=models.CASCADE, null=True, related_name="+", db_index=False
    )
    deliveries = models.PositiveIntegerField()

    class Meta(SummaryRow.Meta):
        indexes = [
            models.Index(
                fields=["sector", "province", "day", "status", "authority", "deliveries"],
                name="summary_delivery_day",
            )
        ]


class DeliveryLatencyDaySummary(SummaryRow):
    """The 95th percentile from an alert's commit to its delivery, per day."""

    day = models.DateField()
    p95_seconds = models.FloatField()

    class Meta(SummaryRow.Meta):
        indexes = [models.Index(fields=["sector", "province", "day"], name="summary_latency_filter")]


class OperatorMonthSummary(models.Model):
    """An organisation's submitted incidents per month and its deadlines per due month by outcome.

    Months are the organisation's own (WIB, WITA or WIT), as its dashboard shows them; a
    row holds either the incidents or the deadlines of its month (a reader adds them up).
    """

    operator = models.ForeignKey(
        "accounts.Operator", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    month = models.DateField()
    incidents = models.PositiveIntegerField(db_default=0)
    on_time = models.PositiveIntegerField(db_default=0)
    late = models.PositiveIntegerField(db_default=0)
    missed = models.PositiveIntegerField(db_default=0)
    waived = models.PositiveIntegerField(db_default=0)

    class Meta:
        default_permissions = ()
        indexes = [
            models.Index(
                fields=["operator", "month", "incidents", "on_time", "late", "missed", "waived"],
                name="summary_operator_month",
            )
        ]

    def __str__(self) -> str:
        return f"{self.operator_id} {self.month:%Y-%m}"
