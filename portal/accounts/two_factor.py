"""Two-factor sign-in with TOTP (django-otp): enforcement, setup and recovery codes.

Staff must use it (the admin is closed to unverified sessions); operator members must
when any of their organisations requires it; others may opt in.
"""

import base64

import segno
from django.db import transaction
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODE_COUNT = 10


def two_factor_required(user) -> bool:
    return bool(user.is_staff or user.memberships.filter(operator__require_two_factor=True).exists())


def has_confirmed_device(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def pending_totp_device(user) -> TOTPDevice:
    """Return the user's unconfirmed TOTP device, creating one with a fresh key."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="TOTP", confirmed=False)
    return device


def provisioning_uri(device: TOTPDevice) -> str:
    return device.config_url


def qr_svg(device: TOTPDevice) -> str:
    """Return the provisioning URI as an SVG QR code (markup, no inline style)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, omitsize=True)


def secret_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


@transaction.atomic
def confirm_totp(*, user, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm `device` with `token`; return fresh recovery codes, or None if the token is wrong."""
    if not device.verify_token(token):
        return None
    TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return new_recovery_codes(user=user)


@transaction.atomic
def new_recovery_codes(*, user) -> list[str]:
    """Replace the user's recovery codes; each works once."""
    static, _ = StaticDevice.objects.get_or_create(user=user, name="recovery", defaults={"confirmed": True})
    static.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in codes)
    return codes


# --- Enforcement ------------------------------------------------------------------

_EXEMPT_PREFIXES = ("/static/", "/healthz", "/i18n/", "/logout/", "/login/verify/", "/account/two-factor/")


class TwoFactorMiddleware:
    """Send a signed-in but unverified user to the second-factor step when they need one.

    A user with a confirmed device must enter a code before anything else; a user who
    must use two factors (staff, members of an organisation that requires it) and has no
    device yet must set one up first.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.shortcuts import redirect
        from django.urls import reverse
        from django.utils.http import urlencode

        user = request.user
        if user.is_authenticated and not user.is_verified() and not request.path.startswith(_EXEMPT_PREFIXES):
            query = "?" + urlencode({"next": request.get_full_path()})
            if has_confirmed_device(user):
                return redirect(reverse("accounts:two_factor_verify") + query)
            if two_factor_required(user):
                return redirect(reverse("accounts:two_factor_setup") + query)
        return self.get_response(request)
