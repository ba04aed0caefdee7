"""The BSSN admin for incidents: triage list, change page with the whole case, deadline rules.

Operator-written content is read-only here; BSSN writes only its own assessment and
moves the case through services (transitions, messages, waivers), so every change is
guarded by role, recorded in the status history and the audit log.
"""

import csv
import re

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from consent.models import PROCESSING_STOP_SOURCE
from consent.withdrawals import processing_stop_compliance
from portal.accounts.models import Operator, Sector, User
from portal.admin_counts import CappedCountAdminMixin, CappedCountChangeList, CappedCountPaginator
from portal.audit.services import record
from portal.spreadsheets import csv_cell
from portal.timefmt import format_zoned

from . import services
from .forms import (
    AssignForm,
    BssnMessageForm,
    ExtendDeadlineForm,
    IncidentAssessmentForm,
    TransitionForm,
    WaiveForm,
)
from .models import (
    Comment,
    DeadlineRule,
    Evidence,
    Incident,
    IncidentReport,
    Obligation,
    Severity,
    Status,
    StatusChange,
)
from .views import serve_evidence


class OverdueFilter(admin.SimpleListFilter):
    title = _("deadlines")
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("overdue", _("Overdue")), ("open", _("Open, not overdue")), ("none", _("None open"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.filter(next_due_at__lte=now)
        if self.value() == "open":
            return queryset.filter(next_due_at__gt=now)
        if self.value() == "none":
            return queryset.filter(next_due_at__isnull=True)
        return queryset


class AssigneeFilter(admin.SimpleListFilter):
    """Filter by BSSN assignee; the choices are staff accounts, not a scan of every incident."""

    title = _("BSSN assignee")
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        staff = User.objects.filter(is_staff=True, is_active=True).order_by("email")
        return [("none", _("Nobody")), *[(str(u.pk), u.get_full_name()) for u in staff]]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        value = self.value() or ""
        if value.isascii() and value.isdigit() and len(value) < 16:  # "²".isdigit(), and bigint's range
            return queryset.filter(assignee_id=int(value))
        return queryset


class SeverityFilter(admin.SimpleListFilter):
    """Filter on BSSN's assessment where it exists, else the operator's."""

    title = _("severity")
    parameter_name = "severity"

    def lookups(self, request, model_admin):
        return Severity.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value:
            return queryset.filter(Q(bssn_severity=value) | Q(bssn_severity="", severity=value))
        return queryset


class IdsFirstPaginator(CappedCountPaginator):
    """Fetch a page's ids first, then only those rows; count at most 10,000 (portal/admin_counts.py).

    On PostgreSQL the ids come from an index-only scan of the covering triage index
    (migration 0004), so a filter that matches few of many incidents never reads the
    table rows it skips; the page's 25 rows are then read by primary key.
    """

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        rows = self.object_list.in_bulk(ids)
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


class TriageChangeList(CappedCountChangeList):
    def get_results(self, request):
        super().get_results(request)
        # A single page is read the same two-step way, so the query count never depends on the rows.
        if not isinstance(self.result_list, list) and not (self.show_all and self.can_show_all):
            self.result_list = self.paginator.page(1).object_list


class DeadlineOrder(F):
    """Order by a time with the rows that have none last, both ways (indexes incident_deadline*)."""

    def asc(self, **kwargs):
        return super().asc(nulls_last=True)

    def desc(self, **kwargs):
        return super().desc(nulls_last=True)


REFERENCE_RE = re.compile(r"^INS-\d{4}-\d{6,}$")


def zoned_display(field_name: str, description):
    """Return an admin column showing a stored time in WIB with its zone label."""

    @admin.display(description=description, ordering=field_name)
    def show(self, obj):
        return format_zoned(getattr(obj, field_name), fmt="SHORT_DATETIME_FORMAT")

    show.__name__ = f"{field_name}_zoned"
    return show


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    view_on_site = False  # operator pages are not for staff
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReportInline(ReadOnlyInline):
    model = IncidentReport
    verbose_name_plural = _("reports (immutable versions)")
    fields = ["number", "kind", "submitted_at_zoned", "submitted_by", "summary", "content"]
    readonly_fields = fields
    classes = ["collapse"]
    submitted_at_zoned = zoned_display("submitted_at", _("submitted"))

    def get_queryset(self, request):
        return super().get_queryset(request).filter(submitted_at__isnull=False).select_related("submitted_by")

    @admin.display(description=_("content"))
    def content(self, obj):
        rows = [(k, v) for k, v in obj.data.items() if v not in (None, "", [])]
        return format_html(
            "<details><summary>{}</summary><dl class='incident-snapshot'>{}</dl></details>",
            gettext("Show"),
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows),
        )


class StatusChangeInline(ReadOnlyInline):
    model = StatusChange
    verbose_name_plural = _("status history")
    fields = ["created_at_zoned", "change", "actor", "reason_display"]
    readonly_fields = fields
    created_at_zoned = zoned_display("created_at", _("when"))

    @admin.display(description=_("change"))
    def change(self, obj):
        return obj.change_display

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("reason"))
    def reason_display(self, obj):
        return obj.reason_display


class CommentInline(ReadOnlyInline):
    model = Comment
    verbose_name_plural = _("conversation (internal notes marked)")
    fields = ["created_at_zoned", "author", "kind", "visibility", "body"]
    readonly_fields = fields
    created_at_zoned = zoned_display("created_at", _("when"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    @admin.display(description=_("visible to"))
    def visibility(self, obj):
        if obj.is_internal:
            return format_html('<span class="incident-internal">{}</span>', gettext("BSSN only"))
        return gettext("Operator and BSSN")


class EvidenceInline(ReadOnlyInline):
    model = Evidence
    fields = ["download", "content_type", "size", "sha256", "description", "uploaded_by", "uploaded_at_zoned"]
    readonly_fields = fields
    classes = ["collapse"]
    uploaded_at_zoned = zoned_display("uploaded_at", _("uploaded"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by")

    @admin.display(description=_("file"))
    def download(self, obj):
        url = reverse("admin:incidents_incident_evidence", args=[obj.incident_id, obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.original_name)


class ObligationInline(ReadOnlyInline):
    model = Obligation
    fields = [
        "rule_name",
        "due_at_zoned",
        "state",
        "met_at_zoned",
        "waived_by",
        "waiver_reason",
        "reminder_sent_at_zoned",
        "overdue_sent_at_zoned",
    ]
    readonly_fields = fields
    due_at_zoned = zoned_display("due_at", _("due"))
    met_at_zoned = zoned_display("met_at", _("met at"))
    reminder_sent_at_zoned = zoned_display("reminder_sent_at", _("reminder sent"))
    overdue_sent_at_zoned = zoned_display("overdue_sent_at", _("overdue notice sent"))

    @admin.display(description=_("rule"))
    def rule_name(self, obj):
        return obj.rule.name_display

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rule", "waived_by")

    @admin.display(description=_("state"))
    def state(self, obj):
        return _state_badge(obj.state())


STATE_LABELS = {
    "met_on_time": _("Met on time"),
    "met_late": _("Met late"),
    "waived": _("Waived"),
    "overdue": _("Overdue"),
    "pending": _("Pending"),
}


def _state_badge(state: str):
    return format_html(
        '<span class="incident-deadline incident-deadline--{}">{}</span>', state, STATE_LABELS[state]
    )


@admin.register(Incident)
class IncidentAdmin(CappedCountAdminMixin, admin.ModelAdmin):
    # Seven columns that fit 1280 px; sector, category and IIV are filters (IIV also marked here).
    list_display = [
        "reference",
        "title",
        "operator_display",
        "status",
        "severity_display",
        "assignee_display",
        "deadline",
    ]
    list_display_links = ["reference", "title"]
    list_filter = [
        "status",
        SeverityFilter,
        ("operator__sector", admin.ChoicesFieldListFilter),
        "category",
        ("operator__is_iiv", admin.BooleanFieldListFilter),
        "personal_data_involved",
        OverdueFilter,
        AssigneeFilter,
    ]
    search_fields = ["reference", "operator__name"]  # see get_search_results
    list_select_related = ["operator", "assignee"]
    list_per_page = 25  # a triage screen; also keeps the p95 under 250 ms (bench_incidents)
    paginator = IdsFirstPaginator
    view_on_site = False  # the operator's page is a 404 for staff
    ordering = ["-submitted_at", "-id"]
    # Columns an index orders at a million incidents (bench_dashboard); organisations are
    # searched and filtered rather than sorted.
    sortable_by = ["reference", "status", "deadline"]
    actions = ["assign_to_me", "assign_to", "change_status_action", "export_csv"]
    inlines = [ReportInline, ObligationInline, CommentInline, EvidenceInline, StatusChangeInline]
    fieldsets = [
        (
            _("BSSN assessment"),
            {
                "fields": [
                    "reference",
                    "status",
                    "category",
                    "bssn_severity",
                    "tlp",
                    "assignee",
                    "outcome",
                    "duplicate_of",
                ]
            },
        ),
        (
            _("Organisation and contacts"),
            {
                "classes": ["collapse"],
                "fields": [
                    "operator",
                    "reporter_name",
                    "reporter_email",
                    "reporter_phone",
                    "technical_contact_name",
                    "technical_contact_email",
                    "technical_contact_phone",
                ],
            },
        ),
        (
            _("As reported"),
            {
                "classes": ["collapse"],
                "fields": [
                    "title",
                    "severity",
                    "description",
                    "chronology",
                    "impact_confidentiality",
                    "impact_integrity",
                    "impact_availability",
                    "affected_systems",
                    "affected_services",
                    "users_affected",
                    "actions_taken",
                ],
            },
        ),
        (
            _("Times"),
            {
                "classes": ["collapse"],
                "fields": [
                    "occurred_at_zoned",
                    "detected_at_zoned",
                    "aware_at_zoned",
                    "submitted_at_zoned",
                    "closed_at_zoned",
                ],
            },
        ),
        (
            _("Personal data"),
            {
                "classes": ["collapse"],
                "fields": [
                    "personal_data_involved",
                    "personal_data_categories_display",
                    "specific_data_categories_display",
                    "data_subjects_count",
                ],
            },
        ),
    ]
    # BSSN edits only its assessment; the rest is the operator's account, changed by their reports.
    editable_fields = ("category", "bssn_severity", "tlp", "assignee", "outcome", "duplicate_of")
    form = IncidentAssessmentForm
    change_form_template = "admin/incidents/incident/change_form.html"
    change_list_template = "admin/incidents/incident/change_list.html"

    class Media:
        css = {"all": ["incidents/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).reported()

    def get_readonly_fields(self, request, obj=None):
        every = [f for fs in self.fieldsets for f in fs[1]["fields"]]
        return [f for f in every if f not in self.editable_fields]

    def get_changelist(self, request, **kwargs):
        return TriageChangeList

    def get_search_results(self, request, queryset, search_term):
        """Search by a whole reference, else by organisation name or short name, each on an index."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if REFERENCE_RE.match(term.upper()):
            return queryset.filter(reference=term.upper()), False
        operators = Operator.objects.filter(Q(name__icontains=term) | Q(slug__icontains=term)).values("pk")
        return queryset.filter(operator_id__in=operators), False

    def has_add_permission(self, request):
        return False  # operators file incidents; BSSN never creates one on their behalf

    def has_delete_permission(self, request, obj=None):
        return False  # incidents are records: closed, rejected or marked duplicate, never deleted

    occurred_at_zoned = zoned_display("occurred_at", _("occurred"))
    detected_at_zoned = zoned_display("detected_at", _("detected"))
    aware_at_zoned = zoned_display("aware_at", _("aware"))
    submitted_at_zoned = zoned_display("submitted_at", _("submitted"))
    closed_at_zoned = zoned_display("closed_at", _("closed"))

    @admin.display(description=_("personal data categories"))
    def personal_data_categories_display(self, obj):
        return ", ".join(obj.personal_data_category_labels()) or "—"

    @admin.display(description=_("specific personal data"))
    def specific_data_categories_display(self, obj):
        return ", ".join(obj.specific_data_category_labels()) or "—"

    @admin.display(description=_("operator"))
    def operator_display(self, obj):
        if obj.operator.is_iiv:
            return format_html('{} <span class="incident-iiv">{}</span>', obj.operator.name, gettext("IIV"))
        return obj.operator.name

    @admin.display(description=_("BSSN assignee"))
    def assignee_display(self, obj):
        if obj.assignee is None:
            return "—"
        return obj.assignee.get_full_name() or obj.assignee.email

    @admin.display(description=_("severity"))
    def severity_display(self, obj):
        if obj.bssn_severity:
            return obj.get_bssn_severity_display()
        return format_html(
            "{} <span class='incident-muted'>({})</span>",
            obj.get_severity_display() or "—",
            gettext("operator"),
        )

    @admin.display(description=_("next deadline"), ordering=DeadlineOrder("next_due_at"))
    def deadline(self, obj):
        if obj.next_due_at is None:
            return "—"
        due = format_zoned(obj.next_due_at, fmt="SHORT_DATETIME_FORMAT")
        if obj.is_overdue:
            return format_html('<span class="incident-overdue">{} ({})</span>', due, gettext("overdue"))
        return due

    # --- Saving BSSN's assessment through the service --------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.actor = request.user  # the form checks who may mark a duplicate
        return form

    def save_model(self, request, obj, form, change):
        """Save BSSN's assessment through the services: each change is checked and audited."""
        assessed = (*services.BSSN_FIELDS, "assignee")
        data = {f: form.cleaned_data[f] for f in assessed if f in form.changed_data}
        if data:
            services.update_assessment(incident=obj, actor=request.user, data=data, request=request)
        if "duplicate_of" in form.changed_data:
            services.set_duplicate_of(
                incident=obj, actor=request.user, original=form.cleaned_data["duplicate_of"], request=request
            )
        obj.refresh_from_db()

    # --- Extra pages: conversation, status, waivers, evidence downloads, compliance ----

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/message/", view(self.message_view), name="incidents_incident_message"),
            path("<int:pk>/transition/", view(self.transition_view), name="incidents_incident_transition"),
            path("<int:pk>/assign/", view(self.assign_view), name="incidents_incident_assign"),
            path(
                "<int:pk>/deadlines/<int:obligation_id>/waive/",
                view(self.waive_view),
                name="incidents_incident_waive",
            ),
            path(
                "<int:pk>/deadlines/<int:obligation_id>/extend/",
                view(self.extend_view),
                name="incidents_incident_extend",
            ),
            path(
                "<int:pk>/evidence/<int:evidence_id>/",
                view(self.evidence_view),
                name="incidents_incident_evidence",
            ),
            path("compliance/", view(self.compliance_view), name="incidents_incident_compliance"),
            *super().get_urls(),
        ]

    def _incident_or_404(self, request, pk: int) -> Incident:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Incident.objects.reported().select_related("operator"), pk=pk)

    def _back(self, incident: Incident, anchor: str = "") -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:incidents_incident_change", args=[incident.pk]) + anchor)

    def _report(self, request, exc: Exception) -> None:
        texts = exc.messages if isinstance(exc, ValidationError) else [str(exc) or gettext("Not allowed.")]
        for text in texts:
            self.message_user(request, text, messages.ERROR)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        incident = self.get_object(request, object_id)  # None for an id that is not a number
        if incident is not None:
            extra_context.update(
                {
                    "message_form": BssnMessageForm(),
                    # Own id prefixes: the assessment form below has its own assignee and duplicate_of.
                    "transition_form": TransitionForm(
                        targets=services.allowed_targets(incident=incident, user=request.user),
                        auto_id="transition_%s",
                    ),
                    "waive_form": WaiveForm(),
                    "assign_form": AssignForm(
                        initial={"assignee": incident.assignee_id}, auto_id="assign_%s"
                    ),
                    **self._next_deadline(incident),
                    "can_waive": request.user.has_perm(services.WAIVE),
                    "can_extend": request.user.has_perm(services.EXTEND),
                    "can_note": request.user.has_perm(services.INTERNAL_NOTE),
                    "can_triage": request.user.has_perm(services.TRIAGE),
                    "open_obligations": incident.obligations.open().select_related("rule"),
                }
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _next_deadline(incident: Incident) -> dict:
        """Return the next open obligation and the legal source of its rule, for the summary."""
        obligation = incident.obligations.open().select_related("rule").order_by("due_at").first()
        if obligation is None:
            return {"next_obligation": None, "next_deadline_source": ""}
        rule = obligation.rule
        source = obligation.legal_source or rule.name_display
        return {"next_obligation": obligation, "next_deadline_source": source}

    def assign_view(self, request, pk: int):
        incident = self._incident_or_404(request, pk)
        if request.method != "POST":
            return self._back(incident)
        form = AssignForm(request.POST)
        if not form.is_valid():
            self.message_user(request, gettext("Choose an active BSSN staff member."), messages.ERROR)
            return self._back(incident, "#incident-assign")
        try:
            services.assign(
                incident=incident, actor=request.user, assignee=form.cleaned_data["assignee"], request=request
            )
        except (ValidationError, PermissionDenied) as exc:
            self._report(request, exc)
        else:
            assignee = form.cleaned_data["assignee"]
            text = (
                gettext("Assigned to %(name)s.") % {"name": assignee.get_full_name() or assignee.email}
                if assignee
                else gettext("Nobody is assigned now.")
            )
            self.message_user(request, text, messages.SUCCESS)
        return self._back(incident)

    def message_view(self, request, pk: int):
        incident = self._incident_or_404(request, pk)
        if request.method != "POST":
            return self._back(incident)
        form = BssnMessageForm(request.POST)
        if not form.is_valid():
            self.message_user(request, gettext("Write a message and choose its kind."), messages.ERROR)
            return self._back(incident, "#incident-message")
        try:
            services.add_bssn_comment(
                incident=incident,
                actor=request.user,
                body=form.cleaned_data["body"],
                kind=form.cleaned_data["kind"],
                request=request,
            )
        except (ValidationError, PermissionDenied) as exc:
            self._report(request, exc)
        else:
            self.message_user(request, gettext("The message was saved."), messages.SUCCESS)
        return self._back(incident)

    def transition_view(self, request, pk: int):
        incident = self._incident_or_404(request, pk)
        if request.method != "POST":
            return self._back(incident)
        form = TransitionForm(
            request.POST, targets=services.allowed_targets(incident=incident, user=request.user)
        )
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    self.message_user(request, error, messages.ERROR)
            return self._back(incident, "#incident-transition")
        try:
            change = services.change_status(
                incident=incident,
                actor=request.user,
                to_status=form.cleaned_data["to_status"],
                reason=form.cleaned_data["reason"],
                duplicate_of=form.cleaned_data["duplicate_of"],
                request=request,
            )
        except (ValidationError, PermissionDenied) as exc:
            self._report(request, exc)
        else:
            self.message_user(
                request,
                gettext("The status is now “%(status)s”.") % {"status": change.get_to_status_display()},
                messages.SUCCESS,
            )
        return self._back(incident)

    def waive_view(self, request, pk: int, obligation_id: int):
        incident = self._incident_or_404(request, pk)
        obligation = get_object_or_404(
            Obligation.objects.select_related("rule"), incident=incident, pk=obligation_id
        )
        if request.method == "POST":
            form = WaiveForm(request.POST)
            try:
                if not form.is_valid():
                    raise ValidationError(gettext("Say why the deadline is waived."))
                services.waive_obligation(
                    obligation=obligation,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except (ValidationError, PermissionDenied) as exc:
                self._report(request, exc)
            else:
                self.message_user(request, gettext("The deadline was waived."), messages.SUCCESS)
        return self._back(incident)

    def extend_view(self, request, pk: int, obligation_id: int):
        """Move a deadline later (supervisors, with a reason): a page of its own, then back to the case."""
        incident = self._incident_or_404(request, pk)
        if not request.user.has_perm(services.EXTEND):
            raise PermissionDenied
        obligation = get_object_or_404(
            Obligation.objects.open().select_related("rule"), incident=incident, pk=obligation_id
        )
        form = ExtendDeadlineForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.obligation_extend(
                    obligation=obligation,
                    actor=request.user,
                    due_at=form.cleaned_data["due_at"],
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except (ValidationError, PermissionDenied) as exc:
                if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
                    for field, errors in exc.error_dict.items():
                        for error in errors:
                            form.add_error(field if field in form.fields else None, error)
                else:
                    self._report(request, exc)
            else:
                self.message_user(request, gettext("The deadline was extended."), messages.SUCCESS)
                return self._back(incident)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Extend a deadline"),
            "opts": self.model._meta,
            "original": incident,
            "obligation": obligation,
            "form": form,
        }
        return TemplateResponse(request, "admin/incidents/incident/extend_deadline.html", context)

    def evidence_view(self, request, pk: int, evidence_id: int):
        incident = self._incident_or_404(request, pk)
        if not request.user.has_perm("incidents.view_evidence"):
            raise PermissionDenied
        evidence = get_object_or_404(
            Evidence.objects.select_related("incident__operator"), incident=incident, pk=evidence_id
        )
        return serve_evidence(request, evidence)

    def compliance_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = services.deadline_compliance()
        sectors = dict(Sector.choices)
        rules = {rule.code: rule for rule in DeadlineRule.objects.all()}
        for row in rows:
            row["sector"] = sectors.get(row["incident__operator__sector"], row["incident__operator__sector"])
            rule = rules.get(row["rule__code"])
            row["rule_name"] = rule.name_display if rule else row["rule__name"]
            row["legal_source"] = rule.legal_source_display if rule else ""
        # Consent withdrawals' stop-processing deadlines (UU 27/2022 Pasal 40), counted alike.
        for row in processing_stop_compliance():
            row["sector"] = sectors.get(row["operator__sector"], row["operator__sector"])
            row["rule_name"] = gettext("Stop processing after a consent withdrawal")
            row["legal_source"] = PROCESSING_STOP_SOURCE
            row["waived"] = row["extended"] = 0
            rows.append(row)
        rows.sort(key=lambda row: (row["month"], str(row["sector"])))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Reported within deadline, per sector and month"),
            "rows": rows,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/incidents/incident/compliance.html", context)

    # --- Actions ------------------------------------------------------------------------

    @admin.action(description=_("Assign to me"), permissions=["triage"])
    def assign_to_me(self, request, queryset):
        done = 0
        for incident in queryset:
            services.assign(incident=incident, actor=request.user, assignee=request.user, request=request)
            done += 1
        self.message_user(
            request, gettext("%(n)d incident(s) assigned to you.") % {"n": done}, messages.SUCCESS
        )

    @admin.action(description=_("Assign to…"), permissions=["triage"])
    def assign_to(self, request, queryset):
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for incident in queryset:
                services.assign(
                    incident=incident,
                    actor=request.user,
                    assignee=form.cleaned_data["assignee"],
                    request=request,
                )
            self.message_user(
                request, gettext("%(n)d incident(s) assigned.") % {"n": queryset.count()}, messages.SUCCESS
            )
            return None
        return self._intermediate(request, queryset, form, "assign_to", gettext("Assign incidents"))

    @admin.action(description=_("Change status (with a reason)…"), permissions=["triage"])
    def change_status_action(self, request, queryset):
        targets = [s for s in Status if s not in (Status.DRAFT, Status.SUBMITTED, Status.AWAITING_OPERATOR)]
        form = TransitionForm(request.POST if "apply" in request.POST else None, targets=targets)
        if "apply" in request.POST and form.is_valid():
            changed, refused = 0, []
            for incident in queryset:
                try:
                    services.change_status(
                        incident=incident,
                        actor=request.user,
                        to_status=form.cleaned_data["to_status"],
                        reason=form.cleaned_data["reason"],
                        duplicate_of=form.cleaned_data["duplicate_of"],
                        request=request,
                    )
                    changed += 1
                except (ValidationError, PermissionDenied) as exc:
                    text = exc.messages[0] if isinstance(exc, ValidationError) else gettext("Not allowed.")
                    refused.append(f"{incident.reference}: {text}")
            if changed:
                self.message_user(
                    request, gettext("%(n)d incident(s) changed.") % {"n": changed}, messages.SUCCESS
                )
            for line in refused:
                self.message_user(request, line, messages.ERROR)
            return None
        return self._intermediate(request, queryset, form, "change_status_action", gettext("Change status"))

    def _intermediate(self, request, queryset, form, action: str, title: str):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "queryset": queryset,
            "form": form,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/incidents/incident/action_form.html", context)

    @admin.action(description=_("Export selected as CSV"))
    def export_csv(self, request, queryset):
        record(action="incident.export", actor=request.user, request=request,
                     changes={"format": "csv", "via": "admin", "count": queryset.count()})  # fmt: skip
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="incidents.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                "reference",
                "operator",
                "sector",
                "iiv",
                "title",
                "category",
                "severity",
                "bssn_severity",
                "tlp",
                "status",
                "assignee",
                "aware_at",
                "submitted_at",
                "closed_at",
                "next_due_at",
                "overdue",
                "personal_data_involved",
                "data_subjects_count",
            ]
        )
        for i in queryset.select_related("operator", "assignee").order_by("-submitted_at", "-id"):
            row = [
                i.reference,
                i.operator.name,
                i.operator.sector,
                i.operator.is_iiv,
                i.title,
                i.category,
                i.severity,
                i.bssn_severity,
                i.tlp,
                i.status,
                i.assignee.email if i.assignee else "",
                i.aware_at,
                i.submitted_at,
                i.closed_at,
                i.next_due_at,
                i.is_overdue,
                i.personal_data_involved,
                i.data_subjects_count,
            ]
            writer.writerow([csv_cell(value) for value in row])
        return response

    def has_triage_permission(self, request) -> bool:
        return request.user.has_perm(services.TRIAGE)


@admin.register(DeadlineRule)
class DeadlineRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name_display",
        "code",
        "applies_when",
        "anchor",
        "period_hours",
        "remind_before_hours",
        "met_by",
        "legal_source",
        "is_active",
    ]
    list_filter = ["is_active", "applies_when"]
    readonly_fields = ["code"]

    @admin.display(description=_("name"), ordering="name")
    def name_display(self, obj):
        return obj.name_display

    def has_delete_permission(self, request, obj=None):
        return False  # obligations point at rules; deactivate a rule instead

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record(
            action="incidents.deadline_rule_change",
            actor=request.user,
            target=obj,
            request=request,
            changes={f: str(form.cleaned_data.get(f)) for f in form.changed_data},
        )


from . import admin_observables, admin_stix, dashboard  # noqa: E402, F401  (registers the observables admin)

admin_stix.register()
dashboard.register(admin.site)
