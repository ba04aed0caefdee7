"""Every time shown to a person carries its zone."""

from datetime import UTC, datetime

from django.template import Context, Template
from django.utils import timezone

from portal.timefmt import format_zoned, format_zoned_with_utc, zone_label

NOON_UTC = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_each_indonesian_zone_has_its_label():
    assert zone_label("Asia/Jakarta") == "WIB"
    assert zone_label("Asia/Makassar") == "WITA"
    assert zone_label("Asia/Jayapura") == "WIT"
    assert zone_label(UTC) == "UTC"


def test_a_time_is_shown_in_the_given_zone_with_its_label():
    assert format_zoned(NOON_UTC, "Asia/Makassar").endswith("14.00 WITA")
    assert format_zoned(NOON_UTC, "Asia/Jayapura").endswith("15.00 WIT")


def test_the_active_zone_is_used_by_default():
    with timezone.override("Asia/Jakarta"):
        assert format_zoned(NOON_UTC).endswith("13.00 WIB")


def test_an_email_time_shows_utc_beside_the_local_time():
    text = format_zoned_with_utc(NOON_UTC, "Asia/Jakarta")
    assert "13.00 WIB (" in text and text.endswith("6.00 UTC)")


def test_the_template_filters_label_the_zone():
    rendered = Template(
        '{% load portal_tags %}{{ t|zoned:"Asia/Makassar" }}|{{ t|zoned_utc:"Asia/Jayapura" }}'
    ).render(Context({"t": NOON_UTC}))
    local, email = rendered.split("|")
    assert local.endswith("WITA")
    assert "WIT (" in email and email.endswith("UTC)")


def test_a_missing_time_is_a_dash():
    assert format_zoned(None) == "—"


def test_a_province_reads_its_own_zone():
    from portal.timefmt import zone_for_province

    assert [zone_label(zone_for_province(p)) for p in ("ID-JK", "ID-SN", "ID-PA", "")] == [
        "WIB",
        "WITA",
        "WIT",
        "WIB",
    ]
