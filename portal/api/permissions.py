"""Scopes: each view names the scope its method needs; a key without it gets 403."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from .models import ApiKey


class HasScope(permissions.BasePermission):
    """Allow a request whose key holds the view's scope for the method.

    Views set `read_scope` and `write_scope`; a view that sets neither is refused,
    so a new view cannot be open by accident.
    """

    message = _("This API key does not have the scope this request needs.")

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return False
        scope = view_scope(view, request.method)
        return scope is not None and request.auth.has_scope(scope)


def view_scope(view, method: str) -> str | None:
    if method in permissions.SAFE_METHODS:
        return getattr(view, "read_scope", None)
    return getattr(view, "write_scope", None)
