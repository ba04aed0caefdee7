"""The dashboard at scale: summaries refreshed by beat give the live figures, and say how fresh they are."""

import csv
import io
import re
from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import dashboard, summaries
from incidents.models import DashboardRefresh, Incident, Obligation, StatusChange
from incidents.tasks import refresh_dashboard_task
from portal.alerts.models import Delivery, DeliveryStatus
from portal.timefmt import format_zoned
from tests.conftest import make_member, make_operator
from tests.factories import cases_make_flag
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

URL = reverse("admin:dashboard")
CATEGORIES = ["phishing", "malware", "ddos", "data_leak"]
# Days before now at which the seeded incidents were submitted: this week, several months
# back, across month and week boundaries, and over a year ago.
AGES = [0.2, 1.5, 3, 9, 16, 29, 33, 47, 61, 75, 90, 118, 150, 181, 200, 260, 330, 400]


@pytest.fixture
def analyst_client(analyst_client):
    analyst_client.cookies["django_language"] = "en"
    return analyst_client


@pytest.fixture
def seeded(operator, reporter, other_operator, other_reporter, healthtech_operator, analyst):
    """Incidents of four organisations (three sectors, two provinces) spread over a year and more.

    Each with its own triage and close times, deadlines met on time, late, missed or waived,
    alert deliveries delivered fast or slow or dead, and suspected-case flags (withdrawn and
    possible duplicates among them).
    """
    borneo = make_operator("borneo", sector="other", province="ID-KI", timezone="Asia/Makassar")
    borneo_reporter = make_member(borneo, "reporter")
    health_reporter = make_member(healthtech_operator, "reporter")
    people = [(operator, reporter), (other_operator, other_reporter), (borneo, borneo_reporter)]
    people.append((healthtech_operator, health_reporter))
    now = timezone.now()
    for n, days in enumerate(AGES * 2):
        who, user = people[n % len(people)]
        personal = {
            "personal_data_involved": True,
            "personal_data_categories": ["contact"],
            "data_subjects_count": n,
        }
        incident = file_incident(
            who, user, category=CATEGORIES[n % len(CATEGORIES)], **(personal if n % 3 else {})
        )
        submitted = now - timedelta(days=days, hours=n)
        triaged = submitted + timedelta(hours=1 + n % 7 * 3)
        closed = triaged + timedelta(hours=5 + n * 11) if n % 4 else None
        Incident.objects.filter(pk=incident.pk).update(
            submitted_at=submitted,
            created_at=submitted,
            closed_at=closed,
            status="closed" if closed else "triage",
        )
        StatusChange.objects.create(
            incident=incident, from_status="submitted", to_status="triage", actor=analyst, by_bssn=True,
            created_at=triaged,
        )  # fmt: skip
        for k, obligation in enumerate(Obligation.objects.filter(incident=incident).order_by("pk")):
            due = submitted + timedelta(hours=24 + 48 * k)
            outcome = (n + k) % 4
            met = {0: due - timedelta(hours=2), 1: due + timedelta(hours=3)}.get(outcome)
            Obligation.objects.filter(pk=obligation.pk).update(
                due_at=due,
                met_at=met,
                waived_at=due if outcome == 2 else None,
                waived_by=analyst if outcome == 2 else None,
                waiver_reason="Duplicate of another report." if outcome == 2 else "",
            )  # fmt: skip
        for k, delivery in enumerate(
            Delivery.objects.filter(alert__subject_id=str(incident.pk)).order_by("pk")
        ):
            dead = (n + k) % 5 == 0
            Delivery.objects.filter(pk=delivery.pk).update(
                created_at=submitted,
                status=DeliveryStatus.DEAD if dead else DeliveryStatus.DELIVERED,
                delivered_at=None if dead else delivery.alert.created_at + timedelta(seconds=1 + n % 6 * 7.3),
            )
            delivery.alert.__class__.objects.filter(pk=delivery.alert_id).update(created_at=submitted)
    today = timezone.localdate()
    for n, days in enumerate([2, 5, 12, 40, 41, 95, 200, 380]):
        flag = cases_make_flag(
            healthtech_operator,
            onset_date=today - timedelta(days=days),
            province=["ID-SN", "ID-JK", "ID-KI"][n % 3],
            classification=["suspect_a", "suspect_b"][n % 2],
            status="withdrawn" if n == 6 else "active",
        )
        cases_make_flag(
            healthtech_operator, onset_date=flag.onset_date, province=flag.province, duplicate_of=flag
        )
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() > 10
    assert Delivery.objects.filter(status=DeliveryStatus.DEAD).exists()


def _filters(*, days_back: int, days_to: int = 0, summary=None, **chosen) -> dashboard.Filters:
    zone = timezone.get_current_timezone()
    today = timezone.localdate()
    return dashboard.Filters(
        since=datetime.combine(today - timedelta(days=days_back), time.min, tzinfo=zone),
        until=datetime.combine(today - timedelta(days=days_to - 1), time.min, tzinfo=zone),
        summary=summary,
        **chosen,
    )


def _figures(panel: dashboard.Panel) -> tuple:
    return (
        [str(c) for c in panel.columns],
        panel.rows,
        panel.categories,
        {str(k): v for k, v in panel.series.items()},
        panel.p95_seconds,
        panel.p95_day,
        panel.dead_by_authority,
    )


FILTERS = [
    {"days_back": 7 * 26},  # the default period
    {"days_back": 365, "sector": "fintech_payment"},
    {"days_back": 3 * 365, "province": "ID-KI"},
    {"days_back": 3 * 365, "sector": "healthtech", "province": "ID-JK"},
    {"days_back": 103, "days_to": 17},  # starts and ends mid-week and mid-month
]


def test_the_summaries_give_the_live_figures_for_every_panel_and_filter(seeded):
    state = summaries.refresh()
    assert state.incidents == len(AGES) * 2
    compared = 0
    for chosen in FILTERS:
        live, summarised = _filters(**chosen), _filters(**chosen, summary=state)
        for key in dashboard.PANELS:
            if key == "compliance":  # "missed" counts deadlines due by the time of the refresh
                expected = dashboard.deadline_compliance(live, now=state.refreshed_at)
                got = dashboard.deadline_compliance(summarised, now=state.refreshed_at)
            else:
                expected, got = dashboard.PANELS[key](live), dashboard.PANELS[key](summarised)
            assert _figures(got) == _figures(expected), (key, chosen)
            compared += bool(expected.rows)
    assert compared >= 25  # the comparison saw figures, not empty panels


def test_time_to_triage_counts_the_months_the_period_touches_whole(seeded):
    state = summaries.refresh()
    # From the 20th of a month: that month's incidents before the 20th count too.
    zone = timezone.get_current_timezone()
    today = timezone.localdate()
    since = (today.replace(day=1) - timedelta(days=40)).replace(day=20)
    filters = dashboard.Filters(
        since=datetime.combine(since, time.min, tzinfo=zone),
        until=datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone),
    )
    live = dashboard.time_to_triage_and_close(filters).rows
    assert live[0][0] == since.strftime("%Y-%m")
    assert live == dashboard.time_to_triage_and_close(replace(filters, summary=state)).rows


def test_the_refresh_is_idempotent(seeded):
    def contents():
        return {model.__name__: sorted(model.objects.values_list()) for model in summaries.SUMMARY_MODELS}

    at = timezone.now()
    summaries.refresh(now=at)
    first = contents()
    summaries.refresh(now=at)
    # Ids differ (rows are replaced), the figures do not.
    strip = {name: sorted(row[1:] for row in rows) for name, rows in first.items()}
    assert strip == {name: sorted(row[1:] for row in rows) for name, rows in contents().items()}
    assert all(first.values())  # every table has rows
    assert DashboardRefresh.objects.count() == 1


def _panel(page: str, key: str) -> str:
    return re.search(rf'<section class="dashboard-panel" id="panel-{key}".*?</section>', page, re.S).group(0)


def _this_week(panel: str) -> list[int]:
    row = re.findall(r'<tr><th scope="row">[\d-]+</th>((?:<td>\d+</td>)+)</tr>', panel)[-1]
    return [int(v) for v in re.findall(r"<td>(\d+)</td>", row)]


def test_a_large_database_reads_the_summaries_and_says_how_fresh_they_are(
    analyst_client, settings, operator, reporter
):
    settings.DASHBOARD_LIVE_MAX_INCIDENTS = 0  # "large" from the first incident
    file_incident(operator, reporter)
    page = analyst_client.get(URL).content.decode()  # the first view fills the summaries
    state = DashboardRefresh.objects.get()
    when = format_zoned(state.refreshed_at, "Asia/Jakarta")
    assert when.endswith("WIB")
    weekly = _panel(page, "weekly_sector")
    assert f"Figures as of {when}, refreshed every 10 minutes." in weekly
    assert _this_week(weekly) == [1]
    # A second incident: the summarised panels wait for beat, the open incidents are live.
    file_incident(operator, reporter)
    page = analyst_client.get(URL).content.decode()
    assert _this_week(_panel(page, "weekly_sector")) == [1]
    assert "Live figures, computed at" in _panel(page, "open_age")
    assert re.search(r"<th scope=\"row\">&lt; 1 d</th><td>0</td><td>0</td><td>2</td>", page)
    refresh_dashboard_task()
    page = analyst_client.get(URL).content.decode()
    assert _this_week(_panel(page, "weekly_sector")) == [2]
    rows = list(
        csv.reader(io.StringIO(analyst_client.get(URL, {"download": "weekly_sector"}).content.decode()))
    )
    assert int(rows[-1][1]) == 2


def test_a_small_database_is_computed_live(analyst_client, operator, reporter):
    file_incident(operator, reporter)
    refresh_dashboard_task()  # beat ran, but 1 incident is below DASHBOARD_LIVE_MAX_INCIDENTS
    file_incident(operator, reporter)
    page = analyst_client.get(URL).content.decode()
    weekly = _panel(page, "weekly_sector")
    assert "Live figures, computed at" in weekly and "Figures as of" not in page
    assert _this_week(weekly) == [2]


def test_the_summarised_page_makes_as_many_queries_at_any_size(analyst_client, settings, operator, reporter):
    settings.DASHBOARD_LIVE_MAX_INCIDENTS = 0
    file_incident(operator, reporter)
    refresh_dashboard_task()
    analyst_client.get(URL)
    with CaptureQueriesContext(connection) as fewer:
        analyst_client.get(URL)
    for _ in range(12):
        file_incident(operator, reporter, category="malware")
    refresh_dashboard_task()
    with CaptureQueriesContext(connection) as more:
        analyst_client.get(URL)
    assert len(more.captured_queries) == len(fewer.captured_queries)


def test_beat_refreshes_the_dashboard_summaries():
    entries = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "incidents.tasks.refresh_dashboard_task"
    ]
    assert len(entries) == 1
    assert entries[0]["schedule"] == settings.DASHBOARD_REFRESH_MINUTES * 60
    refresh_dashboard_task()
    assert DashboardRefresh.objects.get().refreshed_at is not None


def test_a_table_too_long_for_the_page_is_offered_as_a_download(
    analyst_client, monkeypatch, operator, reporter
):
    monkeypatch.setattr(dashboard, "TABLE_MAX_ROWS", 0)
    file_incident(operator, reporter)
    page = analyst_client.get(URL).content.decode()
    weekly = _panel(page, "weekly_sector")
    assert "This table has 1 rows, too many to read on a page" in weekly and "<tbody>" not in weekly
    rows = list(
        csv.reader(io.StringIO(analyst_client.get(URL, {"download": "weekly_sector"}).content.decode()))
    )
    assert len(rows) == 2


def test_an_organisations_trends_from_the_summaries_equal_the_live_ones_in_its_own_zone(seeded):
    from portal.accounts.models import Operator

    state = summaries.refresh()
    compared = 0
    for operator in Operator.objects.all():
        with timezone.override(operator.timezone):  # as the organisation's pages count months
            live = dashboard.operator_trends(operator=operator, months=18, now=state.refreshed_at)
            summarised = dashboard.operator_trends(
                operator=operator, months=18, now=state.refreshed_at, summary=state
            )
        assert summarised["per_month"].rows == live["per_month"].rows, operator.timezone
        assert summarised["record"] == live["record"]
        compared += sum(n for _month, n in live["per_month"].rows)
    assert compared == len(AGES) * 2  # every incident is within the 18 months


def test_a_large_organisation_reads_its_trends_from_the_summaries(client_for, settings, operator, reporter):
    settings.DASHBOARD_LIVE_MAX_INCIDENTS = 0
    file_incident(operator, reporter)
    refresh_dashboard_task()
    file_incident(operator, reporter)  # after the refresh: counted at the next one
    client = client_for(reporter)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("accounts:dashboard", args=[operator.slug])).content.decode()
    trends = re.search(r'<section class="card" id="trends">.*?</section>', page, re.S).group(0)
    when = format_zoned(DashboardRefresh.objects.get().refreshed_at, operator.timezone)
    assert f"Figures as of {when}, refreshed every 10 minutes." in trends
    assert f'<th scope="row">{timezone.localtime().strftime("%Y-%m")}</th><td>1</td>' in trends
