"""Create, revoke and authenticate organisations' API keys."""

import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import ADMIN_ROLES, Membership, Operator, Role, Sector, User
from portal.accounts.tenancy import require_role
from portal.audit.services import client_ip, record

from .models import WRITE_SCOPES, ApiKey, Scope

KEY_PREFIX = "pik_"


def _require_admin(actor: User, operator: Operator) -> None:
    require_role(actor, operator, ADMIN_ROLES)


def api_key_create(
    *, operator: Operator, actor: User, name: str, scopes: list[str], expires_at: datetime, request=None
) -> tuple[ApiKey, str]:
    """Create a key for `operator` and return it with its secret, which is never stored.

    The secret is `pik_<8 visible hex>_<43 random characters>`: the visible part is the
    prefix people recognise in lists and logs; only the SHA-256 of the whole is kept.
    BSSN staff cannot hold keys: only an organisation's admin creates them, and the
    key's own user is never staff.
    """
    _require_admin(actor, operator)
    unknown = [s for s in scopes if s not in Scope.values]
    if not scopes or unknown:
        raise ValidationError({"scopes": _("Choose at least one of the listed scopes.")})
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    if operator.sector != Sector.HEALTHTECH and Scope.CASES_WRITE in scopes:
        raise ValidationError({"scopes": _("Suspected cases are only for healthtech organisations.")})
    visible = secrets.token_hex(4)
    prefix = f"{KEY_PREFIX}{visible}"
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        user = User.objects.create_user(
            f"{prefix}@api-keys.{operator.slug}.invalid",
            None,
            full_name=_("API key “%(name)s”") % {"name": name},
        )
        role = Role.REPORTER if WRITE_SCOPES.intersection(scopes) else Role.VIEWER
        Membership.objects.create(user=user, operator=operator, role=role)
        key = ApiKey.objects.create(
            operator=operator,
            user=user,
            name=name,
            prefix=prefix,
            key_hash=ApiKey.hash_key(secret),
            scopes=sorted(scopes),
            created_by=actor,
            expires_at=expires_at,
        )
        record(
            action="api_key.create",
            actor=actor,
            operator=operator,
            target=key,
            changes={"name": name, "scopes": key.scopes, "expires_at": expires_at.isoformat()},
            request=request,
        )
    return key, secret


def api_key_revoke(*, key: ApiKey, actor: User, request=None) -> ApiKey:
    """Revoke `key` at once: its next request is refused with 401."""
    _require_admin(actor, key.operator)
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            User.objects.filter(pk=key.user_id).update(is_active=False)
            record(action="api_key.revoke", actor=actor, operator=key.operator, target=key, request=request)
    return key


def api_key_authenticate(*, secret: str, request: HttpRequest | None = None) -> ApiKey | None:
    """Return the usable key for `secret` and note its use, or None.

    The last-use time and address are written at most once a minute per key, so a
    busy integration does not turn every read into a write.
    """
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    key = (
        ApiKey.objects.usable()
        .select_related("user", "operator")
        .filter(key_hash=ApiKey.hash_key(secret), user__is_active=True, user__is_staff=False)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    ip = client_ip(request)
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60 or key.last_used_ip != ip:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
        key.last_used_at, key.last_used_ip = now, ip
    return key
