"""Tenancy: the one way operator views resolve the organisation and its objects.

Every operator URL starts with /o/<operator_slug>/. `operator_view` resolves the
caller's membership of that operator; a user who is not a member gets a 404 (never a
403 that would confirm the organisation exists). Objects are fetched with
`get_for_operator`, which 404s for another organisation's object.
"""

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ALL_ROLES, Membership, Operator, User


def operator_view(
    view: Callable | None = None, *, roles: Iterable[str] = ALL_ROLES, sectors: Iterable[str] | None = None
):
    """Decorate an operator view: sign-in required, membership resolved, role checked.

    `roles` lists the membership roles allowed (others get 403: they are members and
    may know the page exists). `sectors`, when given, limits the view to operators of
    those sectors; others get a 404, as if the feature did not exist for them.
    The operator's time zone is active while the view runs and renders.
    """
    allowed_roles = frozenset(roles)
    allowed_sectors = frozenset(sectors) if sectors is not None else None

    def decorator(func: Callable) -> Callable:
        @login_required
        @wraps(func)
        def wrapped(request: HttpRequest, operator_slug: str, *args, **kwargs):
            membership = (
                Membership.objects.select_related("operator")
                .filter(user=request.user, operator__slug=operator_slug)
                .first()
            )
            if membership is None:
                raise Http404("No such organisation.")
            if allowed_sectors is not None and membership.operator.sector not in allowed_sectors:
                raise Http404("Not available for this organisation.")
            if membership.role not in allowed_roles:
                raise PermissionDenied
            request.membership = membership
            request.operator = membership.operator
            if request.session.get("operator_slug") != operator_slug:  # avoid a session write per request
                request.session["operator_slug"] = operator_slug
            # Operator pages show times in the organisation's zone (portal/timefmt.py); the
            # zone is reset afterwards so it never leaks into the next request of this thread.
            timezone.activate(membership.operator.timezone)
            try:
                response = func(request, *args, **kwargs)
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()  # a TemplateResponse renders while the zone is active
                return response
            finally:
                timezone.deactivate()

        wrapped.operator_roles = allowed_roles
        wrapped.operator_sectors = allowed_sectors
        return wrapped

    if view is not None:
        return decorator(view)
    return decorator


def get_for_operator(model_or_queryset: type[Model] | QuerySet, operator, **lookup) -> Model:
    """Return the object matching `lookup` within `operator`, or raise Http404."""
    queryset = (
        model_or_queryset._default_manager.all() if isinstance(model_or_queryset, type) else model_or_queryset
    )
    return get_object_or_404(queryset.filter(operator=operator), **lookup)


def require_role(user: User, operator: Operator, roles: Iterable[str]) -> None:
    """Raise PermissionDenied unless `user` holds one of `roles` in `operator` (BSSN staff never do).

    For services an operator view calls: the view's decorator already checked, this
    keeps the rule true for every other caller.
    """
    if user.is_staff or not Membership.objects.filter(user=user, operator=operator, role__in=roles).exists():
        raise PermissionDenied(_("You are not allowed to do this."))
