import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from incidents.models import Evidence
from portal.audit.models import AuditEvent
from tests.incidents.helpers import ELF_BYTES, PDF_BYTES, PNG_BYTES, file_incident

pytestmark = pytest.mark.django_db


def _upload_url(incident):
    return reverse(
        "incidents:evidence_upload",
        kwargs={"operator_slug": incident.operator.slug, "reference": incident.reference},
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_an_upload_is_checked_hashed_and_stored_outside_the_public_roots(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    response = client_for(reporter).post(
        _upload_url(incident), {"file": SimpleUploadedFile("firewall.pdf", PDF_BYTES), "description": "Logs"}
    )
    assert response.status_code == 302
    evidence = Evidence.objects.get()
    assert evidence.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert (evidence.content_type, evidence.size, evidence.original_name) == (
        "application/pdf",
        len(PDF_BYTES),
        "firewall.pdf",
    )
    stored = Path(evidence.file.path).resolve()
    assert stored.is_relative_to(Path(settings.PRIVATE_STORAGE_ROOT).resolve())
    for public in (settings.MEDIA_ROOT, settings.STATIC_ROOT):
        assert not stored.is_relative_to(Path(public).resolve())
    assert "firewall" not in stored.name  # the stored name is random
    assert AuditEvent.objects.filter(action="incident.evidence_upload").count() == 1


def test_a_file_over_the_size_limit_is_refused(client_for, reporter, operator, settings):
    settings.EVIDENCE_MAX_BYTES = 20 * 1024 * 1024
    incident = file_incident(operator, reporter)
    big = SimpleUploadedFile("dump.pdf", PDF_BYTES + b"0" * (50 * 1024 * 1024))
    response = client_for(reporter).post(_upload_url(incident), {"file": big}, follow=True)
    assert any("too large" in m or "terlalu besar" in m for m in _messages(response))
    assert not Evidence.objects.exists()
    assert not [p for p in Path(settings.PRIVATE_STORAGE_ROOT).rglob("*") if p.is_file()]


def test_an_executable_renamed_pdf_is_refused(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    response = client_for(reporter).post(
        _upload_url(incident), {"file": SimpleUploadedFile("invoice.pdf", ELF_BYTES)}, follow=True
    )
    assert any("not accepted" in m or "tidak diterima" in m for m in _messages(response))
    assert not Evidence.objects.exists()


def test_content_that_does_not_match_its_name_is_refused(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    response = client_for(reporter).post(
        _upload_url(incident), {"file": SimpleUploadedFile("screenshot.pdf", PNG_BYTES)}, follow=True
    )
    assert any("does not match" in m or "tidak sesuai" in m for m in _messages(response))
    assert not Evidence.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "accepted"),
    [
        ("capture.png", PNG_BYTES, True),
        ("auth.log", b"Jan 1 02:00 sshd: Failed password for root\n", True),
        ("binary.log", b"\x00\x01\x02binary", False),
        ("script.sh", b"#!/bin/sh\nrm -rf /\n", False),
        ("page.html", b"<html><script>alert(1)</script></html>", False),
    ],
)
def test_the_allow_list_judges_content(client_for, reporter, operator, name, data, accepted):
    incident = file_incident(operator, reporter)
    client_for(reporter).post(_upload_url(incident), {"file": SimpleUploadedFile(name, data)})
    assert Evidence.objects.exists() is accepted


def test_a_download_is_an_audited_attachment(client_for, reporter, viewer, operator):
    incident = file_incident(operator, reporter)
    client_for(reporter).post(_upload_url(incident), {"file": SimpleUploadedFile("firewall.pdf", PDF_BYTES)})
    evidence = Evidence.objects.get()
    response = client_for(viewer).get(evidence.get_absolute_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/pdf"
    event = AuditEvent.objects.get(action="incident.evidence_download")
    assert (event.actor, event.changes["sha256"]) == (viewer, evidence.sha256)


def test_no_evidence_is_added_to_a_closed_incident(client_for, reporter, operator, supervisor):
    from incidents import services

    incident = file_incident(operator, reporter)
    services.change_status(incident=incident, actor=supervisor, to_status="closed", reason="Done")
    client_for(reporter).post(_upload_url(incident), {"file": SimpleUploadedFile("late.pdf", PDF_BYTES)})
    assert not Evidence.objects.exists()
