"""The time sweep: every operator page shows its times with a zone label, in the operator's zone.

An organisation in Makassar (WITA) opens every operator page that answers a GET
(the routes of tests/test_isolation.py, with the same object factories) after
something happened in each area: an incident with reports, messages and deadlines,
a published policy with consent events and an import, a suspected-case flag, an
invitation. A time in the visible text ("14.05", "14:05") must be followed by a zone
label, and the label of local times must be WITA.
"""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from incidents import services as incident_services
from portal.accounts.models import Role, Sector, TimeZone
from portal.accounts.services import invite_member
from tests.conftest import make_member, make_operator
from tests.incidents.helpers import file_incident
from tests.test_isolation import _make_objects, _operator_routes, _url

# A clock time as the formats print it (id: "14.05", en: "2:05 p.m.", "2 p.m.", "noon"), then the
# word after it; not part of a date, a version or a UTC offset ("+07:00", which carries its zone).
TIME = re.compile(
    r"(?<![\d.:/+-])(?:(\d{1,2})[.:](\d{2})(?![\d.:/-])(?:\s*[ap]\.m\.)?|\d{1,2}\s*[ap]\.m\.|noon|midnight)"
    r"\s*(\S*)"
)
ZONE_LABELS = {"WIB", "WITA", "WIT", "UTC"}


# Fixed times (pages and e-mails are checked for 01:00 UTC), all in the past: occurred 2 h and
# detected 1 h before the operator became aware.
_AWARE = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
AWARE_AT_01_UTC = {
    "occurred_at": _AWARE - timedelta(hours=2),
    "detected_at": _AWARE - timedelta(hours=1),
    "aware_at": _AWARE,
}


def _visible_text(page: str) -> str:
    """Return the text a person reads: no tags or attribute values (form inputs hold ISO times)."""
    page = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]*>", " ", page))


def _times(text: str) -> list[tuple[str, str]]:
    """Return (time, the word after it) for every clock time in `text` (not "73.71", a regency code)."""
    return [
        (m.group(0).strip(), m.group(3).strip("(),;·"))
        for m in TIME.finditer(text)
        if m.group(1) is None or (int(m.group(1)) < 24 and int(m.group(2)) < 60)
    ]


def test_the_time_pattern_finds_bare_and_labelled_times():
    text = "Due 30 Nov 2026, 14.05 WITA · met 9:30 · version 1.2 · 12/2026 · 73.71 · +07:00 · (10.00 UTC)"
    assert _times(text) == [("14.05 WITA", "WITA"), ("9:30 ·", ""), ("10.00 UTC)", "UTC")]
    english = "Nov. 30, 2026, 8 a.m. WITA · 2:05 p.m. · noon WIT"
    assert _times(english) == [("8 a.m. WITA", "WITA"), ("2:05 p.m. ·", ""), ("noon WIT", "WIT")]


def _populate(operator, admin, analyst) -> None:
    """Give every area of the operator's portal something with a time in it."""
    incident = file_incident(operator, admin, chronology="Alert, then the servers were isolated.")
    incident_services.add_bssn_comment(incident=incident, actor=analyst, body="Which systems?")
    invite_member(operator=operator, actor=admin, email="new@wita.example", role=Role.REPORTER)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["id", "en"])
def test_every_operator_page_shows_times_in_the_operators_zone_with_a_label(client_for, analyst, language):
    operator = make_operator("wita", sector=Sector.HEALTHTECH, timezone=TimeZone.WITA)
    admin = make_member(operator, Role.ADMIN, "admin@wita.example")
    admin.language = language
    admin.save()
    _populate(operator, admin, analyst)
    client = client_for(admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    unlabelled, labels, pages_with_times = [], set(), 0
    for name, _view in _operator_routes():
        url = _url(name, operator, _make_objects(name, operator, admin))
        response = client.get(url)
        if response.status_code == 405 or not response["Content-Type"].startswith("text/html"):
            continue  # POST-only actions and downloads show no page
        if response.status_code in (301, 302):
            continue
        assert response.status_code == 200, (name, response.status_code)
        assert f'<html lang="{language}">' in response.content.decode(), name
        times = _times(_visible_text(response.content.decode()))
        pages_with_times += bool(times)
        for shown, label in times:
            if label not in ZONE_LABELS:
                unlabelled.append(f"{name}: {shown!r}")
            labels.add(label)

    assert not unlabelled, "times without a zone:\n" + "\n".join(unlabelled)
    assert pages_with_times >= 8  # the sweep saw the incident, consent, case and member pages
    assert "WITA" in labels
    assert labels <= {"WITA", "UTC"}, labels


@pytest.mark.django_db
def test_a_deadline_is_shown_in_the_operators_zone(client_for):
    operator = make_operator("wita", timezone=TimeZone.WITA)
    admin = make_member(operator, Role.ADMIN, "admin@wita.example")
    incident = file_incident(operator, admin, **AWARE_AT_01_UTC)

    response = client_for(admin).get(incident.get_absolute_url())

    # Became aware at 01:00 UTC is 09:00 in Makassar (UTC+8).
    assert "9.00 WITA" in _visible_text(response.content.decode())


def test_the_zone_is_not_left_active_after_an_operator_page(client_for, db):
    operator = make_operator("wita", timezone=TimeZone.WITA)
    admin = make_member(operator, Role.ADMIN, "admin@wita.example")
    client_for(admin).get(f"/o/{operator.slug}/incidents/")

    assert timezone.get_current_timezone_name() == "Asia/Jakarta"
