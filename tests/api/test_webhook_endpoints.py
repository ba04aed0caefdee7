"""The organisation admin's webhook pages: the real form posts, and what a receiver then gets."""

import json
import re

import pytest
from django.db import connection
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from incidents import services as incident_services
from portal.accounts.models import Role
from portal.alerts import operator_webhooks
from portal.alerts.models import Alert, Channel, Delivery, DeliveryStatus, OperatorEventType
from portal.alerts.services import deliver
from portal.audit.models import AuditEvent
from tests.alerts.receiver import Receiver
from tests.alerts.test_operator_webhooks import ALL_EVENTS, run_worker, validate
from tests.conftest import make_member
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db


def _list_url(operator) -> str:
    return reverse("webhooks:list", args=[operator.slug])


def _url(name: str, endpoint: Channel, *extra) -> str:
    return reverse(f"webhooks:{name}", args=[endpoint.operator.slug, endpoint.pk, *extra])


def _secret(response) -> str:
    return re.search(r'data-testid="webhook-secret">([^<]+)<', response.content.decode()).group(1)


def _create(client, operator, url, events=ALL_EVENTS, name="SOC"):
    return client.post(_list_url(operator), {"name": name, "url": url, "event_types": events})


@pytest.fixture
def admin(client_for, op_admin):
    return client_for(op_admin)


@pytest.fixture
def endpoint(admin, operator, receiver) -> Channel:
    """An endpoint registered through the form, its secret handed to the receiver."""
    response = _create(admin, operator, receiver.url)
    receiver.secrets = [_secret(response)]
    return Channel.objects.for_operator(operator).get()


@pytest.fixture
def incident(operator, reporter):
    return file_incident(operator, reporter)


def _bssn_message(incident, analyst, body="Any news?"):
    incident_services.add_bssn_comment(incident=incident, actor=analyst, body=body)


def test_the_admin_adds_an_endpoint_and_sees_its_secret_once(admin, operator, receiver, op_admin):
    response = _create(admin, operator, receiver.url, events=[OperatorEventType.MESSAGE])
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = _secret(response)
    endpoint = Channel.objects.for_operator(operator).get()
    assert secret.startswith("whsec_") and endpoint.secret == secret
    assert (endpoint.authority_id, endpoint.url, endpoint.event_types) == (
        None,
        receiver.url,
        [OperatorEventType.MESSAGE],
    )
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT secret FROM alerts_channel WHERE id = %s", [endpoint.pk])
        raw = cursor.fetchone()[0]
    assert secret.encode() not in (raw.encode() if isinstance(raw, str) else bytes(raw))
    assert secret not in admin.get(_list_url(operator)).content.decode()
    assert secret not in admin.get(_url("detail", endpoint)).content.decode()
    event = AuditEvent.objects.get(action="alerts.endpoint_create")
    assert (event.actor, event.operator) == (op_admin, operator)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/hook", "privat"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://user:pw@hooks.example.org/", "nama pengguna"),
    ],
)
def test_an_unsafe_url_is_refused_by_the_same_guard_as_the_authorities(admin, operator, url, message):
    response = _create(admin, operator, url)
    assert response.status_code == 200 and b"field--error" in response.content
    assert message in response.content.decode()
    assert not Channel.objects.for_operator(operator).exists()


def test_http_is_refused_outside_development(admin, operator, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    response = _create(admin, operator, "http://127.0.0.1:9/hook")
    assert "HTTPS" in response.content.decode() and not Channel.objects.for_operator(operator).exists()


def test_an_endpoint_needs_at_least_one_event(admin, operator, receiver):
    response = _create(admin, operator, receiver.url, events=[])
    assert b"field--error" in response.content and not Channel.objects.for_operator(operator).exists()


def test_the_test_button_sends_a_signed_ping_to_that_endpoint(admin, endpoint, receiver, op_admin):
    response = admin.post(_url("test", endpoint), follow=True)
    assert response.status_code == 200 and list(response.context["messages"])
    run_worker()
    [got] = receiver.accepted()
    assert got.verified
    envelope = json.loads(got.body)
    validate(envelope)
    assert envelope["type"] == "operator.test.ping" and envelope["data"]["organisation"] == "acme"
    page = admin.get(_url("detail", endpoint)).content.decode()
    assert envelope["id"] in page  # the outcome is listed on the endpoint's page
    assert AuditEvent.objects.filter(action="alerts.endpoint_test", actor=op_admin).exists()


def test_editing_checks_the_url_again_and_moves_waiting_events_to_it(admin, endpoint, incident, analyst):
    admin.post(_url("disable", endpoint))
    _bssn_message(incident, analyst)
    refused = admin.post(
        _url("detail", endpoint), {"name": "SOC", "url": "http://10.1.2.3/", "event_types": ALL_EVENTS}
    )
    assert b"field--error" in refused.content
    with Receiver(secret=endpoint.secret) as moved:
        response = admin.post(
            _url("detail", endpoint), {"name": "SOAR", "url": moved.url, "event_types": ALL_EVENTS}
        )
        assert response.status_code == 302
        endpoint.refresh_from_db()
        assert (endpoint.name, endpoint.url) == ("SOAR", moved.url)
        admin.post(_url("enable", endpoint), {"held": "release"})
        run_worker()
        assert [json.loads(r.body)["type"] for r in moved.accepted()] == ["operator.incident.message"]
    assert AuditEvent.objects.filter(action="alerts.endpoint_update").count() == 1


def test_disabling_holds_events_and_enabling_sends_them_oldest_first(
    admin, endpoint, incident, analyst, receiver
):
    response = admin.post(_url("disable", endpoint), follow=True)
    assert "disabled" in response.content.decode().lower() or list(response.context["messages"])
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    _bssn_message(incident, analyst, "first")
    _bssn_message(incident, analyst, "second")
    assert set(Delivery.objects.filter(channel=endpoint).values_list("status", flat=True)) == {"held"}
    page = admin.get(_url("detail", endpoint)).content.decode()
    assert "2" in page and _url("enable", endpoint) in page
    run_worker()
    assert receiver.received == []
    admin.post(_url("enable", endpoint), {"held": "release"})
    run_worker()
    assert [json.loads(r.body)["data"]["message"]["text"] for r in receiver.accepted()] == ["first", "second"]
    actions = set(AuditEvent.objects.filter(operator=endpoint.operator).values_list("action", flat=True))
    assert {"alerts.channel_disabled", "alerts.channel_enable"} <= actions


def test_enabling_with_discard_lists_the_waiting_events_as_failed(
    admin, endpoint, incident, analyst, receiver
):
    admin.post(_url("disable", endpoint))
    _bssn_message(incident, analyst)
    admin.post(_url("enable", endpoint), {"held": "discard"})
    run_worker()
    assert receiver.received == []
    assert Delivery.objects.get(channel=endpoint).status == DeliveryStatus.DEAD


def test_a_disabled_endpoint_is_not_tested(admin, endpoint):
    admin.post(_url("disable", endpoint))
    response = admin.post(_url("test", endpoint), follow=True)
    assert [m.level_tag for m in response.context["messages"]][-1] == "error"
    assert not Alert.objects.exists()


def test_rotating_shows_a_new_secret_once_and_both_sign_for_a_while(
    admin, endpoint, incident, analyst, receiver
):
    old = endpoint.secret
    response = admin.post(_url("rotate", endpoint))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = _secret(response)
    assert new != old and new not in admin.get(_url("detail", endpoint)).content.decode()
    receiver.secrets = [new]  # a receiver already switched to the new secret
    _bssn_message(incident, analyst)
    run_worker()
    [got] = receiver.accepted()
    # One still on the old secret verifies the same request too.
    Webhook(old).verify(got.body, got.headers)
    assert AuditEvent.objects.filter(action="alerts.secret_rotate", operator=endpoint.operator).exists()


def test_send_again_resends_a_failed_event(admin, endpoint, incident, analyst, receiver):
    receiver.script = [(400, {}, 0)]
    _bssn_message(incident, analyst)
    run_worker()
    delivery = Delivery.objects.get(channel=endpoint)
    assert delivery.status == DeliveryStatus.DEAD
    assert _url("resend", endpoint, delivery.pk) in admin.get(_url("detail", endpoint)).content.decode()
    admin.post(_url("resend", endpoint, delivery.pk))
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id  # the receiver can drop a duplicate


def test_deleting_removes_the_endpoint_and_what_was_sent_to_it(
    admin, endpoint, incident, analyst, receiver, op_admin
):
    _bssn_message(incident, analyst)
    run_worker()
    response = admin.post(_url("delete", endpoint))
    assert response.status_code == 302 and response["Location"] == _list_url(endpoint.operator)
    assert not Channel.objects.for_operator(endpoint.operator).exists()
    assert not Alert.objects.filter(event_type=OperatorEventType.MESSAGE).exists()  # BSSN's words went too
    event = AuditEvent.objects.get(action="alerts.endpoint_delete")
    assert (event.actor, event.changes["url"]) == (op_admin, receiver.url)


def test_deleting_waits_while_an_event_is_being_sent(admin, endpoint, incident, analyst):
    _bssn_message(incident, analyst)
    Delivery.objects.filter(channel=endpoint).update(status=DeliveryStatus.SENDING)
    response = admin.post(_url("delete", endpoint), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert (
        Channel.objects.filter(pk=endpoint.pk).exists() and Delivery.objects.filter(channel=endpoint).exists()
    )


def test_an_organisation_has_at_most_ten_endpoints(admin, operator, receiver):
    for n in range(operator_webhooks.MAX_ENDPOINTS):
        _create(admin, operator, receiver.url, name=f"SOC {n}")
    response = _create(admin, operator, receiver.url, name="one too many")
    assert b"alert--error" in response.content
    assert Channel.objects.for_operator(operator).count() == operator_webhooks.MAX_ENDPOINTS


@pytest.mark.parametrize("role", [Role.REPORTER, Role.VIEWER])
def test_only_the_organisations_admins_manage_endpoints(client_for, operator, endpoint, receiver, role):
    member = client_for(make_member(operator, role))
    assert member.get(_list_url(operator)).status_code == 403
    assert _create(member, operator, receiver.url, name="mine").status_code == 403
    assert member.post(_url("delete", endpoint)).status_code == 403
    assert list(Channel.objects.for_operator(operator).values_list("name", flat=True)) == ["SOC"]


def test_another_organisations_endpoint_is_a_404(client_for, outsider, other_operator, endpoint):
    attacker = client_for(outsider)
    own_slug = reverse("webhooks:detail", args=[other_operator.slug, endpoint.pk])
    assert attacker.get(own_slug).status_code == 404
    for action in ("rotate", "test", "disable", "delete"):
        url = reverse(f"webhooks:{action}", args=[other_operator.slug, endpoint.pk])
        assert attacker.post(url).status_code == 404, action
    endpoint.refresh_from_db()
    assert endpoint.enabled and not Alert.objects.exists()


def test_a_delivery_of_another_endpoint_is_a_404(
    admin, operator, op_admin, endpoint, incident, analyst, receiver
):
    second, _secret = operator_webhooks.endpoint_create(
        operator=operator, actor=op_admin, name="Other", url=receiver.url, event_types=ALL_EVENTS
    )
    _bssn_message(incident, analyst)
    delivery = Delivery.objects.get(channel=second)
    assert admin.post(_url("resend", endpoint, delivery.pk)).status_code == 404


def test_the_pages_speak_indonesian(admin, operator, endpoint):
    page = admin.get(_list_url(operator)).content.decode()
    assert "Tambahkan endpoint" in page
    detail = admin.get(_url("detail", endpoint)).content.decode()
    assert "Kirim peristiwa uji" in detail and "Pesan dari BSSN" in detail


def test_the_alert_list_of_the_organisation_leaves_out_its_own_webhooks(
    admin, endpoint, incident, analyst, operator
):
    _bssn_message(incident, analyst)
    page = admin.get(reverse("alerts:alert_list", args=[operator.slug])).content.decode()
    webhook_ids = Alert.objects.filter(event_type=OperatorEventType.MESSAGE).values_list("uuid", flat=True)
    assert webhook_ids and all(f"msg_{u.hex}" not in page for u in webhook_ids)


def test_a_delivery_that_goes_through_is_not_sent_twice(endpoint, incident, analyst, receiver):
    _bssn_message(incident, analyst)
    delivery = Delivery.objects.get(channel=endpoint)
    deliver(delivery_id=delivery.pk)
    deliver(delivery_id=delivery.pk)
    assert len(receiver.received) == 1


def test_the_verification_example_in_the_docs_accepts_a_real_request(endpoint, incident, analyst, receiver):
    from django.conf import settings

    docs = (settings.BASE_DIR / "docs" / "api.md").read_text()
    example = re.search(r"```python\n(import base64.*?)```", docs, re.S).group(1)
    namespace: dict = {}
    exec(example, namespace)  # noqa: S102 - our own documentation, as an operator would paste it
    _bssn_message(incident, analyst)
    run_worker()
    [got] = receiver.accepted()
    assert namespace["verify"](endpoint.secret, got.headers, got.body)
    assert not namespace["verify"](endpoint.secret, got.headers, got.body + b" ")


@pytest.mark.parametrize("fmt", ["", "?format=json"])
def test_the_api_reference_lists_the_webhooks(client, fmt):
    response = client.get("/api/schema/" + fmt)
    assert response.status_code == 200
    text = response.content.decode()
    for event_type in ALL_EVENTS:
        assert event_type in text
