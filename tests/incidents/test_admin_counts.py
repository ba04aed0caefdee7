"""Admin lists of millions of rows: exact counts up to a cap, then "more than" or "about"."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from incidents.admin import IdsFirstPaginator
from incidents.admin_observables import IndicatorCountPaginator
from incidents.models import Incident, Observable
from portal import admin_counts
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

INCIDENTS = reverse("admin:incidents_incident_changelist")
OBSERVABLES = reverse("admin:incidents_observable_changelist")


@pytest.fixture
def analyst_client(analyst_client):
    analyst_client.cookies["django_language"] = "en"
    return analyst_client


def _counted(page: str) -> str:
    found = re.search(
        r'<nav class="paginator".*?</h2>\s*(?:<ul>.*?</ul>)?\s*(.*?)\s*(?:<span|<a |</nav>)', page, re.S
    )
    return found.group(1)


def test_a_list_past_the_cap_says_more_than_and_its_pages_stop_there(
    analyst_client, monkeypatch, operator, reporter
):
    monkeypatch.setattr(IdsFirstPaginator, "cap", 3)
    for _ in range(5):
        file_incident(operator, reporter, category="phishing")
    page = analyst_client.get(INCIDENTS, {"category__exact": "phishing"}).content.decode()
    assert _counted(page) == "more than 3 incidents"
    assert "The pages stop there: filter or search to narrow the list." in page
    # Under the cap the count is exact, and a search always counts exactly.
    exact = analyst_client.get(INCIDENTS, {"category__exact": "malware"}).content.decode()
    assert _counted(exact) == "0 incidents"
    searched = analyst_client.get(INCIDENTS, {"q": operator.name}).content.decode()
    assert _counted(searched) == "5 incidents" and "5 results" in searched


@pytest.mark.postgres
def test_an_unfiltered_list_past_the_cap_gives_the_estimated_size(
    analyst_client, monkeypatch, operator, reporter
):
    monkeypatch.setattr(IdsFirstPaginator, "cap", 3)
    for _ in range(5):
        file_incident(operator, reporter)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
    page = analyst_client.get(INCIDENTS).content.decode()
    assert _counted(page) == "about 5 incidents"


@pytest.mark.postgres
def test_a_count_out_of_time_gives_the_planners_estimate_and_restores_the_timeout(operator, reporter):
    for _ in range(3):
        file_incident(operator, reporter)
    slow = Incident.objects.extra(where=["pg_sleep(0.2) IS NOT NULL"]).order_by("-pk")  # noqa: S610
    paginator = admin_counts.CappedCountPaginator(slow, 25)
    assert paginator.count == paginator.estimated and paginator.estimated >= 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"  # the budget did not leak to the next queries


def test_the_shared_indicator_list_counts_five_pages_and_no_more(
    analyst_client, monkeypatch, reporter, operator
):
    monkeypatch.setattr(IndicatorCountPaginator, "cap", 1000)
    from incidents import admin_observables

    monkeypatch.setattr(admin_observables, "SHARED_CAP", 2)
    other = file_incident(operator, reporter)
    for incident in (file_incident(operator, reporter), other):
        Observable.objects.create(incident=incident, operator=operator, kind="domain", value="a.example")
    assert analyst_client.get(OBSERVABLES).context["cl"].paginator.cap == 1000
    shared = analyst_client.get(OBSERVABLES, {"shared": "operators"}).context["cl"]
    assert shared.paginator.cap == 2


def test_the_lists_make_as_many_queries_at_any_size(
    analyst_client, operator, reporter, other_operator, other_reporter
):
    urls = [
        INCIDENTS,
        INCIDENTS + "?category__exact=ransomware&p=1",
        INCIDENTS + "?o=-7",
        OBSERVABLES,
        OBSERVABLES + "?shared=operators",
    ]

    def queries() -> list[int]:
        counts = []
        for url in urls:
            analyst_client.get(url)
            with CaptureQueriesContext(connection) as captured:
                assert analyst_client.get(url).status_code == 200
            counts.append(len(captured.captured_queries))
        return counts

    def add(n: int) -> None:
        for i in range(n):
            mine = file_incident(operator, reporter, category="ransomware")
            theirs = file_incident(other_operator, other_reporter)
            for incident in (mine, theirs):
                Observable.objects.create(
                    incident=incident, operator=incident.operator, kind="domain", value=f"shared-{i}.example"
                )

    add(1)
    fewer = queries()
    add(30)
    assert queries() == fewer
