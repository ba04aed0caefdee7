"""Recording an event by hand, consent receipts, and exports."""

import json

import pytest
from django.urls import reverse

from consent.models import ConsentEvent
from portal.audit.models import AuditEvent
from tests.consent.helpers import PURPOSES, give, published_version

pytestmark = pytest.mark.django_db


def _record(client, operator, version, **overrides):
    data = {
        "subject_id": "customer-7",
        "policy_version": version.pk,
        "purposes": list(PURPOSES),
        "state": "given",
        "method": "verbal",
        "actor_type": "guardian",
        "event_at": "2026-02-03T10:15",
        "expires_at": "",
        "evidence": "call-recording-991",
    }
    data.update(overrides)
    return client.post(reverse("consent:record", args=[operator.slug]), data)


def test_a_reporter_records_consent_for_two_purposes(client_for, reporter, operator):
    version = published_version(operator)
    response = _record(client_for(reporter), operator, version)
    assert response.status_code == 200
    events = list(ConsentEvent.objects.order_by("seq"))
    assert [e.purpose_code for e in events] == sorted(PURPOSES) or [e.purpose_code for e in events] == list(
        PURPOSES
    )
    first = events[0]
    assert (first.method, first.actor_type, first.recorded_by, first.evidence) == (
        "verbal",
        "guardian",
        reporter,
        {"reference": "call-recording-991"},
    )
    # 10:15 WIB is 03:15 UTC.
    assert first.event_at.isoformat() == "2026-02-03T03:15:00+00:00"
    assert AuditEvent.objects.filter(action="consent.record", actor=reporter).exists()


def test_recording_refuses_an_expiry_before_the_event(client_for, reporter, operator):
    version = published_version(operator)
    response = _record(client_for(reporter), operator, version, expires_at="2026-01-01T00:00")
    assert response.status_code == 200 and not ConsentEvent.objects.exists()


def test_recording_without_a_published_policy_explains_why(client_for, reporter, operator):
    response = client_for(reporter).get(reverse("consent:record", args=[operator.slug]))
    assert (
        "Publish a privacy policy first" in response.content.decode()
        or "Terbitkan" in response.content.decode()
    )


def test_a_viewer_cannot_record(client_for, viewer, operator):
    version = published_version(operator)
    assert _record(client_for(viewer), operator, version).status_code == 403
    assert not ConsentEvent.objects.exists()


def test_the_receipt_uses_iso_27560_field_names(client_for, viewer, operator):
    event = give(operator, "customer-7", PURPOSES[1], state="withdrawn")
    response = client_for(viewer).get(event.get_receipt_url())
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    receipt = json.loads(response.content)
    assert receipt["record_id"] == str(event.record_id)
    assert receipt["pii_principal_id"] == "customer-7"
    assert receipt["jurisdiction"] == "ID"
    assert receipt["collection_method"] == "web_form"
    assert receipt["state"] == "withdrawn"
    assert receipt["notice"]["policy_hash"]["value"] == event.policy_version.sha256
    assert receipt["notice"]["policy_reference"].endswith(event.policy_version.get_public_url())
    purpose = receipt["purposes"][0]
    assert purpose["purpose_id"] == PURPOSES[1]
    assert purpose["pii_categories"] == ["name", "e-mail address"]
    assert purpose["withdrawal_method"] == "Settings page"
    assert receipt["event"][0]["event_time"] == event.event_at.isoformat()
    assert receipt["stop_processing_by"] == event.stop_processing_by.isoformat()
    assert AuditEvent.objects.filter(action="consent.receipt.download").exists()


def test_another_operators_receipt_is_a_404(client_for, outsider, operator):
    event = give(operator, "customer-7")
    url = reverse("consent:receipt", args=[outsider.memberships.get().operator.slug, event.record_id])
    assert client_for(outsider).get(url).status_code == 404


def test_the_admin_exports_every_record_as_csv_and_json(client_for, op_admin, operator, other_operator):
    give(operator, "customer-1")
    give(operator, "customer-2", state="refused")
    give(other_operator, "customer-other")
    c = client_for(op_admin)
    csv_response = c.get(reverse("consent:export_csv", args=[operator.slug]))
    body = b"".join(csv_response.streaming_content).decode()
    assert csv_response.streaming and body.splitlines()[0].startswith("record_id,seq,subject_id")
    assert "customer-1" in body and "customer-2" in body and "customer-other" not in body
    json_response = c.get(reverse("consent:export_json", args=[operator.slug]))
    records = json.loads(b"".join(json_response.streaming_content))
    assert [r["subject_id"] for r in records] == ["customer-1", "customer-2"]
    assert AuditEvent.objects.filter(action="consent.export").count() == 2


def test_only_admins_export(client_for, reporter, operator):
    assert client_for(reporter).get(reverse("consent:export_csv", args=[operator.slug])).status_code == 403


def test_the_dashboard_shows_the_consent_card(client_for, viewer, operator):
    published_version(operator)
    page = client_for(viewer).get(reverse("accounts:dashboard", args=[operator.slug])).content.decode()
    assert "v1" in page and reverse("consent:lookup", args=[operator.slug]) in page


def test_recording_refuses_an_event_in_the_future(client_for, reporter, operator):
    version = published_version(operator)
    response = _record(client_for(reporter), operator, version, event_at="2099-01-01T00:00")
    assert response.status_code == 200 and not ConsentEvent.objects.exists()


def test_the_csv_export_defuses_spreadsheet_formulas_in_identifiers(client_for, op_admin, operator):
    give(operator, '=HYPERLINK("http://evil.example","x")')
    response = client_for(op_admin).get(reverse("consent:export_csv", args=[operator.slug]))
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body
    assert ',"=HYPERLINK' not in body and ",=HYPERLINK" not in body
