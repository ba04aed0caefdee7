"""Builders for incident tests: complete report content, filed incidents, uploads."""

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from incidents import services
from incidents.models import Incident

# A minimal but valid PDF and PNG (their magic numbers are what the type check reads).
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63600001000005000"
    "1d50d0a2d0000000049454e44ae426082"
)
ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200


def content(**overrides) -> dict:
    """Return report content with every field a submission needs."""
    now = timezone.now()
    data = {
        "title": "Ransomware on the billing servers",
        "category": "ransomware",
        "severity": "high",
        "tlp": "amber",
        "reporter_name": "Rina Reporter",
        "reporter_email": "rina@acme.example",
        "reporter_phone": "+62 21 555 0101",
        "technical_contact_name": "",
        "technical_contact_email": "",
        "technical_contact_phone": "",
        "description": "Files on two billing servers were encrypted.",
        "chronology": "02:00 alert; 02:30 servers isolated.",
        "impact_confidentiality": "low",
        "impact_integrity": "high",
        "impact_availability": "high",
        "affected_systems": "billing-01, billing-02",
        "affected_services": "Invoicing",
        "users_affected": 1200,
        "occurred_at": now - timedelta(hours=5),
        "detected_at": now - timedelta(hours=4),
        "aware_at": now - timedelta(hours=3),
        "personal_data_involved": False,
        "personal_data_categories": [],
        "specific_data_categories": [],
        "data_subjects_count": None,
        "actions_taken": "Isolated the servers; restoring from backups.",
    }
    data.update(overrides)
    return data


def file_incident(operator, user, *, submit: bool = True, **overrides) -> Incident:
    incident = services.create_incident(operator=operator, actor=user, data=content(**overrides))
    if submit:
        services.submit_incident(incident=incident, actor=user)
    incident.refresh_from_db()
    return incident


def pdf_upload(name: str = "report.pdf", data: bytes = PDF_BYTES) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def form_data(**overrides) -> dict:
    """Return `content()` as the operator form posts it (times as datetime-local text, in WIB)."""
    data = content(**overrides)
    posted = {}
    for key, value in data.items():
        if value is None:
            posted[key] = ""
        elif hasattr(value, "astimezone"):
            posted[key] = timezone.localtime(value, timezone.get_fixed_timezone(7 * 60)).strftime(
                "%Y-%m-%dT%H:%M"
            )
        elif isinstance(value, bool):
            if value:
                posted[key] = "on"
        else:
            posted[key] = value
    return posted
