"""The BSSN admin: the Django admin, but only for staff verified by a second factor."""

import logging
from functools import wraps

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


class PortalAdminSite(admin.AdminSite):
    site_header = _("BSSN — incident reporting portal")
    site_title = "BSSN"
    index_title = _("Triage")

    def has_permission(self, request) -> bool:
        """Allow active staff only once a TOTP device verified this session."""
        user = request.user
        return bool(user.is_active and user.is_staff and getattr(user, "is_verified", lambda: False)())

    def admin_view(self, view, cacheable=False):
        """Wrap every admin view; a tampered action selection is refused, not a 500."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def guarded(request, *args, **kwargs):
            try:
                return inner(request, *args, **kwargs)
            except ObjectDoesNotExist:
                # A custom admin view (django-otp's device pages among them) looked up
                # the row its URL names with .get(): a missing row is a 404, not a 500.
                raise Http404 from None
            except (ValueError, ValidationError):
                # Django's changelist filters pk__in=<posted ids> without validating them.
                if request.method != "POST" or ACTION_CHECKBOX_NAME not in request.POST:
                    raise
                logger.warning("admin: refused an action with an invalid selection on %s", request.path)
                messages.error(request, _("The selection was not valid. Choose the items again."))
                return redirect(request.path)

        return guarded

    def login(self, request, extra_context=None):
        # One sign-in page for everybody; it runs the second-factor step.
        target = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return redirect(reverse("accounts:login") + "?" + urlencode({"next": target}))


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
