"""Demo activity for the demo organisations: something to look at on every screen.

`seed_demo_activity` adds, through the same services the portal uses, incidents in
every status (with reports, messages, internal notes, evidence and deadlines — some
overdue, some met, one waived), published privacy policies with consent events and a
completed import, suspected-case flags under both WHO case definitions, and alert
deliveries and notices in each outcome (sent, retrying, failed).

Idempotent: each item is identified by its demo title, subject or reference and is
created only when missing, so a second run changes nothing. Everything is fake: the
people are "Demo" personas on example domains; flags carry no identity.
"""

import logging
import tempfile
from datetime import date, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from consent import imports as consent_imports
from consent import services as consent_services
from consent.models import ConsentState, PolicyVersion, Purpose
from incidents import services as incident_services
from incidents.cases import services as case_services
from incidents.cases.models import CaseDefinition, CaseFlag
from incidents.cases.seed import WHO_2020, WHO_2022, seed_case_definitions
from incidents.models import CommentKind, Incident, ReportKind, Status
from incidents.seed import seed_deadline_rules
from portal.accounts.models import Operator, User
from portal.alerts.models import Delivery, DeliveryStatus, Notice, NoticeStatus
from portal.alerts.seed import seed_authorities

from .accounts.demo import demo_email

logger = logging.getLogger(__name__)

TITLE_PREFIX = "[Demo] "
# (title, operator slug, status to reach, severity, personal data involved, days since aware)
DEMO_INCIDENTS = [
    ("Draf: phishing terhadap staf keuangan", "toko-contoh", Status.DRAFT, "medium", False, 1),
    ("Ransomware pada server penagihan", "toko-contoh", Status.SUBMITTED, "high", True, 6),
    ("DDoS pada gateway pembayaran", "bayar-contoh", Status.TRIAGE, "critical", False, 2),
    ("Akses tidak sah ke dasbor admin", "pinjam-contoh", Status.AWAITING_OPERATOR, "high", True, 4),
    ("Kebocoran data rekam medis", "sehat-contoh", Status.IN_PROGRESS, "critical", True, 10),
    ("Malware pada laptop karyawan", "layanan-contoh", Status.RESOLVED, "low", False, 20),
    ("Defacement halaman promo", "toko-contoh", Status.CLOSED, "medium", False, 40),
    ("Laporan uji coba yang keliru", "bayar-contoh", Status.REJECTED, "low", False, 3),
    ("DDoS pada gateway pembayaran (laporan kedua)", "bayar-contoh", Status.DUPLICATE, "critical", False, 2),
]
# The steps BSSN takes to bring a submitted incident to each status.
PATHS = {
    Status.SUBMITTED: [],
    Status.TRIAGE: [Status.TRIAGE],
    Status.AWAITING_OPERATOR: [Status.TRIAGE],  # then a request for information
    Status.IN_PROGRESS: [Status.TRIAGE, Status.IN_PROGRESS],
    Status.RESOLVED: [Status.TRIAGE, Status.IN_PROGRESS, Status.RESOLVED],
    Status.CLOSED: [Status.TRIAGE, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED],
    Status.REJECTED: [Status.TRIAGE, Status.REJECTED],
    Status.DUPLICATE: [Status.DUPLICATE],
}
REASONS = {
    Status.TRIAGE: "Laporan diterima; analis memeriksa log yang dilampirkan.",
    Status.IN_PROGRESS: "Dampak terkonfirmasi; penanganan berjalan bersama penyelenggara.",
    Status.RESOLVED: "Layanan pulih dan celah ditutup.",
    Status.CLOSED: "Laporan akhir diterima; tidak ada tindak lanjut.",
    Status.REJECTED: "Bukan insiden siber: uji coba internal penyelenggara.",
    Status.DUPLICATE: "Insiden yang sama sudah dilaporkan.",
}
# A small PDF and PNG (their magic numbers are what the upload check reads).
PDF_BYTES = b"%PDF-1.4\n% Demo evidence\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63600001000005000"
    "1d50d0a2d0000000049454e44ae426082"
)


def _content(title: str, severity: str, personal: bool, days: int) -> dict:
    now = timezone.now()
    return {
        "title": TITLE_PREFIX + title,
        "category": "ransomware" if "Ransomware" in title else "other",
        "severity": severity,
        "tlp": "amber",
        "reporter_name": "Pelapor Demo",
        "reporter_email": "pelapor@demo.example.test",
        "reporter_phone": "+62 21 555 0100",
        "technical_contact_name": "",
        "technical_contact_email": "",
        "technical_contact_phone": "",
        "description": "Data demo: uraian singkat insiden untuk mencoba portal.",
        "chronology": "Peringatan sistem pemantauan, lalu server diisolasi.",
        "impact_confidentiality": "high" if personal else "low",
        "impact_integrity": "low",
        "impact_availability": "high",
        "affected_systems": "demo-app-01",
        "affected_services": "Layanan demo",
        "users_affected": 120,
        "occurred_at": now - timedelta(days=days, hours=3),
        "detected_at": now - timedelta(days=days, hours=2),
        "aware_at": now - timedelta(days=days, hours=1),
        "personal_data_involved": personal,
        "personal_data_categories": ["identity", "contact"] if personal else [],
        "specific_data_categories": ["health"] if personal and "medis" in title else [],
        "data_subjects_count": 250 if personal else None,
        "actions_taken": "Server diisolasi; pemulihan dari cadangan.",
    }


def _users() -> tuple[User, User]:
    return (
        User.objects.get(email="analyst@bssn.example"),
        User.objects.get(email="supervisor@bssn.example"),
    )


def _seed_incidents() -> int:
    """Create the demo incidents that are missing; return how many were created."""
    seed_deadline_rules()
    analyst, supervisor = _users()
    created = 0
    first_of_duplicate = None
    for title, slug, status, severity, personal, days in DEMO_INCIDENTS:
        operator = Operator.objects.get(slug=slug)
        existing = Incident.objects.filter(operator=operator, title=TITLE_PREFIX + title).first()
        if existing is not None:
            first_of_duplicate = first_of_duplicate or (existing if status == Status.TRIAGE else None)
            continue
        reporter = User.objects.get(email=demo_email("reporter", slug))
        incident = incident_services.create_incident(
            operator=operator, actor=reporter, data=_content(title, severity, personal, days)
        )
        created += 1
        if status == Status.DRAFT:
            continue
        incident_services.add_evidence(
            incident=incident,
            actor=reporter,
            upload=SimpleUploadedFile("log-ringkas.pdf", PDF_BYTES, content_type="application/pdf"),
            description="Ringkasan log (demo)",
        )
        incident_services.submit_incident(incident=incident, actor=reporter)
        incident.refresh_from_db()
        if status == Status.TRIAGE:
            first_of_duplicate = incident
        _bssn_work(incident, status, analyst, supervisor, reporter, duplicate_of=first_of_duplicate)
    return created


def _bssn_work(incident: Incident, status: str, analyst, supervisor, reporter, *, duplicate_of) -> None:
    """Move a submitted incident to `status` as BSSN would, with messages and reports on the way."""
    incident_services.assign(incident=incident, actor=supervisor, assignee=analyst)
    incident_services.add_bssn_comment(
        incident=incident,
        actor=analyst,
        body="Catatan internal: pola serangan mirip kampanye pekan lalu.",
        kind=CommentKind.NOTE,
    )
    for step in PATHS[status]:
        actor = supervisor if step in (Status.CLOSED, Status.REJECTED, Status.DUPLICATE) else analyst
        incident_services.change_status(
            incident=incident,
            actor=actor,
            to_status=step,
            reason=REASONS[step],
            duplicate_of=duplicate_of if step == Status.DUPLICATE else None,
        )
        incident.refresh_from_db()
        if step == Status.IN_PROGRESS:
            incident_services.add_bssn_comment(
                incident=incident, actor=analyst, body="Mohon kirim pembaruan setelah pemulihan selesai."
            )
            incident_services.add_operator_comment(
                incident=incident, actor=reporter, body="Baik, pemulihan diperkirakan selesai besok."
            )
            report = incident_services.save_report_draft(
                incident=incident,
                actor=reporter,
                kind=ReportKind.UPDATE,
                data={**_report_data(incident), "actions_taken": "Pemulihan dari cadangan selesai 80%."},
                summary="Pembaruan pemulihan",
            )
            incident_services.submit_report(report=report, actor=reporter)
            incident.refresh_from_db()
    if status == Status.AWAITING_OPERATOR:
        incident_services.add_bssn_comment(
            incident=incident,
            actor=analyst,
            body="Mohon lampirkan daftar akun yang terdampak.",
            kind=CommentKind.REQUEST,
        )
    if status == Status.IN_PROGRESS:
        obligation = incident.obligations.open().order_by("-due_at").first()
        if obligation is not None:
            incident_services.waive_obligation(
                obligation=obligation,
                actor=supervisor,
                reason="Demo: tenggat dibebaskan atas permintaan tertulis.",
            )


def _report_data(incident: Incident) -> dict:
    return {f: getattr(incident, f) for f in incident_services.OPERATOR_FIELDS}


def _seed_consent() -> int:
    """Publish a privacy policy with consent events and a completed import per demo organisation."""
    created = 0
    for slug in ("toko-contoh", "sehat-contoh"):
        operator = Operator.objects.get(slug=slug)
        admin = User.objects.get(email=demo_email("admin", slug))
        if PolicyVersion.objects.filter(operator=operator).exists():
            continue
        version = consent_services.create_policy_version(
            operator=operator,
            actor=admin,
            data={
                "title": "Kebijakan Privasi (demo)",
                "text_id": "Teks kebijakan privasi demo.",
                "text_en": "Demo privacy policy text.",
                "effective_date": date(2026, 1, 1),
                "change_summary": "",
            },
        )
        for code, description in (
            ("marketing-email", "Promosi lewat e-mail"),
            ("analytics", "Analitik layanan"),
        ):
            Purpose.objects.create(
                version=version,
                code=code,
                description=description,
                legal_basis="consent",
                data_categories="alamat e-mail",
                retention="1 tahun",
            )
        version = consent_services.publish_version(version=version, actor=admin)
        for n, state in enumerate([ConsentState.GIVEN, ConsentState.GIVEN, ConsentState.WITHDRAWN], start=1):
            consent_services.record_consent(
                operator=operator,
                actor=admin,
                subject_identifier=f"pelanggan-demo-{n}",
                purpose_codes=["marketing-email"]
                if state == ConsentState.WITHDRAWN
                else ["marketing-email", "analytics"],
                state=ConsentState.GIVEN,
                policy_version=version,
                method="web_form",
            )
            if state == ConsentState.WITHDRAWN:
                consent_services.record_consent(
                    operator=operator,
                    actor=admin,
                    subject_identifier=f"pelanggan-demo-{n}",
                    purpose_codes=["marketing-email"],
                    state=state,
                    policy_version=version,
                    method="web_form",
                )
        rows = "".join(
            f"pelanggan-impor-{n},analytics,given,2026-0{n}-02T10:00:00+07:00,web_form,{version.number}\n"
            for n in range(1, 5)
        )
        data = ("subject_id,purpose,state,event_time,method,policy_version\n" + rows).encode()
        with tempfile.NamedTemporaryFile(suffix=".csv") as fh:
            fh.write(data)
            fh.flush()
            # Synchronously, as the import_consents command does; a file imported before is recognised.
            consent_imports.import_file(
                operator=operator, actor=admin, path=fh.name, filename="demo-impor.csv"
            )
        created += 1
    return created


def _seed_cases() -> int:
    """Flag suspected cases at the healthtech demo organisation under both WHO definitions."""
    seed_case_definitions()
    operator = Operator.objects.get(slug="sehat-contoh")
    reporter = User.objects.get(email=demo_email("reporter", "sehat-contoh"))
    created = 0
    today = case_services.local_today(operator)
    for definition, consultation, age_band, sex in (
        (CaseDefinition.objects.get(code=WHO_2020), "DEMO-KONS-0001", "30-44", "female"),
        (CaseDefinition.objects.get(code=WHO_2020), "DEMO-KONS-0002", "60-69", "male"),
        (CaseDefinition.objects.get(code=WHO_2022), "DEMO-KONS-0003", "18-29", "female"),
    ):
        index = case_services.consultation_index(operator, consultation)
        if CaseFlag.objects.filter(operator=operator, consultation_ref_index=index).exists():
            continue
        case_services.flag_case(
            operator=operator,
            actor=reporter,
            data={
                "definition": definition,
                "symptoms": ["fever", "cough"],
                "onset_date": today - timedelta(days=2),
                "epidemiological": ["community_transmission"],
                "antigen_result": "not_done",
                "province": "ID-SN",
                "regency_code": "73.71",
                "regency_name": "Kota Makassar",
                "age_band": age_band,
                "sex": sex,
                "consultation_ref": consultation,
                "legal_basis": "public_task",
            },
            identity=case_services.IdentityInput(),
        )
        created += 1
    return created


def _settle_outboxes(*, since) -> None:
    """Give the deliveries and notices this run wrote each outcome: sent, retrying, failed.

    Only rows still pending are touched, so a worker that already sent one keeps its
    real outcome.
    """
    now = timezone.now()
    pending = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, created_at__gte=since).order_by("pk")
    )
    for n, delivery in enumerate(pending):
        if n % 5 == 3:
            fields = {
                "attempt_count": 2,
                "last_error": "SMTP 451: coba lagi nanti (demo)",
                "next_attempt_at": now + timedelta(hours=6),
            }
        elif n % 5 == 4:
            fields = {
                "status": DeliveryStatus.DEAD,
                "attempt_count": 1,
                "last_error": "HTTP 410: endpoint demo",
            }
        else:
            fields = {"status": DeliveryStatus.DELIVERED, "attempt_count": 1, "delivered_at": now}
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(**fields)
    notices = Notice.objects.filter(status=NoticeStatus.PENDING, created_at__gte=since).order_by("pk")
    for n, notice in enumerate(notices):
        if n % 4 == 3:
            fields = {
                "status": NoticeStatus.DEAD,
                "attempt_count": 1,
                "last_error": "SMTP 550: recipients refused",
            }
        else:
            fields = {"status": NoticeStatus.SENT, "attempt_count": 1, "sent_at": now}
        Notice.objects.filter(pk=notice.pk, status=NoticeStatus.PENDING).update(**fields)


def seed_demo_activity() -> dict[str, int]:
    """Add the demo activity that is missing; return how many items of each kind were created."""
    seed_authorities()
    since = timezone.now()
    with transaction.atomic():
        created = {"incidents": _seed_incidents(), "policies": _seed_consent(), "flags": _seed_cases()}
        if any(created.values()):
            _settle_outboxes(since=since)
    return created
