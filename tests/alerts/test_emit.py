import json

import pytest
from django.db import transaction

from portal.accounts.models import Sector
from portal.alerts.models import Alert, Delivery, DeliveryStatus, EventType, RoutingRule
from portal.alerts.seed import BI, BSSN, KEMENKES, OJK, dinkes_code
from portal.alerts.services import emit_event
from tests.conftest import make_operator


def _incident_payload(**extra):
    return {"schema": "incident.submitted/1", "incident": {"reference": "INC-1", "severity": "high"}, **extra}


def _authorities(alert: Alert) -> set[str]:
    return {d.authority.code for d in alert.deliveries.select_related("authority")}


@pytest.mark.django_db
def test_it_routes_an_incident_to_bssn(seeded, operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        alert = emit_event(
            event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload()
        )
    assert _authorities(alert) == {BSSN}
    assert not alert.unrouted
    assert len(callbacks) == 1
    assert alert.deliveries.get().status == DeliveryStatus.PENDING


@pytest.mark.django_db
def test_it_adds_ojk_and_bi_for_fintech_payment(seeded):
    operator = make_operator("bayar", sector=Sector.FINTECH_PAYMENT)
    alert = emit_event(
        event_type=EventType.INCIDENT_STATUS_CHANGED,
        operator=operator,
        payload={"schema": "incident.status_changed/1"},
    )
    assert _authorities(alert) == {BSSN, OJK, BI}


@pytest.mark.django_db
def test_it_adds_ojk_only_for_fintech_lending(seeded):
    operator = make_operator("pinjam", sector=Sector.FINTECH_LENDING)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload()
    )
    assert _authorities(alert) == {BSSN, OJK}


@pytest.mark.django_db
def test_it_routes_a_suspected_case_to_the_ministry_and_the_provinces_health_office(
    seeded, healthtech_operator
):
    alert = emit_event(
        event_type=EventType.SUSPECTED_CASE_FLAGGED,
        operator=healthtech_operator,
        payload={"schema": "suspected_case.flagged/1"},
        province="ID-BA",
    )
    assert _authorities(alert) == {KEMENKES, dinkes_code("ID-BA")}


@pytest.mark.django_db
def test_the_province_defaults_to_the_operators(seeded):
    operator = make_operator("sehat-sulsel", sector=Sector.HEALTHTECH, province="ID-SN")
    alert = emit_event(
        event_type=EventType.SUSPECTED_CASE_WITHDRAWN,
        operator=operator,
        payload={"schema": "suspected_case.withdrawn/1"},
    )
    assert _authorities(alert) == {KEMENKES, dinkes_code("ID-SN")}
    assert alert.province == "ID-SN"


@pytest.mark.django_db
def test_an_event_no_rule_matches_goes_to_bssns_default_channel_flagged(seeded, operator):
    RoutingRule.objects.filter(event_pattern="incident.*").delete()
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload()
    )
    assert alert.unrouted
    delivery = alert.deliveries.get()
    assert delivery.channel.is_default and delivery.authority.code == BSSN


@pytest.mark.django_db
def test_a_channel_only_gets_the_event_types_it_wants(seeded, operator, webhook_authority):
    RoutingRule.objects.create(event_pattern="*", authority=webhook_authority.authority)
    webhook_authority.event_types = [EventType.INCIDENT_DEADLINE_MISSED]
    webhook_authority.save()
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload()
    )
    assert webhook_authority.authority.code not in _authorities(alert)
    alert = emit_event(
        event_type=EventType.INCIDENT_DEADLINE_MISSED,
        operator=operator,
        payload={"schema": "incident.deadline_missed/1"},
    )
    assert webhook_authority.authority.code in _authorities(alert)


@pytest.mark.django_db
def test_a_disabled_rule_or_channel_is_skipped(seeded, operator):
    RoutingRule.objects.filter(event_pattern="incident.*", sector="").update(enabled=False)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload()
    )
    assert alert.unrouted  # still delivered, to the default channel


@pytest.mark.django_db
def test_the_body_is_the_envelope_around_the_callers_payload(seeded, operator):
    payload = _incident_payload()
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=payload, subject=operator
    )
    envelope = json.loads(alert.body)
    assert envelope == {
        "id": alert.webhook_id,
        "type": "incident.submitted",
        "timestamp": envelope["timestamp"],
        "data": payload,
    }
    assert envelope["timestamp"].endswith("Z")
    assert alert.subject_id == str(operator.pk)
    disclosures = alert.disclosures()
    assert disclosures[0]["fields"] == ["incident", "schema"]
    assert disclosures[0]["authority"] == BSSN


@pytest.mark.django_db
def test_it_refuses_an_unknown_event_type_or_a_payload_without_its_schema(seeded, operator):
    with pytest.raises(ValueError):
        emit_event(
            event_type="incident.exploded", operator=operator, payload={"schema": "incident.exploded/1"}
        )
    with pytest.raises(ValueError):
        emit_event(event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"x": 1})
    assert not Alert.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_leaves_no_alert_and_enqueues_nothing(operator, monkeypatch):
    from portal.alerts.seed import seed_authorities

    seed_authorities()
    sent = []
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: sent.extend(delivery_ids),
    )

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        emit_event(event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload())
        raise Boom
    assert not Alert.objects.exists() and not Delivery.objects.exists()
    assert sent == []
    # The same event committed is enqueued exactly once.
    with transaction.atomic():
        alert = emit_event(
            event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload=_incident_payload()
        )
    assert sent == [alert.deliveries.get().pk]
