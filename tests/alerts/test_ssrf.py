"""The SSRF guard refuses private, loopback, link-local and metadata targets when saved and when sent."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError

from portal.alerts.models import Delivery, DeliveryStatus, EventType
from portal.alerts.services import create_webhook_channel, deliver, emit_event
from portal.alerts.ssrf import UnsafeURL, embedded_ipv4, resolve

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


def _teredo(server: str, client: str) -> str:
    """Return the Teredo address of `client` behind `server` (the client's bits are XOR-obfuscated)."""
    value = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64)
    value |= int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address(value))


EMBEDDINGS = {
    "IPv4-compatible": lambda v4: f"::{v4}",
    "IPv4-mapped": lambda v4: f"::ffff:{v4}",
    "SIIT translated": lambda v4: f"::ffff:0:{v4}",
    "NAT64 well-known": lambda v4: f"64:ff9b::{v4}",
    "NAT64 local-use /48": lambda v4: "64:ff9b:1:{:02x}{:02x}:{:02x}:{:02x}00::".format(
        *map(int, v4.split("."))
    ),
    "6to4": lambda v4: "2002:{:02x}{:02x}:{:02x}{:02x}::1".format(*map(int, v4.split("."))),
    "Teredo client": lambda v4: _teredo("65.54.227.120", v4),
    "Teredo server": lambda v4: _teredo(v4, "192.0.2.45"),
}


@pytest.mark.parametrize("embedding", sorted(EMBEDDINGS))
@pytest.mark.parametrize("inner", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254"])
def test_it_refuses_ipv6_that_embeds_a_refused_ipv4_address(strict, embedding, inner, monkeypatch):
    address = EMBEDDINGS[embedding](inner)
    with pytest.raises(UnsafeURL):
        resolve(f"https://[{address}]/hook")
    fake_dns(monkeypatch, {"v6.example.org": address})  # the same address as a DNS answer
    with pytest.raises(UnsafeURL):
        resolve("https://v6.example.org/hook")


@pytest.mark.parametrize("embedding", ["NAT64 well-known", "NAT64 local-use /48"])
def test_the_embedded_address_is_checked_by_the_same_policy(strict, embedding, settings):
    address = ipaddress.ip_address(EMBEDDINGS[embedding]("10.1.2.3"))
    assert [str(a) for a in embedded_ipv4(address)] == ["10.1.2.3"]
    public = EMBEDDINGS["NAT64 well-known"]("93.184.215.14")
    assert resolve(f"https://[{public}]/hook")[2] == ["64:ff9b::5db8:d70e"]  # public behind NAT64: allowed


def test_the_teredo_client_address_is_de_obfuscated():
    assert [str(a) for a in embedded_ipv4(ipaddress.ip_address(_teredo("65.54.227.120", "10.9.8.7")))] == [
        "65.54.227.120",
        "10.9.8.7",
    ]


def rebinding_dns(monkeypatch, name: str, first: str, then: str) -> list[str]:
    """Answer `first` for `name` once and `then` ever after; return the list of lookups made."""
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host == name:
            lookups.append(host)
            answer = first if len(lookups) == 1 else then
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_a_webhook_connects_to_the_checked_address_when_dns_rebinds(operator, hook, receiver, monkeypatch):
    """The name answers the receiver, then an internal address: one lookup, sent to the receiver."""
    from portal.alerts.models import Channel

    port = receiver.server.server_address[1]
    Channel.objects.filter(pk=hook.pk).update(url=f"http://rebind.test:{port}/hook")
    lookups = rebinding_dns(monkeypatch, "rebind.test", "127.0.0.1", "10.66.66.66")
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    deliver(delivery_id=alert.deliveries.get(channel=hook).pk)
    [got] = receiver.received
    assert got.verified and got.headers["host"] == f"rebind.test:{port}"
    assert lookups == ["rebind.test"]
    assert Delivery.objects.get(alert=alert, channel=hook).status == DeliveryStatus.DELIVERED


def test_the_admin_test_alert_connects_to_the_checked_address_when_dns_rebinds(
    hook, receiver, monkeypatch, staff_client, supervisor, django_capture_on_commit_callbacks
):
    from portal.alerts.models import Alert, Channel

    port = receiver.server.server_address[1]
    Channel.objects.filter(pk=hook.pk).update(url=f"http://rebind.test:{port}/hook")
    lookups = rebinding_dns(monkeypatch, "rebind.test", "127.0.0.1", "169.254.169.254")
    with django_capture_on_commit_callbacks():
        staff_client(supervisor).post(
            "/admin/alerts/channel/", {"action": "send_test_alert", "_selected_action": [hook.pk]}
        )
    ping = Alert.objects.get(event_type=EventType.TEST_PING)
    deliver(delivery_id=ping.deliveries.get(channel=hook).pk)  # what the worker runs
    [got] = receiver.received
    assert got.verified and lookups == ["rebind.test"]
