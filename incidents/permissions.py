"""Who may do what on an incident: BSSN's permissions and the operator's writer roles."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from portal.accounts.models import WRITE_ROLES, Membership, Operator, User

TRIAGE = "incidents.triage_incident"
CLOSE = "incidents.close_incident"
REOPEN = "incidents.reopen_incident"
WAIVE = "incidents.waive_obligation"
EXTEND = "incidents.extend_obligation"
INTERNAL_NOTE = "incidents.add_internal_note"


def require_perm(user: User, perm: str) -> None:
    """Raise PermissionDenied unless `user` is active BSSN staff holding `perm`."""
    if not (user.is_active and user.is_staff and user.has_perm(perm)):
        raise PermissionDenied(_("You are not allowed to do this."))


def require_writer(user: User, operator: Operator) -> None:
    """Raise PermissionDenied unless `user` is an admin or reporter of `operator`."""
    if not Membership.objects.filter(user=user, operator=operator, role__in=WRITE_ROLES).exists():
        raise PermissionDenied(_("You are not allowed to do this."))
