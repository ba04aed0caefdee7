"""BSSN admin: pseudonymous flags, the audited identity vault, definitions as data, the dashboard."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from incidents.cases.models import CaseDefinition, CaseIdentity
from incidents.cases.seed import WHO_2020, WHO_2022
from portal.audit.models import AuditEvent
from tests.cases.conftest import NAME, NIK, NOTE, PHONE, flag_post
from tests.conftest import make_operator
from tests.factories import cases_make_flag

pytestmark = pytest.mark.django_db


@pytest.fixture
def flag(client_for, ht_reporter, healthtech_operator):
    data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a"}
    client_for(ht_reporter).post(reverse("cases:flag_create", args=[healthtech_operator.slug]), data)
    return healthtech_operator.case_flags.get()


def test_an_analyst_sees_flags_without_identity(staff_client, analyst, flag):
    client = staff_client(analyst)
    listing = client.get(reverse("admin:cases_caseflag_changelist")).content.decode()
    assert flag.recontact_ref in listing
    page = client.get(reverse("admin:cases_caseflag_change", args=[flag.pk])).content.decode()
    assert "Kementerian Kesehatan" in page  # the disclosure record
    for secret in (NIK, NAME, PHONE, NOTE, "KONS-2026-0001"):
        assert secret not in page
    identity = CaseIdentity.objects.get(flag=flag)
    assert client.get(reverse("admin:cases_caseidentity_change", args=[identity.pk])).status_code == 403
    assert client.get(reverse("admin:cases_caseidentity_changelist")).status_code == 403
    assert not AuditEvent.objects.filter(action="case_identity.view").exists()


def test_viewing_the_identity_needs_the_permission_and_is_audited(staff_client, supervisor, flag):
    assert supervisor.has_perm("cases.view_identity")
    client = staff_client(supervisor)
    identity = CaseIdentity.objects.get(flag=flag)
    listing = client.get(reverse("admin:cases_caseidentity_changelist")).content.decode()
    assert NIK not in listing and NAME not in listing
    page = client.get(reverse("admin:cases_caseidentity_change", args=[identity.pk])).content.decode()
    assert NIK in page and NAME in page and PHONE in page
    client.get(reverse("admin:cases_caseidentity_change", args=[identity.pk]))
    events = AuditEvent.objects.filter(action="case_identity.view", actor=supervisor)
    assert events.count() == 2
    assert events.first().target_id == str(flag.pk)


def test_the_identity_permission_can_be_given_to_one_analyst(staff_client, analyst, flag):
    analyst.user_permissions.add(Permission.objects.get(codename="view_identity"))
    identity = CaseIdentity.objects.get(flag=flag)
    page = staff_client(analyst).get(reverse("admin:cases_caseidentity_change", args=[identity.pk]))
    assert page.status_code == 200 and NIK in page.content.decode()


def test_a_supervisor_adds_a_definition_without_code(staff_client, supervisor, cases_seeded):
    rule = {
        "symptoms": ["fever", "cough", "dyspnoea"],
        "epidemiological": ["contact_of_case"],
        "criteria": {"clinical": {"at_least": 2, "of": "symptoms"}},
        "classes": [{"code": "suspect_a", "when": {"all": [{"criterion": "clinical"}, "contact_of_case"]}}],
    }
    data = {
        "code": "KEMENKES/HK.01.07/2022",
        "short_name": "Kemenkes 2022",
        "issuer": "Kementerian Kesehatan",
        "published_on": "2022-01-01",
        "source_url": "",
        "rule": json.dumps(rule),
        "is_active": "on",
        "is_default": "on",
    }
    response = staff_client(supervisor).post(reverse("admin:cases_casedefinition_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    added = CaseDefinition.objects.get(code="KEMENKES/HK.01.07/2022")
    assert added.is_default and not CaseDefinition.objects.get(code=WHO_2022).is_default
    assert AuditEvent.objects.filter(action="case_definition.add").exists()


def test_a_definition_with_an_unknown_code_is_refused(staff_client, supervisor, cases_seeded):
    rule = {
        "symptoms": ["fever", "sneezing"],
        "criteria": {},
        "classes": [{"code": "probable", "when": "fever"}],
    }
    data = {
        "code": "X",
        "short_name": "X",
        "issuer": "X",
        "published_on": "2022-01-01",
        "rule": json.dumps(rule),
        "is_active": "on",
    }
    response = staff_client(supervisor).post(reverse("admin:cases_casedefinition_add"), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "sneezing" in body and "suspect_a" in body
    assert not CaseDefinition.objects.filter(code="X").exists()


def test_a_definition_in_use_cannot_be_rewritten(staff_client, supervisor, flag):
    who = CaseDefinition.objects.get(code=WHO_2020)
    rule = dict(who.rule, classes=who.rule["classes"][:1])
    data = {
        "code": who.code,
        "short_name": who.short_name,
        "issuer": who.issuer,
        "published_on": "2020-12-16",
        "source_url": who.source_url,
        "rule": json.dumps(rule),
        "is_active": "on",
        "is_default": "on",
    }
    response = staff_client(supervisor).post(
        reverse("admin:cases_casedefinition_change", args=[who.pk]), data
    )
    assert response.status_code == 200
    who.refresh_from_db()
    assert len(who.rule["classes"]) == 3


def test_the_dashboard_shows_the_curve_and_provinces_with_small_counts_hidden(
    staff_client, analyst, cases_seeded
):
    from portal.accounts.models import Sector

    operator = make_operator("klinik", sector=Sector.HEALTHTECH)
    for _ in range(6):
        cases_make_flag(operator, province="ID-JK")
    for _ in range(2):
        cases_make_flag(operator, province="ID-SN", classification="suspect_c")
    cases_make_flag(operator, province="ID-BA", status="withdrawn")
    cases_make_flag(operator, province="ID-AC", created_at=timezone.now() - timedelta(days=40))
    response = staff_client(analyst).get(reverse("admin:cases_caseflag_dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<svg role="img"' in body and "<title>" in body
    assert 'style="' not in body.split("<svg", 1)[1].split("</svg>")[0]
    curve = response.context["curve"]
    rows = {r["code"]: r for r in curve.provinces}
    assert len(rows) == 38
    assert rows["ID-JK"]["total"] == "6" and rows["ID-JK"]["cells"][0] == "6"
    assert rows["ID-SN"]["total"] == "<5" and rows["ID-SN"]["cells"][2] == "<5"
    assert rows["ID-BA"]["total"] == "0", "withdrawn flags are not counted"
    assert rows["ID-AC"]["total"] == "0", "outside the 30-day window"
    today = [r for r in curve.days if r["total"] != "0"]
    assert len(today) == 1 and today[0]["total"] == "8"
    assert curve.totals == {"suspect_a": "6", "suspect_b": "0", "suspect_c": "<5"}
    assert "&lt;5" in body


def test_the_dashboard_needs_staff(client_for, ht_reporter):
    response = client_for(ht_reporter).get(reverse("admin:cases_caseflag_dashboard"))
    assert response.status_code == 302
