"""The suspected-case API: healthtech only, the web forms' rules, the same services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.cases.models import CaseFlag
from portal.api.keys import api_key_create
from tests.api.conftest import ApiClient
from tests.cases.conftest import flag_post
from tests.conftest import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def ht_api(healthtech_operator, cases_seeded):
    admin = make_member(healthtech_operator, "admin", "admin@sehat.example")
    _key, secret = api_key_create(
        operator=healthtech_operator,
        actor=admin,
        name="EHR",
        scopes=["cases:write"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    return ApiClient(secret)


def test_classify_then_flag_then_correct_then_withdraw(ht_api):
    evaluation = ht_api.post("/api/v1/cases/classify/", flag_post()).json()
    assert evaluation["meets_definition"] is True
    created = ht_api.post(
        "/api/v1/cases/flags/", flag_post(confirm_classification=evaluation["classification"])
    )
    assert created.status_code == 201, created.content
    flag_id = created.json()["id"]
    corrected = ht_api.post(f"/api/v1/cases/flags/{flag_id}/correct/", flag_post(regency_name="Kota Gowa"))
    assert corrected.status_code == 200, corrected.content
    assert corrected.json()["revision"] == 2
    withdrawn = ht_api.post(f"/api/v1/cases/flags/{flag_id}/withdraw/", {"reason": "mistake"})
    assert withdrawn.status_code == 200, withdrawn.content
    assert CaseFlag.objects.get().withdrawn_at is not None
    again = ht_api.post(f"/api/v1/cases/flags/{flag_id}/correct/", flag_post())
    assert again.status_code == 409


def test_a_stale_confirmation_is_a_conflict_and_records_nothing(ht_api):
    response = ht_api.post("/api/v1/cases/flags/", flag_post(confirm_classification="probable"))
    assert response.status_code == 409
    assert not CaseFlag.objects.exists()


def test_form_errors_come_back_per_field(ht_api):
    response = ht_api.post("/api/v1/cases/flags/", flag_post(nik="123", province=""))
    assert response.status_code == 400
    assert {"nik", "province"} <= set(response.json()["errors"])
    assert not CaseFlag.objects.exists()


def test_cases_need_the_scope_and_stay_within_the_organisation(api, ht_api):
    assert api.post("/api/v1/cases/classify/", flag_post()).status_code == 403  # no cases:write
    flag_id = ht_api.post("/api/v1/cases/flags/", flag_post()).json()["id"]
    # Another organisation's flag id is unknown to a healthtech key of theirs too.
    from tests.conftest import make_operator

    other = make_operator("klinik", sector="healthtech")
    admin = make_member(other, "admin", "admin@klinik.example")
    _key, secret = api_key_create(
        operator=other,
        actor=admin,
        name="X",
        scopes=["cases:write"],
        expires_at=timezone.now() + timedelta(days=1),
    )
    outsider = ApiClient(secret)
    assert outsider.post(f"/api/v1/cases/flags/{flag_id}/withdraw/", {"reason": "mistake"}).status_code == 404
    assert outsider.post(f"/api/v1/cases/flags/{flag_id}/correct/", flag_post()).status_code == 404
