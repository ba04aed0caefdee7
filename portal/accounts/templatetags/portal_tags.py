from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def minutes(value: timedelta | None) -> int:
    """Return a duration in whole minutes, rounded up (for messages such as lockouts)."""
    if not value:
        return 0
    return -(-int(value.total_seconds()) // 60)


@register.filter
def zoned(value, zone=None) -> str:
    """Show a datetime with its zone label (WIB, WITA, WIT or UTC).

    `{{ t|zoned }}` uses the active zone, `{{ t|zoned:"Asia/Makassar" }}` a given one.

    Every time shown to a person carries its zone (portal/timefmt.py).
    """
    from portal.timefmt import format_zoned

    return format_zoned(value, zone or None)


@register.filter
def zoned_utc(value, zone=None) -> str:
    """Show a datetime in `zone` with UTC beside it (e-mails): `{{ t|zoned_utc:recipient_zone }}`."""
    from portal.timefmt import format_zoned_with_utc

    return format_zoned_with_utc(value, zone or None)


@register.filter
def zoned_short(value, zone=None) -> str:
    """Like `zoned`, in the short date format (tables): `{{ t|zoned_short }}`."""
    from portal.timefmt import format_zoned

    return format_zoned(value, zone or None, fmt="SHORT_DATETIME_FORMAT")
