"""How to create, for the isolation sweep, an object a URL keyword refers to.

Each entry: URL keyword -> function(operator, admin_user) returning the keyword's
value for a fresh object that belongs to `operator`. Add one for every new keyword.
"""

from collections.abc import Callable

from portal.accounts.models import Membership, Role, User


def _membership(operator, admin_user) -> int:
    user = User.objects.create_user(f"member-{operator.slug}@example.org", None)
    return Membership.objects.create(user=user, operator=operator, role=Role.VIEWER).pk


OBJECT_FACTORIES: dict[str, Callable] = {
    "membership_id": _membership,
    # incidents
    # alerts
    # consent
    # suspected cases
}
