"""BSSN admin for suspected cases: pseudonymous flags, case definitions, the audited identity vault."""

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from portal.alerts.models import EventType
from portal.audit.services import record

from . import reports, services
from .models import CaseDefinition, CaseFlag, CaseIdentity, Classification, Criterion, Disclosure

DASHBOARD_DAYS = (14, 30, 90, 365)


@admin.register(Criterion)
class CriterionAdmin(admin.ModelAdmin):
    list_display = ["code", "kind", "name", "name_id", "position"]
    list_filter = ["kind"]
    search_fields = ["code", "name", "name_id"]


@admin.register(CaseDefinition)
class CaseDefinitionAdmin(admin.ModelAdmin):
    list_display = ["short_name", "code", "issuer", "published_on", "is_default", "is_active"]
    list_filter = ["is_default", "is_active", "issuer"]
    search_fields = ["code", "short_name"]

    def save_model(self, request, obj, form, change) -> None:
        with transaction.atomic():
            if obj.is_default:
                # One default at a time: the new default replaces the old one.
                CaseDefinition.objects.exclude(pk=obj.pk).filter(is_default=True).update(is_default=False)
            super().save_model(request, obj, form, change)
            record(
                action="case_definition.change" if change else "case_definition.add",
                actor=request.user,
                target=obj,
                changes={name: {"new": str(form.cleaned_data.get(name))} for name in form.changed_data},
                request=request,
            )


def _criteria_labels(codes) -> str:
    """Return symptom or criterion codes as their names in the reader's language."""
    names = {
        c.code: c.label for c in Criterion.objects.filter(code__in=[c for c in codes if isinstance(c, str)])
    }
    return ", ".join(names.get(code, str(code)) for code in codes if isinstance(code, str)) or "—"


class DisclosureInline(admin.TabularInline):
    model = Disclosure
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "event_label",
        "stage",
        "recipient",
        "fields_disclosed",
        "identity_included",
        "basis",
        "alert_id",
        "delivery_id",
        "attempt",
        "channel_kind",
        "body_sha256",
    ]
    readonly_fields = fields

    @admin.display(description=_("event"))
    def event_label(self, obj: Disclosure) -> str:
        return str(dict(EventType.choices).get(obj.event_type, obj.event_type))

    @admin.display(description=_("fields disclosed"))
    def fields_disclosed(self, obj: Disclosure) -> str:
        names = []
        for name in obj.fields or []:
            try:
                names.append(str(CaseFlag._meta.get_field(name).verbose_name))
            except FieldDoesNotExist:
                names.append(str(name))
        return ", ".join(names) or "—"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CaseFlag)
class CaseFlagAdmin(admin.ModelAdmin):
    """Flags as BSSN sees them: codes only; the identity is behind its own permission."""

    list_display = [
        "recontact_ref",
        "operator",
        "classes_met",
        "definition",
        "province",
        "status",
        "created_at",
        "duplicate_of",
    ]
    list_filter = ["classification", "status", "province", "definition", "created_at"]
    search_fields = ["recontact_ref", "uid"]
    date_hierarchy = "created_at"
    list_select_related = ["operator", "definition", "duplicate_of"]
    change_list_template = "admin/cases/caseflag/change_list.html"
    # The internal note, consultation reference and sharing reason stay with the operator.
    fields = [
        "uid",
        "recontact_ref",
        "operator",
        "definition",
        "classification",
        "classes_met",
        "evaluation_display",
        "symptoms_display",
        "onset_date",
        "epidemiological_display",
        "sari",
        "antigen_result",
        "province",
        "regency_code",
        "regency_name",
        "age_band",
        "sex",
        "legal_basis",
        "identity_basis",
        "status",
        "withdrawn_at",
        "withdraw_reason",
        "revision",
        "duplicate_of",
        "created_at",
        "updated_at",
        "identity_link",
    ]
    readonly_fields = fields
    inlines = [DisclosureInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("classes met"), ordering="classification")
    def classes_met(self, obj: CaseFlag) -> str:
        return ", ".join(obj.classes_display())

    @admin.display(description=_("criteria matched"))
    def evaluation_display(self, obj: CaseFlag) -> str:
        evaluation = obj.evaluation or {}
        classes = dict(Classification.choices)
        found = ", ".join(str(classes.get(c, c)) for c in evaluation.get("classes", []))
        criteria = _criteria_labels(evaluation.get("criteria", []))
        return f"{found or '—'} ({criteria})" if evaluation.get("criteria") else found or "—"

    @admin.display(description=_("symptoms"))
    def symptoms_display(self, obj: CaseFlag) -> str:
        return _criteria_labels(obj.symptoms or [])

    @admin.display(description=_("epidemiological criteria"))
    def epidemiological_display(self, obj: CaseFlag) -> str:
        return _criteria_labels(obj.epidemiological or [])

    @admin.display(description=_("identity"))
    def identity_link(self, obj: CaseFlag) -> str:
        identity = CaseIdentity.objects.filter(flag=obj).first()
        if identity is None:
            return "—"
        if not getattr(obj, "_can_view_identity", False):
            return _("recorded (needs the identity permission)")
        url = reverse("admin:cases_caseidentity_change", args=[identity.pk])
        return format_html('<a href="{}">{}</a>', url, _("View the identity (audited)"))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._can_view_identity = request.user.has_perm("cases.view_identity")
        return obj

    def get_urls(self):
        extra = [
            path(
                "dashboard/", self.admin_site.admin_view(self.dashboard_view), name="cases_caseflag_dashboard"
            ),
        ]
        return extra + super().get_urls()

    def dashboard_view(self, request):
        """Show the epidemic curve and the province table (counts below 5 as "<5")."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", 30))
        except ValueError:
            days = 30
        if days not in DASHBOARD_DAYS:
            days = 30
        today = timezone.localdate()
        curve = reports.epidemic_curve(days=days, today=today)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Suspected cases: epidemic curve"),
            "opts": self.model._meta,
            "curve": curve,
            "classes": reports.CLASSES,
            "days": days,
            "day_choices": DASHBOARD_DAYS,
            "today": today,
        }
        return TemplateResponse(request, "admin/cases/dashboard.html", context)


@admin.register(CaseIdentity)
class CaseIdentityAdmin(admin.ModelAdmin):
    """The identity vault: only with cases.view_identity, and every view is audited."""

    list_display = ["flag", "created_at", "purged_at"]
    list_filter = ["purged_at"]
    fields = ["flag", "full_name", "phone", "nik", "address", "created_at", "purged_at"]
    readonly_fields = fields

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm("cases.view_identity")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("cases.view_identity")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        identity = self.get_object(request, object_id)
        if identity is not None and self.has_view_permission(request, identity):
            services.reveal_identity(identity=identity, actor=request.user, request=request)
        return super().change_view(request, object_id, form_url, extra_context)
