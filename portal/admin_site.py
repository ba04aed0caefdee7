"""The BSSN admin: the Django admin, but only for staff verified by a second factor."""

import contextlib
import logging
from functools import wraps

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import BadRequest, FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.db import models
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


def _zoned_column(field):
    """Return a changelist column showing `field` (a DateTimeField) in WIB with its zone label."""
    from portal.timefmt import format_zoned

    def show(obj):
        return format_zoned(getattr(obj, field.attname), fmt="SHORT_DATETIME_FORMAT")

    show.short_description = field.verbose_name
    show.admin_order_field = field.name
    show.__name__ = field.name  # keeps the column's CSS class (field-<name>)
    return show


class PortalAdminDefaults:
    """Mixed into every registered ModelAdmin: nonsense ids are a 404, list times carry their zone.

    Django's admin redirects a missing object to its index with a warning; for a
    bookmarked or mistyped link a 404 says plainly that the object is not there, as
    every other page of the portal does. The add page takes initial values from the
    query string, and a related id that is not a number would reach the database
    through the autocomplete widget; it is dropped instead.
    """

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(_("There is no such object."))

    def get_list_display(self, request):
        """Show every date-time column with its zone (WIB), as every time shown to a person is."""
        columns = []
        for name in super().get_list_display(request):
            field = None
            if isinstance(name, str):
                with contextlib.suppress(FieldDoesNotExist):
                    field = self.opts.get_field(name)
            columns.append(_zoned_column(field) if isinstance(field, models.DateTimeField) else name)
        return columns

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        for name, value in list(initial.items()):
            try:
                field = self.opts.get_field(name)
            except FieldDoesNotExist:
                continue
            if not field.is_relation or field.related_model is None:
                continue
            target = field.target_field if hasattr(field, "target_field") else field.related_model._meta.pk
            try:
                for item in value if isinstance(value, list) else [value]:
                    target.to_python(item)
            except ValidationError:
                del initial[name]
        return initial


def _has_nul(request) -> bool:
    """Tell whether the path, a parameter name or a value of the request holds a NUL byte."""
    if "\x00" in request.path:
        return True
    for query in (request.GET, request.POST) if request.method == "POST" else (request.GET,):
        for key, values in query.lists():
            if "\x00" in key or any("\x00" in v for v in values if isinstance(v, str)):
                return True
    return False


DATE_PART_RANGES = {"__year": (1, 9999), "__month": (1, 12), "__day": (1, 31)}


def _bad_date_part(query) -> bool:
    """Tell whether a date-hierarchy parameter (`created_at__year=…`) is outside the calendar."""
    for key, value in query.items():
        for suffix, (low, high) in DATE_PART_RANGES.items():
            # isascii: "²".isdigit() is true, but int("²") fails; len: int() refuses a
            # string of over 4,300 digits, and no calendar part has more than four.
            if key.endswith(suffix) and not (
                len(value) <= 4 and value.isascii() and value.isdigit() and low <= int(value) <= high
            ):
                return True
    return False


class PortalAdminSite(admin.AdminSite):
    site_header = _("BSSN — incident reporting portal")
    site_title = "BSSN"
    index_title = _("Triage")
    # The app list stays on the index page; at 1280 px the triage table needs the width.
    enable_nav_sidebar = False

    def has_permission(self, request) -> bool:
        """Allow active staff only once a TOTP device verified this session."""
        user = request.user
        return bool(user.is_active and user.is_staff and getattr(user, "is_verified", lambda: False)())

    def register(self, model_or_iterable, admin_class=None, **options):
        """Register as Django does, each ModelAdmin with PortalAdminDefaults mixed in."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, PortalAdminDefaults):
            admin_class = type(
                admin_class.__name__,
                (PortalAdminDefaults, admin_class),
                {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
            )
        return super().register(model_or_iterable, admin_class, **options)

    def admin_view(self, view, cacheable=False):
        """Wrap every admin view; a tampered action selection is refused, not a 500."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def guarded(request, *args, **kwargs):
            # PostgreSQL refuses NUL in text; a filter, search or id carrying one is a bad request.
            if _has_nul(request):
                raise BadRequest("NUL byte in an admin request")
            # Python's datetime overflows on year 2147483648; answer as Django does for a bad filter.
            if request.method == "GET" and _bad_date_part(request.GET):
                return redirect(f"{request.path}?{ERROR_FLAG}=1")
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

    def get_urls(self):
        urls = super().get_urls()
        for i, pattern in enumerate(urls):
            if getattr(pattern, "name", None) == "view_on_site":
                urls[i] = path(
                    "r/<path:content_type_id>/<path:object_id>/",
                    self.admin_view(self.view_on_site),
                    name="view_on_site",
                )
        return urls

    def view_on_site(self, request, content_type_id, object_id):
        """Redirect to an object's page only when this admin itself shows the object.

        Django's shortcut looks the object up among all rows; an incident still in draft
        (hidden from BSSN until submitted) would be revealed by its redirect.
        """
        from django.contrib.contenttypes import views as contenttype_views  # models load after this module
        from django.contrib.contenttypes.models import ContentType

        try:
            model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
        except (ContentType.DoesNotExist, ValueError, OverflowError):
            raise Http404 from None
        model_admin = self._registry.get(model)
        if model_admin is None or not model_admin.has_view_permission(request):
            raise Http404
        if model_admin.get_object(request, unquote(object_id)) is None:
            raise Http404
        return contenttype_views.shortcut(request, content_type_id, object_id)

    def login(self, request, extra_context=None):
        user = request.user
        if user.is_authenticated and not (user.is_active and user.is_staff):
            # Signing in again would only bring them back here: say so instead of looping.
            return TemplateResponse(request, "admin/not_for_your_account.html", status=403)
        # One sign-in page for everybody; it runs the second-factor step.
        target = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return redirect(reverse("accounts:login") + "?" + urlencode({"next": target}))


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
