from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Incident, IncidentReport, Status
from tests.incidents.helpers import file_incident, form_data

pytestmark = pytest.mark.django_db


def _url(name, incident=None, operator=None, **kwargs):
    operator = operator or incident.operator
    if incident is not None:
        kwargs["reference"] = incident.reference
    return reverse(f"incidents:{name}", kwargs={"operator_slug": operator.slug, **kwargs})


def test_a_reporter_saves_a_draft_then_submits_it(client_for, reporter, operator):
    client = client_for(reporter)
    response = client.post(_url("create", operator=operator), form_data() | {"action": "save"})
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == incident.get_absolute_url()
    assert incident.status == Status.DRAFT
    page = client.get(incident.get_absolute_url())
    assert page.status_code == 200 and incident.reference in page.content.decode()
    response = client.post(_url("submit", incident))
    incident.refresh_from_db()
    assert incident.status == Status.SUBMITTED and incident.reports.count() == 1


def test_times_are_read_in_the_organisations_zone(client_for, reporter, operator):
    operator.timezone = "Asia/Jayapura"  # WIT, UTC+9
    operator.save()
    data = form_data() | {
        "aware_at": "2026-01-05T09:00",
        "occurred_at": "2026-01-05T08:00",
        "detected_at": "2026-01-05T08:30",
        "action": "save",
    }
    client_for(reporter).post(_url("create", operator=operator), data)
    assert Incident.objects.get().aware_at.isoformat() == "2026-01-05T00:00:00+00:00"


def test_a_missing_required_field_is_named_and_nothing_is_saved(client_for, reporter, operator):
    data = form_data(title="") | {"action": "save"}
    response = client_for(reporter).post(_url("create", operator=operator), data)
    assert response.status_code == 200
    assert (
        "Nothing was saved" in response.content.decode()
        or "Tidak ada yang disimpan" in response.content.decode()
    )
    assert response.context["form"].errors["title"]
    assert not Incident.objects.exists()


def test_submitting_without_what_a_report_needs_is_refused_and_saves_nothing(client_for, reporter, operator):
    data = form_data(description="", chronology="") | {"action": "submit"}
    response = client_for(reporter).post(_url("create", operator=operator), data)
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"description", "chronology"}
    assert not Incident.objects.exists()


def test_aware_at_in_the_future_is_refused(client_for, reporter, operator):
    future = timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client_for(reporter).post(
        _url("create", operator=operator), form_data() | {"aware_at": future, "action": "save"}
    )
    assert response.status_code == 200
    assert "future" in str(response.context["form"].errors["aware_at"]) or "masa depan" in str(
        response.context["form"].errors["aware_at"]
    )
    assert not Incident.objects.exists()


def test_submitting_an_incomplete_draft_from_its_page_names_what_is_missing(client_for, reporter, operator):
    incident = file_incident(operator, reporter, submit=False, chronology="")
    response = client_for(reporter).post(_url("submit", incident), follow=True)
    assert Incident.objects.get(pk=incident.pk).status == Status.DRAFT
    text = response.content.decode()
    assert "chronology" in text.lower() or "kronologi" in text.lower()


def test_a_submitted_incident_is_not_edited_in_place(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    response = client_for(reporter).post(
        _url("edit", incident), form_data(title="Changed") | {"action": "save"}
    )
    assert response.status_code == 302
    assert Incident.objects.get(pk=incident.pk).title != "Changed"


def test_an_update_is_drafted_then_submitted_as_a_new_version(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    client = client_for(reporter)
    url = _url("report_edit", incident)
    assert client.get(url + "?kind=update").status_code == 200
    data = form_data(users_affected=5000) | {"kind": "update", "summary": "More users", "action": "save"}
    client.post(url, data)
    draft = IncidentReport.objects.get(submitted_at__isnull=True)
    assert draft.data["users_affected"] == 5000
    assert Incident.objects.get(pk=incident.pk).users_affected == 1200  # a draft changes nothing yet
    client.post(url, data | {"action": "submit"})
    incident.refresh_from_db()
    assert incident.users_affected == 5000
    assert list(incident.reports.values_list("number", "kind")) == [(1, "initial"), (2, "update")]
    page = client.get(_url("report_detail", incident, number=2))
    assert page.status_code == 200 and "More users" in page.content.decode()


def test_the_list_filters_and_paginates(client_for, reporter, operator):
    for i in range(27):
        file_incident(operator, reporter, submit=False, title=f"Phishing wave {i}", category="phishing")
    file_incident(operator, reporter, title="Server down", category="ddos", severity="critical")
    client = client_for(reporter)
    first = client.get(_url("list", operator=operator))
    assert len(first.context["page"].object_list) == 25
    second = client.get(_url("list", operator=operator) + "?page=2")
    assert len(second.context["page"].object_list) == 3
    ddos = client.get(_url("list", operator=operator) + "?category=ddos")
    assert [i.title for i in ddos.context["page"].object_list] == ["Server down"]
    critical = client.get(_url("list", operator=operator) + "?severity=critical&status=submitted")
    assert [i.title for i in critical.context["page"].object_list] == ["Server down"]


def test_the_list_query_count_does_not_grow_with_rows(client_for, reporter, operator):
    client = client_for(reporter)
    file_incident(operator, reporter)
    client.get(_url("list", operator=operator))  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as one_row:
        client.get(_url("list", operator=operator))
    for _ in range(10):
        file_incident(
            operator,
            reporter,
            personal_data_involved=True,
            personal_data_categories=["contact"],
            data_subjects_count=3,
        )
    with CaptureQueriesContext(connection) as many_rows:
        client.get(_url("list", operator=operator))
    assert len(many_rows.captured_queries) == len(one_row.captured_queries)


def test_a_viewer_reads_but_cannot_write(client_for, viewer, reporter, operator):
    incident = file_incident(operator, reporter)
    client = client_for(viewer)
    assert client.get(incident.get_absolute_url()).status_code == 200
    assert client.get(_url("create", operator=operator)).status_code == 403
    assert client.post(_url("comment", incident), {"body": "hi"}).status_code == 403
    assert incident.comments.count() == 0


def test_answering_a_request_moves_the_incident_back_to_bssn(client_for, reporter, operator, analyst):
    incident = file_incident(operator, reporter)
    services.add_bssn_comment(incident=incident, actor=analyst, kind="request", body="Which VPN?")
    client = client_for(reporter)
    page = client.get(incident.get_absolute_url()).content.decode()
    assert "Which VPN?" in page
    client.post(_url("comment", incident), {"body": "FortiGate"})
    incident.refresh_from_db()
    assert incident.status == Status.SUBMITTED
    assert incident.comments.get(body="FortiGate").kind == "answer"


def test_an_operator_confirms_the_personal_data_notice(client_for, reporter, operator):
    incident = file_incident(
        operator,
        reporter,
        personal_data_involved=True,
        personal_data_categories=["contact"],
        data_subjects_count=10,
    )
    obligation = incident.obligations.get(rule__code="pdp-failure-notice")
    given = timezone.localtime(timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    client_for(reporter).post(
        _url("obligation_confirm", incident, obligation_id=obligation.pk),
        {"given_at": given, "note": "E-mail to all users"},
    )
    obligation.refresh_from_db()
    assert obligation.met_at and obligation.met_note == "E-mail to all users"


def test_the_detail_page_shows_a_countdown_and_the_history(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    client = client_for(reporter)
    client.cookies["django_language"] = "en"
    text = client.get(incident.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Due in" in text and "Final report" in text
    assert "Status history" in text


def test_pages_speak_indonesian_by_default(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    text = client_for(reporter).get(incident.get_absolute_url()).content.decode()
    assert "Riwayat status" in text and "Tenggat" in text
