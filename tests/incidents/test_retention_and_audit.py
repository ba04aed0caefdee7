import os
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Evidence, Incident, Status
from portal.audit.models import AuditEvent
from tests.incidents.helpers import file_incident, pdf_upload

pytestmark = pytest.mark.django_db


def _evidence(operator, user, *, closed_days_ago: int | None):
    incident = file_incident(operator, user)
    evidence = services.add_evidence(incident=incident, actor=user, upload=pdf_upload())
    if closed_days_ago is not None:
        Incident.objects.filter(pk=incident.pk).update(
            status=Status.CLOSED, closed_at=timezone.now() - timedelta(days=closed_days_ago)
        )
    return evidence


def test_evidence_of_a_long_closed_incident_is_deleted_and_its_record_kept(
    settings, operator, reporter, client_for
):
    settings.EVIDENCE_RETENTION_DAYS = 30
    old = _evidence(operator, reporter, closed_days_ago=31)
    path = old.file.path
    assert services.purge_expired_evidence() == 1
    old.refresh_from_db()
    assert old.purged_at is not None and old.sha256 and old.original_name
    assert not os.path.exists(path)
    assert AuditEvent.objects.filter(action="evidence.purge", target_id=str(old.pk)).exists()
    url = reverse(
        "incidents:evidence_download",
        kwargs={"operator_slug": operator.slug, "reference": old.incident.reference, "evidence_id": old.pk},
    )
    response = client_for(reporter).get(url)
    assert response.status_code == 410
    assert old.sha256 in response.content.decode()
    assert services.purge_expired_evidence() == 0  # a doubled run changes nothing


def test_evidence_of_open_or_recently_closed_incidents_stays(settings, operator, reporter):
    settings.EVIDENCE_RETENTION_DAYS = 30
    recent = _evidence(operator, reporter, closed_days_ago=29)
    open_one = _evidence(operator, reporter, closed_days_ago=None)
    assert services.purge_expired_evidence() == 0
    assert Evidence.objects.filter(pk__in=[recent.pk, open_one.pk], purged_at__isnull=True).count() == 2


def test_every_incident_export_is_audited(operator, reporter, client_for):
    incident = file_incident(operator, reporter)
    c = client_for(reporter)
    c.get(reverse("incidents:export", kwargs={"operator_slug": operator.slug}))
    c.get(
        reverse(
            "incidents:export_json", kwargs={"operator_slug": operator.slug, "reference": incident.reference}
        )
    )
    formats = sorted(
        e.changes["format"] for e in AuditEvent.objects.filter(action="incident.export", actor=reporter)
    )
    assert formats == ["csv", "json"]
