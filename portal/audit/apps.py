from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "portal.audit"
    label = "audit"
    verbose_name = _("Audit log")

    def ready(self) -> None:
        from django.contrib.admin.models import LogEntry
        from django.db.models.signals import post_save

        from . import checks  # noqa: F401  (registers the checkpoint key checks)
        from .admin import audit_admin_action

        post_save.connect(audit_admin_action, sender=LogEntry, dispatch_uid="portal-audit-admin-action")
