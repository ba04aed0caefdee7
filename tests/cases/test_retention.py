"""Identities are purged after IDENTITY_RETENTION_DAYS by the beat task; the flag stays."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from incidents.cases.models import CaseFlag, CaseIdentity
from incidents.cases.tasks import purge_expired_identities_task
from portal.audit.models import AuditEvent
from tests.cases.conftest import NIK
from tests.factories import cases_make_flag

pytestmark = pytest.mark.django_db


def _identity(flag, **extra):
    from portal.crypto import Kind, blind_index

    return CaseIdentity.objects.create(
        flag=flag,
        nik=NIK,
        full_name="Budi Contoh",
        phone="081200000000",
        nik_index=blind_index(Kind.NIK, NIK),
        **extra,
    )


def test_the_purge_is_registered_on_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["cases-purge-expired-identities"]
    assert entry["task"] == purge_expired_identities_task.name
    assert settings.IDENTITY_RETENTION_DAYS == 90


def test_it_purges_identities_older_than_the_retention_period(healthtech_operator, cases_seeded):
    old = _identity(cases_make_flag(healthtech_operator), created_at=timezone.now() - timedelta(days=91))
    young = _identity(cases_make_flag(healthtech_operator), created_at=timezone.now() - timedelta(days=89))
    assert purge_expired_identities_task() == 1
    old.refresh_from_db()
    young.refresh_from_db()
    assert old.purged_at is not None and old.nik == "" and old.full_name == "" and old.nik_index == ""
    assert young.purged_at is None and young.nik == NIK
    assert CaseFlag.objects.count() == 2, "the flags stay"
    event = AuditEvent.objects.get(action="case_identity.purge")
    assert event.target_id == str(old.flag_id)
    # Idempotent: a repeated or late run purges nothing twice.
    assert purge_expired_identities_task() == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT nik, full_name, phone FROM cases_caseidentity WHERE id = %s", [old.pk])
        assert all(len(v or "") < 200 for v in cursor.fetchone())


def test_a_late_beat_run_still_purges(healthtech_operator, cases_seeded, settings):
    settings.IDENTITY_RETENTION_DAYS = 30
    identity = _identity(cases_make_flag(healthtech_operator))
    with time_machine.travel(timezone.now() + timedelta(days=45)):
        assert purge_expired_identities_task() == 1
    identity.refresh_from_db()
    assert identity.purged_at is not None
