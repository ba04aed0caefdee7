"""`manage.py seed_demo` fills every screen with fake activity, and a second run changes nothing."""

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from consent.models import ImportStatus
from incidents.cases.seed import WHO_2020, WHO_2022
from incidents.models import Status
from portal.alerts.models import DeliveryStatus, NoticeStatus

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.app_label in ("accounts", "incidents", "cases", "consent", "alerts", "audit")
    }


def test_seed_demo_fills_every_list_and_is_idempotent(monkeypatch):
    from consent.models import ConsentEvent, ConsentImport, PolicyVersion
    from incidents.cases.models import CaseFlag
    from incidents.models import Comment, Evidence, Incident, IncidentReport, Obligation
    from portal.alerts.models import Delivery, Notice

    monkeypatch.setenv("DEMO_PASSWORD", "demo-only-password")
    call_command("seed_demo")
    first = _counts()
    call_command("seed_demo")
    assert _counts() == first

    demo = Incident.objects.filter(title__startswith="[Demo]")
    assert set(demo.values_list("status", flat=True)) == set(Status.values)
    assert IncidentReport.objects.filter(incident__in=demo, kind="update").exists()
    assert Comment.objects.filter(incident__in=demo, kind="note").exists()  # BSSN internal notes
    assert Comment.objects.filter(incident__in=demo, by_bssn=False).exists()
    assert Evidence.objects.filter(incident__in=demo).count() >= 8
    now = timezone.now()
    obligations = Obligation.objects.filter(incident__in=demo)
    assert obligations.filter(met_at__isnull=True, waived_at__isnull=True, due_at__lt=now).exists()  # overdue
    assert obligations.filter(met_at__isnull=False).exists()
    assert obligations.filter(waived_at__isnull=False).count() == 1
    # The dashboard's summaries were refreshed after seeding, as beat would.
    from incidents.models import DashboardRefresh, IncidentDaySummary

    assert DashboardRefresh.objects.get().incidents == Incident.objects.reported().count()
    assert IncidentDaySummary.objects.exists()

    assert PolicyVersion.objects.filter(published_at__isnull=False).count() >= 2
    assert ConsentEvent.objects.filter(state="withdrawn").exists()
    assert ConsentImport.objects.filter(status=ImportStatus.COMMITTED).exists()

    assert set(CaseFlag.objects.values_list("definition__code", flat=True)) == {WHO_2020, WHO_2022}

    statuses = set(Delivery.objects.values_list("status", flat=True))
    assert {DeliveryStatus.DELIVERED, DeliveryStatus.DEAD, DeliveryStatus.PENDING} <= statuses
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING, attempt_count__gt=0).exists()  # retrying
    assert {NoticeStatus.SENT, NoticeStatus.DEAD} <= set(Notice.objects.values_list("status", flat=True))

    # Only fake addresses.
    from portal.accounts.models import User

    assert all(
        email.endswith((".example", ".example.test"))
        for email in User.objects.values_list("email", flat=True)
    )
