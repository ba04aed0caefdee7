"""BSSN admin: policies and the consent ledger, read-only.

Subject identifiers are never shown decrypted here: list pages show a prefix of the
blind index, and the identifier field is excluded from every admin page.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import ConsentEvent, ConsentImport, PolicyVersion, Purpose


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PurposeInline(admin.TabularInline):
    model = Purpose
    extra = 0
    can_delete = False
    fields = ["code", "legal_basis", "data_categories", "specific_data", "retention", "recipients"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["operator", "number", "title", "status", "effective_date", "published_at"]
    list_filter = ["status"]
    search_fields = ["operator__name", "operator__slug", "title"]
    list_select_related = ["operator"]
    inlines = [PurposeInline]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ["operator", "seq", "subject_index_prefix", "purpose_code", "state", "method", "event_at"]
    list_filter = ["state", "method"]
    list_select_related = ["operator"]
    search_fields = ["operator__slug", "purpose_code"]
    # The encrypted identifier is never decrypted for the admin.
    exclude = ["subject_identifier"]
    readonly_fields = [
        "record_id", "operator", "seq", "subject_index", "purpose_code", "policy_version", "state",
        "method", "actor_type", "recorded_by", "event_at", "recorded_at", "expires_at",
        "stop_processing_by", "evidence", "import_key", "prev_hash", "hash",
    ]  # fmt: skip
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("subject_identifier")

    @admin.display(description=_("subject (blind index)"))
    def subject_index_prefix(self, obj: ConsentEvent) -> str:
        return obj.subject_index[:12] + "…"


@admin.register(ConsentImport)
class ConsentImportAdmin(ReadOnlyAdmin):
    list_display = [
        "operator",
        "filename",
        "status",
        "row_count",
        "imported_count",
        "error_count",
        "created_at",
    ]
    list_filter = ["status"]
    exclude = ["errors"]
