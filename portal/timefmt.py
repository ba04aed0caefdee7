"""Times as a person reads them: always with their zone (WIB, WITA, WIT or UTC).

Times are stored in UTC. Operator pages show them in the organisation's zone, the
admin in WIB (Asia/Jakarta, the project's TIME_ZONE), e-mails in the recipient's zone
with UTC beside it. A bare "14:00" in a notice about a legal deadline is ambiguous by
up to two hours inside Indonesia, so nothing shows a time without its zone.
"""

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from django.utils import formats, timezone

ZONE_LABELS = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT", "UTC": "UTC"}


def as_zone(zone: str | tzinfo | None) -> tzinfo:
    """Return `zone` as a tzinfo; None means the active zone of this request."""
    if zone is None:
        return timezone.get_current_timezone()
    if isinstance(zone, str):
        return ZoneInfo(zone)
    return zone


def zone_label(zone: str | tzinfo | None) -> str:
    """Return the short Indonesian label of a zone (WIB/WITA/WIT/UTC), or its name."""
    tz = as_zone(zone)
    name = getattr(tz, "key", None) or str(tz)
    if tz is UTC or name in ("UTC", "Etc/UTC"):
        return "UTC"
    return ZONE_LABELS.get(name, name)


def format_zoned(
    value: datetime | None, zone: str | tzinfo | None = None, *, fmt: str = "DATETIME_FORMAT"
) -> str:
    """Return `value` in `zone` (default: the active zone) followed by the zone label, e.g. "… 14:00 WITA"."""
    if value is None:
        return "—"
    tz = as_zone(zone)
    return f"{formats.date_format(value.astimezone(tz), fmt)} {zone_label(tz)}"


def format_zoned_with_utc(value: datetime | None, zone: str | tzinfo | None = None) -> str:
    """Return `value` in `zone` with UTC beside it, e.g. "… 14:00 WITA (06:00 UTC)" (for e-mails)."""
    if value is None:
        return "—"
    local = format_zoned(value, zone)
    if zone_label(zone) == "UTC":
        return local
    return f"{local} ({formats.date_format(value.astimezone(UTC), 'DATETIME_FORMAT')} UTC)"


# Provinces in Central (WITA) and Eastern (WIT) Indonesia Time; every other province keeps WIB.
_WITA_PROVINCES = frozenset(
    {"ID-BA", "ID-NB", "ID-NT", "ID-KS", "ID-KI", "ID-KU"}
    | {"ID-SA", "ID-ST", "ID-SG", "ID-SN", "ID-SR", "ID-GO"}
)
_WIT_PROVINCES = frozenset({"ID-MA", "ID-MU", "ID-PA", "ID-PB", "ID-PD", "ID-PT", "ID-PE", "ID-PS"})


def zone_for_province(province: str | None) -> str:
    """Return the zone name of a province code (ID-XX); national bodies (no province) read WIB."""
    if province in _WITA_PROVINCES:
        return "Asia/Makassar"
    if province in _WIT_PROVINCES:
        return "Asia/Jayapura"
    return "Asia/Jakarta"
