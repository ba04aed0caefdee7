"""Audit sign-ins, sign-in failures and sign-outs."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from portal.audit.services import record
from portal.crypto import Kind, NormalisationError, blind_index


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs) -> None:
    record(action="auth.login", actor=user, request=request)


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        record(action="auth.logout", actor=user, request=request)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # The attempted address is recorded only as its blind index: failures can be
    # correlated with an account without writing a typed (possibly foreign) address.
    attempted = credentials.get("username") or credentials.get("email") or ""
    try:
        index = blind_index(Kind.EMAIL, attempted) if attempted else ""
    except NormalisationError:
        index = ""
    if request is not None and not hasattr(request, "user"):
        request = None
    record(action="auth.login_failed", request=request, changes={"email_index": index})


@receiver(post_migrate)
def sync_bssn_groups(sender, **kwargs) -> None:
    # Runs after each app migrates, so permissions of apps listed later are picked up.
    from .staff import sync_group_permissions

    sync_group_permissions()


def audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    try:
        index = blind_index(Kind.EMAIL, username) if username else ""
    except NormalisationError:
        index = ""
    record(
        action="auth.lockout",
        request=request if hasattr(request, "user") else None,
        changes={"email_index": index, "ip_address": ip_address},
    )


def connect_lockout_signal() -> None:
    from axes.signals import user_locked_out

    user_locked_out.connect(audit_lockout, dispatch_uid="portal-audit-lockout")
