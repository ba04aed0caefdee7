"""The triage-first incident change page: summary and decisions on top, the long account below."""

import pytest
from django.urls import reverse

from incidents import services
from incidents.models import Incident
from portal.audit.models import AuditEvent
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db


def _page(client, incident) -> str:
    return client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).content.decode()


def test_the_summary_and_the_decisions_come_before_the_operators_account(
    supervisor_client, analyst, iiv_operator, iiv_reporter
):
    incident = file_incident(
        iiv_operator, iiv_reporter, severity="high", personal_data_involved=True,
        personal_data_categories=["contact"], data_subjects_count=5,
    )  # fmt: skip
    services.update_assessment(incident=incident, actor=analyst, data={"bssn_severity": "critical"})
    page = _page(supervisor_client, incident)
    summary = page[page.index('id="incident-summary"') : page.index('id="incident-transition"')]
    for expected in (
        iiv_operator.name,
        "Tinggi",
        "Kritis",
        "TLP:AMBER",
        "WIB",
        "UU No. 27 Tahun 2022 (PDP), Pasal 46",
    ):
        assert expected in summary, expected
    order = [page.index(f'id="{anchor}"') for anchor in ("incident-summary", "incident-transition",
             "incident-assign", "incident-message", "incident-waive", "incident_form")]  # fmt: skip
    assert order == sorted(order)
    # The operator's account is collapsed below the assessment: a <details> around "As reported".
    account = page.index(incident.description)
    assert page.rfind("<details", 0, account) > page.index('id="incident_form"')


def test_the_next_deadline_falls_back_to_the_rules_name_without_a_legal_source(
    analyst_client, operator, reporter
):
    incident = file_incident(operator, reporter)
    obligation = incident.obligations.open().order_by("due_at").first()
    obligation.rule.source = ""
    obligation.rule.save()
    page = _page(analyst_client, incident)
    deadline = page[page.index('id="incident-next-deadline"') :][:800]
    assert obligation.rule.name_display in deadline and "WIB" in deadline


def test_the_analyst_assigns_from_the_top_of_the_page(
    analyst_client, analyst, supervisor, operator, reporter
):
    incident = file_incident(operator, reporter)
    url = reverse("admin:incidents_incident_assign", args=[incident.pk])
    assert analyst_client.post(url, {"assignee": str(analyst.pk)}).status_code == 302
    assert Incident.objects.get(pk=incident.pk).assignee == analyst
    analyst_client.post(url, {"assignee": str(supervisor.pk)})
    assert Incident.objects.get(pk=incident.pk).assignee == supervisor
    assert AuditEvent.objects.filter(action="incident.assign", target_id=str(incident.pk)).count() == 2
    response = analyst_client.post(url, {"assignee": str(reporter.pk)}, follow=True)
    assert Incident.objects.get(pk=incident.pk).assignee == supervisor
    assert list(response.context["messages"])


def test_the_status_history_reads_with_labels_not_codes(analyst_client, operator, reporter):
    incident = file_incident(operator, reporter)
    page = _page(analyst_client, incident)
    assert "(baru) → Draf" in page and "Draf → Terkirim" in page
    assert "∅" not in page and "→ submitted" not in page


def test_the_changelist_shows_the_triage_columns(analyst_client, analyst, iiv_operator, iiv_reporter):
    incident = file_incident(iiv_operator, iiv_reporter)
    services.assign(incident=incident, actor=analyst, assignee=analyst)
    response = analyst_client.get(reverse("admin:incidents_incident_changelist"))
    columns = [c["class_attrib"] for c in response.context["result_headers"]]
    for name in ("reference", "title", "operator", "status", "severity", "assignee", "deadline"):
        assert any(name in c for c in columns), name
    page = response.content.decode()
    assert analyst.get_full_name() in page and "WIB" in page
