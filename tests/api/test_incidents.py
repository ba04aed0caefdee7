"""The incident journey through the API, its problem details, ETags and idempotency."""

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from incidents.models import Incident, IncidentReport, Status
from portal.audit.models import AuditEvent
from tests.api.conftest import COMPLETE, DRAFT, ApiClient

pytestmark = pytest.mark.django_db


def _draft(api) -> str:
    response = api.post("/api/v1/incidents/", DRAFT)
    assert response.status_code == 201, response.content
    return response.json()["reference"]


def test_whole_journey_files_submits_reports_and_talks(api, operator):
    ref = _draft(api)
    assert api.patch(f"/api/v1/incidents/{ref}/", COMPLETE).status_code == 200
    submitted = api.post(f"/api/v1/incidents/{ref}/submit/")
    assert submitted.status_code == 200
    assert submitted.json()["status"] == Status.SUBMITTED
    update = api.post(
        f"/api/v1/incidents/{ref}/reports/", {"kind": "update", "summary": "Restored", "users_affected": 40}
    )
    assert update.status_code == 201, update.content
    assert update.json()["number"] == 2 and update.json()["data"]["users_affected"] == 40
    final = api.post(f"/api/v1/incidents/{ref}/reports/", {"kind": "final", "summary": "Closed out"})
    assert final.status_code == 201
    comment = api.post(f"/api/v1/incidents/{ref}/comments/", {"body": "Logs attached."})
    assert comment.status_code == 201
    upload = SimpleUploadedFile("log.txt", b"08:00 alert\n", content_type="text/plain")
    evidence = api.post(f"/api/v1/incidents/{ref}/evidence/", {"file": upload}, format="multipart")
    assert evidence.status_code == 201, evidence.content
    assert len(evidence.json()["sha256"]) == 64
    assert [c["body"] for c in api.get(f"/api/v1/incidents/{ref}/comments/").json()] == ["Logs attached."]
    assert [r["number"] for r in api.get(f"/api/v1/incidents/{ref}/reports/").json()] == [1, 2, 3]
    deadlines = api.get(f"/api/v1/incidents/{ref}/deadlines/").json()
    assert {d["state"] for d in deadlines} <= {"met_on_time", "met_late", "pending", "overdue", "waived"}
    assert deadlines
    incident = Incident.objects.get(reference=ref)
    assert incident.users_affected == 40 and incident.operator == operator
    # Audited like a person: the key's own identity and the caller's address.
    event = AuditEvent.objects.filter(action="incident.report_submit").first()
    assert event.actor.api_key.name == "SIEM" and event.ip_address == "127.0.0.1"


def test_submit_of_incomplete_draft_is_problem_json_with_the_forms_messages(api):
    ref = _draft(api)
    response = api.post(f"/api/v1/incidents/{ref}/submit/", headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400 and body["title"] == "Bad Request" and body["type"]
    assert body["errors"]["reporter_email"] == ["This field is required to submit the report."]
    assert Incident.objects.get(reference=ref).status == Status.DRAFT


def test_create_without_title_names_the_field(api):
    response = api.post("/api/v1/incidents/", {"category": "nonsense"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "title" in errors and "category" in errors
    assert not Incident.objects.exists()


def test_future_detection_time_is_refused_with_the_forms_message(api):
    ref = _draft(api)
    response = api.patch(
        f"/api/v1/incidents/{ref}/",
        {"detected_at": "2999-01-01T00:00:00Z"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400
    assert response.json()["errors"]["detected_at"] == ["The time it was detected cannot be in the future."]


def test_editing_a_submitted_incident_is_a_conflict(api):
    ref = _draft(api)
    api.patch(f"/api/v1/incidents/{ref}/", COMPLETE)
    api.post(f"/api/v1/incidents/{ref}/submit/")
    response = api.patch(f"/api/v1/incidents/{ref}/", {"title": "Changed"})
    assert response.status_code == 409
    assert Incident.objects.get(reference=ref).title == DRAFT["title"]


def test_stale_if_match_is_412_and_changes_nothing(api):
    ref = _draft(api)
    etag = api.get(f"/api/v1/incidents/{ref}/")["ETag"]
    first = api.patch(f"/api/v1/incidents/{ref}/", {"title": "First"}, headers={"If-Match": etag})
    assert first.status_code == 200 and first["ETag"] != etag
    stale = api.patch(f"/api/v1/incidents/{ref}/", {"title": "Second"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert Incident.objects.get(reference=ref).title == "First"


def test_list_filters_and_pages_with_a_cursor(api):
    for _ in range(3):
        _draft(api)
    page = api.get("/api/v1/incidents/", {"page_size": 2, "status": "draft"}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1
    assert api.get("/api/v1/incidents/", {"status": "closed"}).json()["results"] == []
    assert api.get("/api/v1/incidents/", {"status": "bogus"}).status_code == 400


def test_idempotent_retry_returns_the_first_response(api):
    headers = {"Idempotency-Key": "f3b1c2d4-retry"}
    first = api.post("/api/v1/incidents/", DRAFT, headers=headers)
    again = api.post("/api/v1/incidents/", DRAFT, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["reference"] == first.json()["reference"]
    assert again["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_422(api):
    headers = {"Idempotency-Key": "k-1"}
    api.post("/api/v1/incidents/", DRAFT, headers=headers)
    other = api.post("/api/v1/incidents/", {**DRAFT, "title": "Another"}, headers=headers)
    assert other.status_code == 422
    assert other["Content-Type"] == "application/problem+json"
    assert Incident.objects.count() == 1


def test_idempotency_keys_are_per_organisation(api, other_api):
    headers = {"Idempotency-Key": "shared"}
    assert api.post("/api/v1/incidents/", DRAFT, headers=headers).status_code == 201
    theirs = other_api.post("/api/v1/incidents/", DRAFT, headers=headers)
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs
    assert Incident.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_create_one_incident(make_key):
    _key, secret = make_key()
    results: list[int] = []
    references: set[str] = set()
    barrier = threading.Barrier(4)

    def send():
        client = ApiClient(secret)
        barrier.wait()
        try:
            response = client.post("/api/v1/incidents/", DRAFT, headers={"Idempotency-Key": "burst"})
            results.append(response.status_code)
            references.add(response.json()["reference"])
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 4
    assert len(references) == 1
    assert Incident.objects.count() == 1


def test_a_draft_report_is_kept_when_submit_is_false(api):
    ref = _draft(api)
    api.patch(f"/api/v1/incidents/{ref}/", COMPLETE)
    api.post(f"/api/v1/incidents/{ref}/submit/")
    response = api.post(f"/api/v1/incidents/{ref}/reports/", {"kind": "update", "submit": False})
    assert response.status_code == 201 and response.json()["submitted_at"] is None
    assert IncidentReport.objects.filter(submitted_at__isnull=True).count() == 1
    refused = api.post(
        f"/api/v1/incidents/{ref}/reports/", {"kind": "update"}, headers={"Accept-Language": "en"}
    )
    assert refused.json()["errors"]["summary"] == ["Say what changed since the last report."]


def test_stored_responses_are_purged_after_their_keeping_time(api):
    from datetime import timedelta

    from django.utils import timezone

    from portal.api.idempotency import purge_idempotent_requests
    from portal.api.models import IdempotentRequest

    api.post("/api/v1/incidents/", DRAFT, headers={"Idempotency-Key": "old"})
    assert purge_idempotent_requests() == 0
    assert purge_idempotent_requests(now=timezone.now() + timedelta(hours=25)) == 1
    assert not IdempotentRequest.objects.exists()
    again = api.post("/api/v1/incidents/", DRAFT, headers={"Idempotency-Key": "old"})
    assert again.status_code == 201 and Incident.objects.count() == 2
