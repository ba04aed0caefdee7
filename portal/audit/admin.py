from django.contrib import admin
from django.contrib.admin.models import LogEntry

from .models import AuditEvent, Checkpoint


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only, in the admin as in the database."""

    list_display = ["seq", "created_at", "action", "actor_label", "operator", "target_repr", "ip_address"]
    list_filter = ["action", "stream", ("operator", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["action", "actor_label", "target_repr", "target_id"]
    date_hierarchy = "created_at"
    list_select_related = ["operator"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Read-only: signed checkpoints of the consent ledgers and the audit log."""

    list_display = ["stream", "number", "size", "root_hash", "timestamp", "key_id"]
    list_filter = ["stream"]
    search_fields = ["stream", "root_hash"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def audit_admin_action(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    """Copy every Django admin action (add, change, delete) into the audit chain."""
    if not created:
        return
    from .services import record

    record(
        action=f"admin.{ {1: 'add', 2: 'change', 3: 'delete'}.get(instance.action_flag, 'action') }",
        actor=instance.user,
        changes={
            "model": instance.content_type.model if instance.content_type_id else "",
            "object_id": instance.object_id or "",
            "object": (instance.object_repr or "")[:200],
            "message": instance.get_change_message()[:500],
        },
    )
