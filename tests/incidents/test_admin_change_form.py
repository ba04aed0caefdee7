"""The incident change form as BSSN uses it: the rendered form, changed and posted back."""

import pytest
from django.urls import reverse

from incidents.models import Incident, Status, StatusChange
from portal.audit.models import AuditEvent
from tests.admin_html import form_data
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db


def _change_url(incident) -> str:
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def _post_form(client, incident, **changes):
    """Open the change page, change fields as a person would, and press Save."""
    url = _change_url(incident)
    data = form_data(client.get(url), "incident_form")
    for name, value in changes.items():
        data[name] = [value]
    return client.post(url, data | {"_save": ["Save"]})


def test_the_unchanged_form_saves_and_changes_nothing(analyst_client, operator, reporter):
    incident = file_incident(operator, reporter)
    events = AuditEvent.objects.count()
    response = _post_form(analyst_client, incident)
    assert response.status_code == 302
    fresh = Incident.objects.get(pk=incident.pk)
    assert (fresh.tlp, fresh.bssn_severity, fresh.assignee_id) == (incident.tlp, "", None)
    assert not AuditEvent.objects.filter(pk__gt=events, action="incident.assess").exists()


def test_the_analyst_sets_the_assessment_through_the_form(analyst_client, analyst, operator, reporter):
    incident = file_incident(operator, reporter)
    response = _post_form(
        analyst_client,
        incident,
        bssn_severity="critical",
        category="data_leak",
        tlp="red",
        assignee=str(analyst.pk),
        outcome="Contained by the operator.",
    )
    assert response.status_code == 302
    fresh = Incident.objects.get(pk=incident.pk)
    assert (fresh.bssn_severity, fresh.category, fresh.tlp, fresh.assignee) == (
        "critical",
        "data_leak",
        "red",
        analyst,
    )
    assert fresh.outcome == "Contained by the operator."
    assess = AuditEvent.objects.get(action="incident.assess", target_id=str(incident.pk))
    assert set(assess.changes) == {"bssn_severity", "category", "tlp", "outcome"}
    assert AuditEvent.objects.filter(action="incident.assign", target_id=str(incident.pk)).exists()


def test_a_non_staff_assignee_is_a_form_error(analyst_client, operator, reporter):
    incident = file_incident(operator, reporter)
    response = _post_form(analyst_client, incident, assignee=str(reporter.pk), tlp="red")
    assert response.status_code == 200
    assert "assignee" in response.context["adminform"].form.errors
    assert Incident.objects.get(pk=incident.pk).tlp == incident.tlp


def test_the_supervisor_names_the_original_and_the_incident_closes_as_duplicate(
    supervisor_client, operator, reporter
):
    original = file_incident(operator, reporter)
    incident = file_incident(operator, reporter)
    response = _post_form(supervisor_client, incident, duplicate_of=original.reference.lower())
    assert response.status_code == 302
    fresh = Incident.objects.get(pk=incident.pk)
    assert (fresh.status, fresh.duplicate_of) == (Status.DUPLICATE, original)
    change = StatusChange.objects.filter(incident=incident).latest("created_at")
    assert change.to_status == Status.DUPLICATE and original.reference in change.reason
    # The page of a duplicate shows its original, and posting it back unchanged keeps it.
    assert _post_form(supervisor_client, fresh).status_code == 302
    assert Incident.objects.get(pk=incident.pk).duplicate_of == original


def test_an_analyst_cannot_mark_a_duplicate_and_is_told_why(analyst_client, operator, reporter):
    original = file_incident(operator, reporter)
    incident = file_incident(operator, reporter)
    response = _post_form(analyst_client, incident, duplicate_of=original.reference)
    assert response.status_code == 200
    assert "duplicate_of" in response.context["adminform"].form.errors
    assert Incident.objects.get(pk=incident.pk).status == Status.SUBMITTED


@pytest.mark.parametrize("reference", ["INS-1999-000001", "nonsense", "\u00b2"])
def test_an_unknown_original_is_a_form_error(supervisor_client, operator, reporter, reference):
    incident = file_incident(operator, reporter)
    response = _post_form(supervisor_client, incident, duplicate_of=reference)
    assert response.status_code == 200
    assert "duplicate_of" in response.context["adminform"].form.errors
    assert Incident.objects.get(pk=incident.pk).status == Status.SUBMITTED


@pytest.mark.parametrize("value", ["\u00b2", "99999999999999999999", "abc"])
def test_the_assignee_filter_ignores_a_value_that_is_not_an_id(analyst_client, value):
    url = reverse("admin:incidents_incident_changelist")
    assert analyst_client.get(url, {"assignee": value}).status_code == 200
