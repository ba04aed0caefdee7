"""The BSSN admin: the Django admin, but only for staff verified by a second factor."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _


class PortalAdminSite(admin.AdminSite):
    site_header = _("BSSN — incident reporting portal")
    site_title = "BSSN"
    index_title = _("Triage")

    def has_permission(self, request) -> bool:
        """Allow active staff only once a TOTP device verified this session."""
        user = request.user
        return bool(user.is_active and user.is_staff and getattr(user, "is_verified", lambda: False)())

    def login(self, request, extra_context=None):
        # One sign-in page for everybody; it runs the second-factor step.
        target = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return redirect(reverse("accounts:login") + "?" + urlencode({"next": target}))


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
