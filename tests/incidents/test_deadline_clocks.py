"""Each deadline counts from the moment its legal source names, and shows that source and its zone."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.apps import apps
from django.urls import reverse

from incidents.models import DeadlineRule, Obligation
from incidents.seed import IIV_SOURCE, PDP_SOURCE
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PERSONAL = {"personal_data_involved": True, "personal_data_categories": ["contact"], "data_subjects_count": 5}


def test_the_iiv_initial_report_is_due_24_hours_after_detection_not_awareness(iiv_operator, iiv_reporter):
    # Detected 16 hours before anyone was aware: Pasal 15(5) counts from discovery.
    with time_machine.travel(T0, tick=False):
        incident = file_incident(
            iiv_operator,
            iiv_reporter,
            submit=False,
            occurred_at=T0 - 20 * HOUR,
            detected_at=T0 - 19 * HOUR,
            aware_at=T0 - 3 * HOUR,
        )
    obligation = incident.obligations.get(rule__code="iiv-initial-report")
    assert obligation.due_at == T0 + 5 * HOUR  # detected_at + 24 h, not aware_at + 24 h (T0 + 21 h)
    assert obligation.legal_source == IIV_SOURCE


def test_the_personal_data_notice_still_counts_from_awareness(operator, reporter):
    with time_machine.travel(T0, tick=False):
        incident = file_incident(
            operator, reporter, occurred_at=T0 - 31 * HOUR, detected_at=T0 - 30 * HOUR, **PERSONAL
        )
    obligation = incident.obligations.get(rule__code="pdp-failure-notice")
    assert obligation.due_at == incident.aware_at + 72 * HOUR
    assert "Pasal 46" in obligation.legal_source


def test_the_operator_page_shows_each_deadline_with_its_source_and_zone(client_for, operator, reporter):
    operator.timezone = "Asia/Makassar"
    operator.save()
    with time_machine.travel(T0, tick=False):
        incident = file_incident(operator, reporter, **PERSONAL)
    client = client_for(reporter)
    client.cookies["django_language"] = "en"
    text = client.get(incident.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    pdp = incident.obligations.get(rule__code="pdp-failure-notice")
    # Due T0 + 69 h = 4 March 22:00 UTC = 5 March 06:00 WITA.
    assert pdp.due_at == T0 + 69 * HOUR
    assert "Due March 5, 2026, 6 a.m. WITA" in text
    assert PDP_SOURCE in text
    assert "BSSN internal service level (not a statutory deadline)" in text
    assert "counted from: When the operator became aware" in text
    # Indonesian readers get the service level in Indonesian; statute citations stay as written.
    client.cookies["django_language"] = "id"
    text_id = client.get(incident.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="id").content.decode()
    assert "Tingkat layanan internal BSSN" in text_id and PDP_SOURCE in text_id


def test_the_list_shows_the_next_deadline_with_its_zone(client_for, operator, reporter):
    with time_machine.travel(T0, tick=False):
        file_incident(operator, reporter)
    text = client_for(reporter).get(reverse("incidents:list", args=[operator.slug])).content.decode()
    assert "WIB" in text


def test_the_compliance_view_shows_the_legal_source_of_each_row(analyst_client, iiv_operator, iiv_reporter):
    file_incident(iiv_operator, iiv_reporter, **PERSONAL)
    response = analyst_client.get(reverse("admin:incidents_incident_compliance"))
    text = response.content.decode()
    assert IIV_SOURCE in text and PDP_SOURCE in text
    assert {row["legal_source"] for row in response.context["rows"]} >= {IIV_SOURCE, PDP_SOURCE}


def test_the_data_migration_corrects_the_iiv_rule_and_recomputes_open_obligations(iiv_operator, iiv_reporter):
    migration = importlib.import_module("incidents.migrations.0006_deadline_anchor_and_legal_source")
    now = datetime.now(UTC)
    detected, aware = now - 10 * HOUR, now - 2 * HOUR
    open_one = file_incident(
        iiv_operator, iiv_reporter, submit=False, occurred_at=detected, detected_at=detected, aware_at=aware
    )
    met_one = file_incident(
        iiv_operator, iiv_reporter, occurred_at=detected, detected_at=detected, aware_at=aware
    )
    # The database as the first seed left it: counted from awareness, the old citation.
    DeadlineRule.objects.filter(code="iiv-initial-report").update(
        anchor="aware_at", legal_source="Peraturan BSSN No. 1 Tahun 2024, Pasal 15(5)–(6)"
    )
    DeadlineRule.objects.filter(code="final-report").update(legal_source="Our own wording")
    Obligation.objects.filter(rule__code="iiv-initial-report").update(
        due_at=aware + 24 * HOUR, remind_at=aware + 18 * HOUR, reminder_sent_at=now - HOUR
    )
    met_due = met_one.obligations.get(rule__code="iiv-initial-report").due_at

    migration.correct(apps, None)

    rule = DeadlineRule.objects.get(code="iiv-initial-report")
    assert (rule.anchor, rule.legal_source) == ("detected_at", IIV_SOURCE)
    assert DeadlineRule.objects.get(code="final-report").legal_source == "Our own wording"
    assert "ayat (1)" in DeadlineRule.objects.get(code="pdp-failure-notice").legal_source
    corrected = open_one.obligations.get(rule__code="iiv-initial-report")
    assert corrected.due_at == detected + 24 * HOUR
    assert corrected.remind_at == detected + 18 * HOUR
    # The new reminder time is still ahead (now + 8 h): the operator hears of the earlier time.
    assert corrected.reminder_sent_at is None
    open_one.refresh_from_db()
    assert open_one.next_due_at == detected + 24 * HOUR
    # A met obligation is history: untouched.
    assert met_one.obligations.get(rule__code="iiv-initial-report").due_at == met_due


def test_the_json_export_names_each_deadlines_source_and_clock(client_for, iiv_operator, iiv_reporter):
    incident = file_incident(iiv_operator, iiv_reporter)
    url = reverse("incidents:export_json", args=[iiv_operator.slug, incident.reference])
    deadlines = {d["rule"]: d for d in client_for(iiv_reporter).get(url).json()["deadlines"]}
    assert deadlines["iiv-initial-report"]["legal_source"] == IIV_SOURCE
    assert deadlines["iiv-initial-report"]["counted_from"] == "detected_at"
