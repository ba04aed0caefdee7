"""The operator's page of what was sent to authorities about their organisation."""

import pytest
from django.urls import reverse

from portal.alerts.models import EventType
from portal.alerts.services import emit_event

pytestmark = pytest.mark.django_db


def _url(operator):
    return reverse("alerts:alert_list", kwargs={"operator_slug": operator.slug})


def _emit(operator, event_type=EventType.INCIDENT_SUBMITTED, **data):
    return emit_event(event_type=event_type, operator=operator, payload={"schema": f"{event_type}/1", **data})


def test_a_member_sees_what_was_sent_about_their_organisation(client_for, viewer, operator, seeded):
    alert = _emit(operator, incident={"reference": "INC-42", "severity": "high"})
    page = client_for(viewer).get(_url(operator))
    assert page.status_code == 200
    body = page.content.decode()
    assert alert.webhook_id in body
    assert "BSSN — CSIRT Nasional" in body
    assert "incident.reference" in body and "incident.severity" in body


def test_it_shows_no_internal_data(client_for, viewer, operator, seeded, hook):
    from portal.alerts.models import Delivery

    alert = _emit(operator, incident={"reference": "INC-42"})
    Delivery.objects.filter(alert=alert).update(last_error="HTTP 503 from internal-host.bssn")
    body = client_for(viewer).get(_url(operator)).content.decode()
    assert "csirt@bssn.example.org" not in body  # recipient addresses
    assert hook.url not in body
    assert "internal-host" not in body  # errors
    assert "INC-42" not in body  # values stay in the records; only field names are listed


def test_it_lists_only_this_organisations_alerts(client_for, viewer, operator, other_operator, seeded):
    mine = _emit(operator)
    theirs = _emit(other_operator)
    body = client_for(viewer).get(_url(operator)).content.decode()
    assert mine.webhook_id in body and theirs.webhook_id not in body


def test_another_organisations_page_is_a_404(client_for, outsider, operator):
    assert client_for(outsider).get(_url(operator)).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client, operator):
    response = client.get(_url(operator))
    assert response.status_code == 302 and "login" in response["Location"]


def test_it_filters_by_event_and_survives_bad_input(client_for, viewer, operator, seeded):
    submitted = _emit(operator)
    missed = _emit(operator, EventType.INCIDENT_DEADLINE_MISSED)
    c = client_for(viewer)
    body = c.get(_url(operator), {"event_type": EventType.INCIDENT_DEADLINE_MISSED}).content.decode()
    assert missed.webhook_id in body and submitted.webhook_id not in body
    assert c.get(_url(operator), {"event_type": "nonsense", "page": "x"}).status_code == 200


def test_the_dashboard_shows_the_alert_count(client_for, viewer, operator, seeded):
    _emit(operator)
    page = client_for(viewer).get(reverse("accounts:dashboard", kwargs={"operator_slug": operator.slug}))
    assert reverse("alerts:alert_list", kwargs={"operator_slug": operator.slug}).encode() in page.content


def test_an_alert_held_for_a_disabled_channel_shows_as_pending(client_for, viewer, operator, hook):
    from portal.alerts.models import Channel, Delivery, DeliveryStatus

    Channel.objects.filter(pk=hook.pk).update(enabled=False, disabled_reason="gone: endpoint disabled")
    alert = _emit(operator, incident={"reference": "INC-43"})
    assert Delivery.objects.get(alert=alert, channel=hook).status == DeliveryStatus.HELD
    page = client_for(viewer).get(_url(operator))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Receiver Authority" in body and "Menunggu" in body and "Ditahan" not in body  # pending, not held
