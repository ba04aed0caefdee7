import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import CommentKind, DeadlineRule, Incident, Status
from portal.accounts.models import Role, Sector
from portal.audit.models import AuditEvent
from tests.conftest import make_member, make_operator
from tests.incidents.conftest import staff_client
from tests.incidents.helpers import file_incident, pdf_upload

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:incidents_incident_changelist"


def _change_url(incident):
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def _refs(response) -> set[str]:
    return {i.reference for i in response.context["cl"].result_list}


def test_the_changelist_shows_reported_incidents_not_drafts(analyst_client, operator, reporter):
    submitted = file_incident(operator, reporter)
    draft = file_incident(operator, reporter, submit=False)
    response = analyst_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert _refs(response) == {submitted.reference}
    assert analyst_client.get(_change_url(draft)).status_code in (302, 404)


def test_the_changelist_filters_and_searches(
    analyst_client, analyst, operator, reporter, iiv_operator, iiv_reporter
):
    fintech = make_operator("pay", sector=Sector.FINTECH_PAYMENT)
    pay_reporter = make_member(fintech, Role.REPORTER)
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        old = file_incident(operator, reporter, category="phishing", severity="low")  # final report overdue
    iiv = file_incident(iiv_operator, iiv_reporter, category="ddos")
    personal = file_incident(
        fintech,
        pay_reporter,
        personal_data_involved=True,
        personal_data_categories=["contact"],
        data_subjects_count=9,
        severity="critical",
    )
    services.assign(incident=iiv, actor=analyst, assignee=analyst)
    services.update_assessment(incident=old, actor=analyst, data={"bssn_severity": "critical"})
    url = reverse(CHANGELIST)
    cases = {
        "deadline=overdue": {old.reference},
        "operator__sector__exact=fintech_payment": {personal.reference},
        "operator__is_iiv__exact=1": {iiv.reference},
        "personal_data_involved__exact=1": {personal.reference},
        "category__exact=ddos": {iiv.reference},
        "severity=critical": {old.reference, personal.reference},
        f"assignee={analyst.pk}": {iiv.reference},
        "assignee=none": {old.reference, personal.reference},
        "status__exact=submitted": {old.reference, iiv.reference, personal.reference},
        f"q={iiv.reference}": {iiv.reference},
        "q=pay": {personal.reference},
    }
    for query, expected in cases.items():
        response = analyst_client.get(f"{url}?{query}")
        assert response.status_code == 200, query
        assert _refs(response) == expected, query
    overdue_page = analyst_client.get(url).content.decode()
    assert "incident-overdue" in overdue_page


def test_the_changelist_query_count_does_not_grow_with_rows(analyst_client, operator, reporter):
    def add(n):
        for i in range(n):
            file_incident(
                operator,
                reporter,
                personal_data_involved=True,
                personal_data_categories=["contact"],
                data_subjects_count=i,
            )

    url = reverse(CHANGELIST) + "?deadline=open&status__exact=submitted"
    add(1)  # one page against three: the count must not change
    analyst_client.get(url)
    with CaptureQueriesContext(connection) as fewer:
        analyst_client.get(url)
    add(69)
    with CaptureQueriesContext(connection) as more:
        response = analyst_client.get(url)
    assert len(_refs(response)) == 25 and response.context["cl"].result_count == 70
    assert len(more.captured_queries) == len(fewer.captured_queries)


def test_the_change_page_shows_the_whole_case(analyst_client, analyst, operator, reporter):
    incident = file_incident(operator, reporter)
    services.add_evidence(incident=incident, actor=reporter, upload=pdf_upload("firewall.pdf"))
    services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.NOTE, body="Call the CISO")
    services.add_operator_comment(incident=incident, actor=reporter, body="Any news?")
    text = analyst_client.get(_change_url(incident)).content.decode()
    for expected in (
        "firewall.pdf",
        "Call the CISO",
        "Any news?",
        "Laporan akhir",  # the rule's name in the reader's language
        incident.title,
        "incident-internal",
        'id="incident-message"',
        'id="incident-transition"',
    ):
        assert expected in text, expected


def test_the_analyst_asks_for_information_from_the_change_page(
    analyst_client, operator, reporter, mailoutbox, django_capture_on_commit_callbacks
):
    incident = file_incident(operator, reporter)
    url = reverse("admin:incidents_incident_message", args=[incident.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = analyst_client.post(url, {"kind": CommentKind.REQUEST, "body": "Send the firewall logs"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.AWAITING_OPERATOR
    assert [m.to for m in mailoutbox] == [[reporter.email]]
    assert "Send the firewall logs" in mailoutbox[0].body


def test_only_a_supervisor_closes_from_the_change_page(analyst_client, supervisor_client, operator, reporter):
    incident = file_incident(operator, reporter)
    url = reverse("admin:incidents_incident_transition", args=[incident.pk])
    response = analyst_client.post(url, {"to_status": "closed", "reason": "Done"}, follow=True)
    assert Incident.objects.get(pk=incident.pk).status == Status.SUBMITTED
    assert response.status_code == 200 and list(response.context["messages"])
    supervisor_client.post(url, {"to_status": "closed", "reason": "Done"})
    assert Incident.objects.get(pk=incident.pk).status == Status.CLOSED


def test_the_change_status_action_applies_with_a_reason_and_reports_refusals(
    supervisor_client, operator, reporter, supervisor
):
    one, two = file_incident(operator, reporter), file_incident(operator, reporter)
    services.change_status(incident=two, actor=supervisor, to_status=Status.CLOSED, reason="Done")
    url = reverse(CHANGELIST)
    data = {"action": "change_status_action", "_selected_action": [one.pk, two.pk]}
    form_page = supervisor_client.post(url, data)
    assert form_page.status_code == 200 and "reason" in form_page.content.decode()
    response = supervisor_client.post(
        url, data | {"apply": "1", "to_status": "in_progress", "reason": "Working"}, follow=True
    )
    assert Incident.objects.get(pk=one.pk).status == Status.IN_PROGRESS
    assert Incident.objects.get(pk=two.pk).status == Status.CLOSED  # closed → in progress is not a transition
    assert any(two.reference in str(m) for m in response.context["messages"])


def test_the_assign_actions(analyst_client, analyst, supervisor, operator, reporter):
    incident = file_incident(operator, reporter)
    url = reverse(CHANGELIST)
    analyst_client.post(url, {"action": "assign_to_me", "_selected_action": [incident.pk]})
    assert Incident.objects.get(pk=incident.pk).assignee == analyst
    analyst_client.post(
        url,
        {"action": "assign_to", "_selected_action": [incident.pk], "apply": "1", "assignee": supervisor.pk},
    )
    assert Incident.objects.get(pk=incident.pk).assignee == supervisor
    assert AuditEvent.objects.filter(action="incident.assign").count() == 2


def test_the_csv_export_holds_the_selection(analyst_client, analyst, operator, reporter):
    incident = file_incident(operator, reporter, title="=HYPERLINK(evil)")
    services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.NOTE, body="secret note")
    response = analyst_client.post(
        reverse(CHANGELIST), {"action": "export_csv", "_selected_action": [incident.pk]}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["reference"] for r in rows] == [incident.reference]
    assert rows[0]["title"].startswith("'=")  # no formula injection into spreadsheets
    assert "secret note" not in response.content.decode()


def test_a_supervisor_waives_a_deadline_with_a_reason(supervisor_client, analyst_client, operator, reporter):
    incident = file_incident(operator, reporter)
    obligation = incident.obligations.get()
    url = reverse("admin:incidents_incident_waive", args=[incident.pk, obligation.pk])
    analyst_client.post(url, {"reason": "x"})
    obligation.refresh_from_db()
    assert obligation.is_open
    supervisor_client.post(url, {"reason": "Handled by OJK"})
    obligation.refresh_from_db()
    assert obligation.waiver_reason == "Handled by OJK"


def test_bssn_downloads_evidence_through_an_audited_view(analyst_client, analyst, operator, reporter):
    incident = file_incident(operator, reporter)
    evidence = services.add_evidence(incident=incident, actor=reporter, upload=pdf_upload())
    response = analyst_client.get(
        reverse("admin:incidents_incident_evidence", args=[incident.pk, evidence.pk])
    )
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="incident.evidence_download").actor == analyst


def test_bssn_edits_its_assessment_but_not_the_operators_account(analyst_client, operator, reporter):
    incident = file_incident(operator, reporter)
    response = analyst_client.get(_change_url(incident))
    form = response.context["adminform"].form
    assert set(form.fields) == {"category", "bssn_severity", "tlp", "assignee", "outcome", "duplicate_of"}


def test_the_compliance_page_counts_deadlines(analyst_client, operator, reporter):
    file_incident(operator, reporter)
    response = analyst_client.get(reverse("admin:incidents_incident_compliance"))
    assert response.status_code == 200
    assert response.context["rows"][0]["total"] == 1


def test_deadline_rules_are_edited_by_supervisors_only(analyst_client, supervisor_client):
    rule = DeadlineRule.objects.get(code="final-report")
    url = reverse("admin:incidents_deadlinerule_change", args=[rule.pk])
    data = {
        "name": rule.name,
        "applies_when": rule.applies_when,
        "anchor": rule.anchor,
        "period_hours": 14 * 24,
        "met_by": rule.met_by,
        "remind_before_hours": 48,
        "legal_source": rule.legal_source,
        "is_active": "on",
    }
    analyst_client.post(url, data)
    assert DeadlineRule.objects.get(pk=rule.pk).period_hours == 30 * 24
    response = supervisor_client.post(url, data)
    assert response.status_code == 302
    assert DeadlineRule.objects.get(pk=rule.pk).period_hours == 14 * 24


def test_operator_members_cannot_open_the_admin(operator, reporter):
    client = staff_client(reporter)
    assert client.get(reverse(CHANGELIST)).status_code == 302


def test_pages_of_the_changelist_keep_their_order(analyst_client, operator, reporter):
    for i in range(30):
        with time_machine.travel(timezone.now() - timedelta(minutes=i)):
            file_incident(operator, reporter, title=f"Incident {i}")
    first = analyst_client.get(reverse(CHANGELIST))
    second = analyst_client.get(reverse(CHANGELIST) + "?p=2")
    titles = [i.title for i in first.context["cl"].result_list] + [
        i.title for i in second.context["cl"].result_list
    ]
    assert titles == [f"Incident {i}" for i in range(30)]
    assert second.context["cl"].result_count == 30


def test_sorting_by_the_next_deadline_puts_incidents_without_one_last_both_ways(
    analyst_client, operator, reporter
):
    now = timezone.now()
    for title, due in (
        ("soon", now + timedelta(hours=2)),
        ("later", now + timedelta(days=3)),
        ("none", None),
    ):
        incident = file_incident(operator, reporter, title=title)
        Incident.objects.filter(pk=incident.pk).update(next_due_at=due)
    column = 7  # "next deadline" in list_display
    soonest = analyst_client.get(reverse(CHANGELIST), {"o": str(column)}).context["cl"].result_list
    latest = analyst_client.get(reverse(CHANGELIST), {"o": f"-{column}"}).context["cl"].result_list
    assert [i.title for i in soonest] == ["soon", "later", "none"]
    assert [i.title for i in latest] == ["later", "soon", "none"]
