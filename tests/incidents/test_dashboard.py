"""BSSN's dashboard: charts with their numbers, filters, downloads, and who may open it."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.models import Obligation
from tests.factories import cases_make_flag
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

URL = reverse("admin:dashboard")


@pytest.fixture
def analyst_client(analyst_client):
    analyst_client.cookies["django_language"] = "en"
    return analyst_client


@pytest.fixture
def world(operator, reporter, other_operator, other_reporter, healthtech_operator):
    file_incident(operator, reporter, category="phishing")
    file_incident(operator, reporter, category="malware")
    file_incident(other_operator, other_reporter, category="phishing")
    onset = timezone.localdate() - timedelta(days=3)
    first = cases_make_flag(healthtech_operator, onset_date=onset)
    cases_make_flag(healthtech_operator, onset_date=onset, duplicate_of=first)


def _table(page: str, key: str) -> str:
    section = re.search(rf'<section class="dashboard-panel" id="panel-{key}".*?</section>', page, re.S)
    assert section, key
    return section.group(0)


def test_the_dashboard_draws_each_panel_with_its_numbers(analyst_client, world):
    response = analyst_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    keys = ("weekly_sector", "weekly_category", "open_age", "durations", "compliance", "epicurve", "delivery")
    for key in keys:
        assert f'id="panel-{key}"' in page
    sector = _table(page, "weekly_sector")
    assert "<svg" in sector
    # This week's row: two e-commerce incidents, one fintech payment.
    assert re.search(r"<th scope=\"row\">[\d-]+</th><td>2</td><td>1</td>", sector), sector
    # The epidemic curve counts a possible duplicate once.
    epicurve = _table(page, "epicurve")
    assert re.search(r"<td>1</td></tr>", epicurve) and "<td>2</td>" not in epicurve
    # Nothing the strict CSP would block: no inline style attribute, no script without a nonce.
    assert ' style="' not in page
    assert not re.search(r"<script(?![^>]*nonce=)[^>]*>", page)


def test_filters_narrow_every_panel(analyst_client, world, other_operator):
    page = analyst_client.get(URL, {"sector": other_operator.sector}).content.decode()
    sector = _table(page, "weekly_sector")
    assert re.search(r"<th scope=\"row\">[\d-]+</th><td>1</td></tr>", sector), sector
    bad = analyst_client.get(URL, {"since": "2026-05-01", "until": "2020-01-01"})
    assert bad.status_code == 400
    assert "after its end" in bad.content.decode()
    assert analyst_client.get(URL, {"province": "nowhere"}).status_code == 400


def test_each_panel_downloads_as_csv_and_xlsx(analyst_client, world):
    response = analyst_client.get(URL, {"download": "weekly_category", "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "Period" and set(rows[0][1:]) == {"Phishing", "Malware"}
    assert sum(int(v) for v in rows[1][1:]) == 3
    xlsx = analyst_client.get(URL, {"download": "compliance", "format": "xlsx"})
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert xlsx.content[:2] == b"PK"
    assert analyst_client.get(URL, {"download": "nonsense"}).status_code == 404


def test_deadline_compliance_counts_late_and_missed(analyst_client, operator, reporter):
    incident = file_incident(operator, reporter)
    obligations = list(Obligation.objects.filter(incident=incident).order_by("due_at"))
    assert obligations
    first = obligations[0]
    Obligation.objects.filter(pk=first.pk).update(
        due_at=timezone.now() - timedelta(hours=2), met_at=timezone.now() - timedelta(hours=1)
    )
    rows = list(csv.reader(io.StringIO(analyst_client.get(URL, {"download": "compliance"}).content.decode())))
    assert rows[0][3:] == ["Met on time", "Late", "Missed", "Waived"]
    assert sum(int(r[4]) for r in rows[1:]) == 1  # late


def test_only_bssn_staff_with_incident_access_open_it(client_for, reporter, analyst_client, world):
    assert client_for(reporter).get(URL).status_code == 302  # to the sign-in page
    index = analyst_client.get(reverse("admin:index")).content.decode()
    assert URL in index


def test_the_organisation_dashboard_shows_its_own_trends_only(client_for, reporter, operator, world):
    client = client_for(reporter)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("accounts:dashboard", args=[operator.slug])).content.decode()
    trends = re.search(r'<section class="card" id="trends">.*?</section>', page, re.S).group(0)
    month = timezone.localtime().strftime("%Y-%m")
    # Two of its own incidents this month; the other organisation's third is not counted.
    assert f'<th scope="row">{month}</th><td>2</td>' in trends
    assert "<svg" in trends and "Your deadline record" in trends


def test_time_to_triage_is_the_first_bssn_step_after_submission(analyst_client, analyst, operator, reporter):
    from incidents.models import StatusChange

    for hours in (2, 4, 6):
        incident = file_incident(operator, reporter)
        StatusChange.objects.create(
            incident=incident, from_status="submitted", to_status="triage", actor=analyst, by_bssn=True,
            created_at=incident.submitted_at + timedelta(hours=hours),
        )  # fmt: skip
    rows = list(csv.reader(io.StringIO(analyst_client.get(URL, {"download": "durations"}).content.decode())))
    assert rows[0][:3] == ["Month", "Triage p50 (h)", "Triage p90 (h)"]
    assert [float(v) for v in rows[1][1:3]] == [4.0, 5.6]
