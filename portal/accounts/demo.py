"""Demo data for the embedded default: one operator per sector and BSSN staff.

Addresses are on example domains; nothing here resembles real people or secrets.
"""

import base64

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.regions import Province

from .models import Membership, Operator, Role, Sector, TimeZone, User
from .staff import ANALYST, SUPERVISOR, sync_group_permissions

DEMO_OPERATORS = [
    # slug, legal name, sector, IIV, province, time zone
    ("toko-contoh", "PT Toko Contoh Digital", Sector.ECOMMERCE, False, Province.JK, TimeZone.WIB),
    ("bayar-contoh", "PT Bayar Contoh Indonesia", Sector.FINTECH_PAYMENT, True, Province.JK, TimeZone.WIB),
    ("pinjam-contoh", "PT Pinjam Contoh Bersama", Sector.FINTECH_LENDING, False, Province.JB, TimeZone.WIB),
    ("sehat-contoh", "PT Sehat Contoh Telemedika", Sector.HEALTHTECH, False, Province.SN, TimeZone.WITA),
    ("layanan-contoh", "PT Layanan Contoh Nusantara", Sector.OTHER, False, Province.PA, TimeZone.WIT),
]
DEMO_STAFF = [
    ("analyst@bssn.example", "Analis Demo", ANALYST),
    ("supervisor@bssn.example", "Supervisor Demo", SUPERVISOR),
]


def demo_email(role: str, slug: str) -> str:
    return f"{role}@{slug}.example"


@transaction.atomic
def seed_demo(*, password: str) -> dict[str, int]:
    """Create or update the demo data; return how many rows were created per kind."""
    created = {"operators": 0, "users": 0}
    # One hash for every demo account: the password is the same, and hashing it once
    # instead of per account saves a second of PBKDF2 each on `make run`'s first start.
    hashed = make_password(password)

    def ensure_user(email: str, full_name: str, **extra) -> User:
        user, was_created = User.objects.get_or_create(
            email=email, defaults={"full_name": full_name, **extra}
        )
        if was_created:
            created["users"] += 1
        user.password = hashed
        for key, value in extra.items():
            setattr(user, key, value)
        user.save()
        return user

    for slug, name, sector, is_iiv, province, tz in DEMO_OPERATORS:
        operator, was_created = Operator.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "sector": sector,
                "is_iiv": is_iiv,
                "province": province,
                "timezone": tz,
                "contact_email": f"security@{slug}.example",
                "pse_registration_number": f"DEMO-{slug.upper()}",
            },
        )
        created["operators"] += was_created
        for role in Role:
            user = ensure_user(demo_email(role.value, slug), f"{role.label} {name.removeprefix('PT ')}")
            Membership.objects.update_or_create(user=user, operator=operator, defaults={"role": role})

    for email, full_name, group_name in DEMO_STAFF:
        user = ensure_user(email, full_name, is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=group_name)[0])
        # Staff must sign in with a second factor; demo staff get a confirmed device.
        TOTPDevice.objects.get_or_create(user=user, name="demo", defaults={"confirmed": True})
    sync_group_permissions()  # the groups may be new here (a flushed database)
    return created


def demo_totp_secret(email: str) -> str:
    """Return the base32 TOTP key of a demo staff account, for an authenticator app."""
    device = TOTPDevice.objects.get(user__email=email, name="demo")
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def demo_totp_code(email: str) -> str:
    """Return the current TOTP code of a demo staff account (demo accounts only)."""
    if not email.endswith(".example"):
        raise ValueError("only demo accounts on .example addresses")
    device = TOTPDevice.objects.get(user__email=email, name="demo")
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"
