"""The consent API: policies, one event, bulk events through the importer, subjects, receipts."""

import pytest

from consent.models import ConsentEvent, ConsentImport
from portal.audit.models import AuditEvent
from tests.api.conftest import ApiClient
from tests.consent.helpers import PURPOSES, published_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(operator, op_admin):
    return published_version(operator, op_admin)


def _event(**extra):
    return {
        "subject_id": "user-1001",
        "policy_version": 1,
        "purposes": [PURPOSES[0]],
        "state": "given",
        "method": "web_form",
        **extra,
    }


def _row(n, **extra):
    return {
        "subject_id": f"user-{n}",
        "purpose": PURPOSES[0],
        "state": "given",
        "event_time": "2026-11-01T10:00:00+07:00",
        "method": "web_form",
        "policy_version": 1,
        **extra,
    }


def test_policies_are_listed_with_purposes(api, version):
    body = api.get("/api/v1/consent/policies/").json()
    assert body[0]["number"] == 1
    assert {p["code"] for p in body[0]["purposes"]} == set(PURPOSES)


def test_one_event_is_recorded_on_the_ledger(api, version):
    response = api.post("/api/v1/consent/events/", _event())
    assert response.status_code == 201, response.content
    assert ConsentEvent.objects.get().subject_identifier == "user-1001"
    assert AuditEvent.objects.filter(action="consent.record").get().actor.api_key.name == "SIEM"


def test_an_undeclared_purpose_is_refused_with_the_forms_message(api, version):
    response = api.post(
        "/api/v1/consent/events/", _event(purposes=["nope"]), headers={"Accept-Language": "en"}
    )
    assert response.status_code == 400
    assert "does not declare: nope" in response.json()["errors"]["non_field_errors"][0]
    assert not ConsentEvent.objects.exists()


def test_bulk_imports_all_rows_through_the_importer(api, version):
    events = [_row(n) for n in range(300)]
    response = api.post("/api/v1/consent/events/bulk/", {"events": events})
    assert response.status_code == 200, response.content
    assert response.json()["imported"] == 300
    assert ConsentEvent.objects.count() == 300
    assert ConsentImport.objects.get().status == "committed"
    again = api.post("/api/v1/consent/events/bulk/", {"events": events}).json()
    assert again["status"] == "duplicate" and ConsentEvent.objects.count() == 300


def test_bulk_with_one_bad_row_imports_nothing_and_names_the_row(api, version):
    events = [_row(1), _row(2, state="maybe"), _row(3)]
    body = api.post("/api/v1/consent/events/bulk/", {"events": events}).json()
    assert body["imported"] == 0 and body["errors"][0]["row"] == 2
    assert not ConsentEvent.objects.exists()


def test_bulk_over_ten_thousand_is_refused(api, version):
    response = api.post("/api/v1/consent/events/bulk/", {"events": [_row(1)] * 10_001})
    assert response.status_code == 400 and "events" in response.json()["errors"]


def test_subject_state_history_and_receipt(api, version):
    api.post("/api/v1/consent/events/", _event())
    api.post("/api/v1/consent/events/", _event(state="withdrawn"))
    body = api.post("/api/v1/consent/subjects/lookup/", {"subject_id": "user-1001"}).json()
    assert [e["state"] for e in body["current"]] == ["withdrawn"]
    assert len(body["history"]) == 2
    record_id = body["history"][0]["record_id"]
    receipt = api.get(f"/api/v1/consent/receipts/{record_id}/")
    assert receipt.status_code == 200 and receipt.json()["record_id"] == record_id
    assert AuditEvent.objects.filter(action="consent.receipt.download").exists()


def test_another_organisations_receipt_is_404_and_scopes_hold(api, other_api, version, make_key):
    api.post("/api/v1/consent/events/", _event())
    record_id = ConsentEvent.objects.get().record_id
    assert other_api.get(f"/api/v1/consent/receipts/{record_id}/").status_code == 404
    assert (
        other_api.post("/api/v1/consent/subjects/lookup/", {"subject_id": "user-1001"}).json()["history"]
        == []
    )
    _key, incidents_only = make_key(scopes=["incidents:read", "incidents:write"])
    client = ApiClient(incidents_only)
    assert client.get("/api/v1/consent/policies/").status_code == 403
    assert client.post("/api/v1/consent/events/", _event()).status_code == 403
    assert client.post("/api/v1/consent/events/bulk/", {"events": [_row(1)]}).status_code == 403
    assert client.post("/api/v1/consent/subjects/lookup/", {"subject_id": "x"}).status_code == 403
    assert client.get(f"/api/v1/consent/receipts/{record_id}/").status_code == 403
    _key, read_only = make_key(scopes=["consent:read"])
    reader = ApiClient(read_only)
    assert reader.post("/api/v1/consent/events/", _event()).status_code == 403
    assert reader.post("/api/v1/consent/subjects/lookup/", {"subject_id": "x"}).status_code == 200
