"""An operator cannot read, change, download from, or learn of another operator's incident."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from incidents import services
from incidents.models import Comment, Evidence, Incident, IncidentReport, Obligation
from tests.incidents.helpers import PDF_BYTES, file_incident, form_data, pdf_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def victim_incident(operator, reporter):
    incident = file_incident(
        operator,
        reporter,
        personal_data_involved=True,
        personal_data_categories=["contact"],
        data_subjects_count=5,
    )
    services.add_evidence(incident=incident, actor=reporter, upload=pdf_upload())
    return incident


def _every_url(incident, slug):
    evidence = incident.evidence.get()
    obligation = incident.obligations.get(rule__code="pdp-failure-notice")
    base = {"operator_slug": slug, "reference": incident.reference}
    return [
        ("get", reverse("incidents:detail", kwargs=base)),
        ("get", reverse("incidents:export_json", kwargs=base)),
        ("get", reverse("incidents:edit", kwargs=base)),
        ("post", reverse("incidents:edit", kwargs=base)),
        ("post", reverse("incidents:submit", kwargs=base)),
        ("get", reverse("incidents:report_edit", kwargs=base)),
        ("post", reverse("incidents:report_edit", kwargs=base)),
        ("get", reverse("incidents:report_detail", kwargs={**base, "number": 1})),
        ("post", reverse("incidents:comment", kwargs=base)),
        ("post", reverse("incidents:evidence_upload", kwargs=base)),
        ("get", reverse("incidents:evidence_download", kwargs={**base, "evidence_id": evidence.pk})),
        ("post", reverse("incidents:obligation_confirm", kwargs={**base, "obligation_id": obligation.pk})),
    ]


def _payload(url):
    if "evidence" in url:
        return {"file": SimpleUploadedFile("x.pdf", PDF_BYTES)}
    if "messages" in url:
        return {"body": "Let me in"}
    if "confirm" in url:
        return {"given_at": "2026-01-01T10:00", "note": "x"}
    return form_data(title="Hijacked") | {"kind": "update", "summary": "x", "action": "submit"}


@pytest.mark.parametrize("own_slug", [False, True], ids=["victim-slug", "own-slug"])
def test_every_incident_url_is_a_404_for_another_organisation(
    client_for, other_reporter, other_operator, victim_incident, own_slug
):
    slug = other_operator.slug if own_slug else victim_incident.operator.slug
    client = client_for(other_reporter)
    counts = (
        Incident.objects.count(),
        IncidentReport.objects.count(),
        Comment.objects.count(),
        Evidence.objects.count(),
        Obligation.objects.filter(met_at__isnull=False).count(),
    )
    for method, url in _every_url(victim_incident, slug):
        response = client.get(url) if method == "get" else client.post(url, _payload(url))
        assert response.status_code == 404, (method, url, response.status_code)
        assert victim_incident.title not in response.content.decode()
    assert counts == (
        Incident.objects.count(),
        IncidentReport.objects.count(),
        Comment.objects.count(),
        Evidence.objects.count(),
        Obligation.objects.filter(met_at__isnull=False).count(),
    )
    assert Incident.objects.get(pk=victim_incident.pk).title != "Hijacked"


def test_an_unknown_reference_and_a_foreign_one_look_the_same(client_for, other_reporter, victim_incident):
    client = client_for(other_reporter)
    slug = victim_incident.operator.slug
    foreign = client.get(
        reverse("incidents:detail", kwargs={"operator_slug": slug, "reference": victim_incident.reference})
    )
    unknown = client.get(
        reverse("incidents:detail", kwargs={"operator_slug": slug, "reference": "INS-2000-999999"})
    )
    assert foreign.status_code == unknown.status_code == 404


def test_lists_and_exports_hold_only_the_organisations_own_incidents(
    client_for, other_reporter, other_operator, victim_incident
):
    own = file_incident(other_operator, other_reporter, title="Our own phishing")
    client = client_for(other_reporter)
    listing = client.get(
        reverse("incidents:list", kwargs={"operator_slug": other_operator.slug})
    ).content.decode()
    export = client.get(
        reverse("incidents:export", kwargs={"operator_slug": other_operator.slug})
    ).content.decode()
    for text in (listing, export):
        assert own.reference in text
        assert victim_incident.reference not in text
