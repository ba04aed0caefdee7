"""The SSRF guard refuses private, loopback, link-local and metadata targets when saved and when sent."""

import socket

import pytest
from django.core.exceptions import ValidationError

from portal.alerts.models import Delivery, DeliveryStatus, EventType
from portal.alerts.services import create_webhook_channel, deliver, emit_event
from portal.alerts.ssrf import UnsafeURL, resolve

pytestmark = pytest.mark.django_db

REAL_GETADDRINFO = socket.getaddrinfo


def fake_dns(monkeypatch, answers: dict[str, str]):
    """Answer DNS for the given names (the network boundary); others resolve normally."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def strict(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    settings.WEBHOOK_ALLOW_HTTP = False


@pytest.fixture
def authority(db):
    from portal.alerts.models import Authority

    return Authority.objects.create(code="ssrf", name="SSRF")


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",
    ],
)
def test_it_refuses_private_loopback_link_local_and_metadata_addresses(strict, authority, url):
    with pytest.raises(ValidationError) as exc:
        create_webhook_channel(authority=authority, url=url)
    assert "url" in exc.value.message_dict


def test_it_refuses_a_name_that_resolves_to_a_private_address(strict, authority, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.org": "10.1.2.3"})
    with pytest.raises(ValidationError):
        create_webhook_channel(authority=authority, url="https://hooks.example.org/alerts")


def test_it_refuses_a_name_that_resolves_to_the_metadata_service(strict, authority, monkeypatch):
    fake_dns(monkeypatch, {"meta.example.org": "169.254.169.254"})
    with pytest.raises(ValidationError) as exc:
        create_webhook_channel(authority=authority, url="https://meta.example.org/")
    assert "metadata" in str(exc.value)


def test_it_refuses_plain_http_unless_allowed(strict, authority, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.org": "93.184.215.14"})
    with pytest.raises(ValidationError):
        create_webhook_channel(authority=authority, url="http://hooks.example.org/alerts")
    channel, secret = create_webhook_channel(authority=authority, url="https://hooks.example.org/alerts")
    assert channel.pk and secret.startswith("whsec_")


def test_the_metadata_address_stays_refused_even_inside_an_allowed_network(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["169.254.0.0/16", "127.0.0.0/8"]
    with pytest.raises(UnsafeURL):
        resolve("https://169.254.169.254/")
    assert resolve("https://127.0.0.1:8443/x")[2] == ["127.0.0.1"]


def test_it_refuses_at_send_time_when_the_name_now_resolves_to_a_private_address(
    operator, strict, authority, monkeypatch
):
    """DNS rebinding: public when saved, metadata when sent. Nothing is sent; the delivery is dead."""
    from portal.alerts.models import RoutingRule

    fake_dns(monkeypatch, {"hooks.example.org": "93.184.215.14"})
    channel, _secret = create_webhook_channel(authority=authority, url="https://hooks.example.org/alerts")
    RoutingRule.objects.create(event_pattern="*", authority=authority)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    fake_dns(monkeypatch, {"hooks.example.org": "169.254.169.254"})
    deliver(delivery_id=alert.deliveries.get(channel=channel).pk)
    delivery = Delivery.objects.get(alert=alert, channel=channel)
    assert delivery.status == DeliveryStatus.DEAD and "metadata" in delivery.last_error


def test_the_send_goes_to_the_address_that_was_checked(operator, hook, receiver, monkeypatch):
    """The request connects to the resolved, checked address, not to a second DNS answer."""
    from portal.alerts.models import Channel

    fake_dns(monkeypatch, {"receiver.test": "127.0.0.1"})
    port = receiver.server.server_address[1]
    Channel.objects.filter(pk=hook.pk).update(url=f"http://receiver.test:{port}/hook")
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    deliver(delivery_id=alert.deliveries.get(channel=hook).pk)
    [got] = receiver.received
    assert got.headers["host"] == f"receiver.test:{port}" and got.verified
