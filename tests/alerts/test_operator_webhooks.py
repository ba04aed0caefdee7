"""Webhooks back to the organisation: what BSSN does about its own incidents, to its own endpoints.

Driven through the real doors: BSSN's admin triage page (status, message, request for
information), the operator's incident page (its own answer), the deadline beat task;
a local receiver verifies every signature with the `standardwebhooks` library.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from incidents.models import CommentKind, Status
from incidents.tasks import send_deadline_reminders_task
from incidents.webhook_payloads import SCHEMAS
from portal.accounts.models import Role
from portal.alerts import operator_webhooks
from portal.alerts.models import (
    OPERATOR_EVENT_TYPES,
    OPERATOR_SUBSCRIBABLE,
    Alert,
    Authority,
    Channel,
    Delivery,
    DeliveryStatus,
    EventType,
    OperatorEventType,
    RoutingRule,
)
from portal.alerts.services import create_webhook_channel, deliver, emit_event, resend_alert
from portal.audit.models import AuditEvent
from tests.alerts.receiver import Receiver
from tests.conftest import make_member
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

ALL_EVENTS = [value for value, _label in OPERATOR_SUBSCRIBABLE]
SCHEMA_DIR = Path(settings.BASE_DIR) / "docs" / "schemas"


def add_endpoint(operator, admin, receiver, events=ALL_EVENTS) -> Channel:
    endpoint, secret = operator_webhooks.endpoint_create(
        operator=operator, actor=admin, name="SOC", url=receiver.url, event_types=events
    )
    receiver.secrets = [secret]
    return endpoint


def run_worker() -> None:
    """Send every due delivery, as a worker would."""
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
    for pk in due.order_by("pk").values_list("pk", flat=True):
        deliver(delivery_id=pk)


def envelopes(receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.accepted()]


def validate(envelope: dict) -> None:
    schema = json.loads((SCHEMA_DIR / f"{envelope['type']}.schema.json").read_text())
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(envelope)


@pytest.fixture
def other_receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def analyst_admin(staff_client, analyst):
    return staff_client(analyst)


def _transition(client, incident, to_status, reason="Looking at it"):
    url = reverse("admin:incidents_incident_transition", args=[incident.pk])
    return client.post(url, {"to_status": to_status, "reason": reason})


def _message(client, incident, kind, body):
    url = reverse("admin:incidents_incident_message", args=[incident.pk])
    return client.post(url, {"kind": kind, "body": body})


def test_a_status_change_on_the_triage_page_reaches_the_endpoint_signed(
    analyst_admin, operator, reporter, op_admin, receiver
):
    incident = file_incident(operator, reporter)
    add_endpoint(operator, op_admin, receiver)
    assert _transition(analyst_admin, incident, Status.TRIAGE).status_code == 302
    run_worker()
    [got] = receiver.accepted()
    assert got.verified  # the standardwebhooks reference library, with the endpoint's own secret
    envelope = json.loads(got.body)
    validate(envelope)
    assert envelope["type"] == "operator.incident.status_changed"
    data = envelope["data"]
    assert (data["from_status"], data["to_status"]) == ("submitted", "triage")
    assert data["incident"]["reference"] == incident.reference
    assert data["incident"]["url"].endswith(f"/api/v1/incidents/{incident.reference}/")
    assert data["changed_at"].endswith("Z") and envelope["timestamp"].endswith("Z")
    assert b"Looking at it" not in got.body  # BSSN's reasons stay with BSSN


def test_bssn_messages_and_requests_carry_their_text_and_no_ones_personal_data(
    analyst_admin, analyst, operator, reporter, op_admin, receiver
):
    incident = file_incident(operator, reporter)
    add_endpoint(operator, op_admin, receiver)
    _message(analyst_admin, incident, CommentKind.COMMENT, "Please rotate the VPN keys.")
    _message(analyst_admin, incident, CommentKind.REQUEST, "Send the firewall logs of 1 May.")
    run_worker()
    got = envelopes(receiver)
    assert [e["type"] for e in got] == [
        "operator.incident.message",
        "operator.incident.status_changed",  # the request puts the incident in "awaiting operator"
        "operator.incident.information_requested",
    ]
    for envelope in got:
        validate(envelope)
        text = json.dumps(envelope)
        for private in (
            analyst.email,
            analyst.get_full_name(),
            reporter.email,
            "Rina Reporter",
            "rina@acme.example",
            "+62 21 555 0101",
            "Files on two billing",  # the description
            incident.title,
        ):
            assert private not in text, (envelope["type"], private)
    assert got[0]["data"]["message"]["text"] == "Please rotate the VPN keys."
    assert got[1]["data"]["to_status"] == Status.AWAITING_OPERATOR
    assert got[2]["data"]["message"]["text"] == "Send the firewall logs of 1 May."
    assert got[2]["data"]["incident"]["status"] == Status.AWAITING_OPERATOR


def test_internal_notes_and_the_organisations_own_actions_send_nothing(
    analyst_admin, client_for, operator, reporter, op_admin, receiver
):
    add_endpoint(operator, op_admin, receiver)
    incident = file_incident(operator, reporter)  # its own submission
    _message(analyst_admin, incident, CommentKind.NOTE, "Looks like the 2025 campaign.")
    assert not Alert.objects.filter(event_type__in=OPERATOR_EVENT_TYPES).exists()
    _message(analyst_admin, incident, CommentKind.REQUEST, "Which VPN?")
    # The operator answers on its incident page: the incident goes back to triage, by the operator.
    page = reverse("incidents:comment", args=[operator.slug, incident.reference])
    assert client_for(reporter).post(page, {"body": "FortiGate"}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.SUBMITTED
    sent = list(
        Alert.objects.filter(event_type__in=OPERATOR_EVENT_TYPES)
        .order_by("pk")
        .values_list("event_type", flat=True)
    )
    assert sent == [OperatorEventType.STATUS_CHANGED, OperatorEventType.INFORMATION_REQUESTED]
    run_worker()
    assert b"FortiGate" not in b"".join(r.body for r in receiver.received)
    assert b"2025 campaign" not in b"".join(r.body for r in receiver.received)


def test_the_deadline_beat_sends_the_reminder_and_the_overdue_notice(operator, reporter, op_admin, receiver):
    incident = file_incident(operator, reporter)
    add_endpoint(operator, op_admin, receiver, events=[OperatorEventType.DEADLINE_REMINDER])
    obligation = incident.obligations.get(rule__code="final-report")
    with time_machine.travel(obligation.remind_at + timedelta(minutes=1), tick=False):
        send_deadline_reminders_task()
        run_worker()
    # The overdue notice goes only where it is subscribed: add it, then let the deadline pass.
    endpoint = Channel.objects.for_operator(operator).get()
    operator_webhooks.endpoint_update(
        endpoint=endpoint,
        actor=op_admin,
        data={"event_types": ALL_EVENTS, "name": "SOC", "url": receiver.url},
    )
    with time_machine.travel(obligation.due_at + timedelta(minutes=1), tick=False):
        send_deadline_reminders_task()
        send_deadline_reminders_task()  # a doubled beat run sends nothing twice
        run_worker()
    got = envelopes(receiver)
    assert [e["type"] for e in got] == [
        "operator.incident.deadline_reminder",
        "operator.incident.deadline_overdue",
    ]
    for envelope in got:
        validate(envelope)
        assert envelope["data"]["deadline"]["rule"] == "final-report"
        assert envelope["data"]["deadline"]["due_at"] == obligation.due_at.isoformat().replace("+00:00", "Z")


def test_a_5xx_is_retried_with_the_same_id_and_dead_after_the_last_attempt(
    operator, reporter, op_admin, analyst, receiver, settings, staff_client, supervisor
):
    settings.ALERTS_MAX_ATTEMPTS = 2
    receiver.default = (503, {}, 0)
    incident = file_incident(operator, reporter)
    endpoint = add_endpoint(operator, op_admin, receiver)
    from incidents import services

    services.add_bssn_comment(incident=incident, actor=analyst, body="Any news?")
    run_worker()
    delivery = Delivery.objects.get(channel=endpoint)
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "HTTP 503")
    assert delivery.next_attempt_at > timezone.now()  # backoff
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempt_count == 2
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id
    # BSSN sees it in the admin's failed list, with whose endpoint it was.
    page = staff_client(supervisor).get("/admin/alerts/delivery/?status__exact=dead&owner=organisation")
    assert page.status_code == 200
    assert operator.name.encode() in page.content and endpoint.url.encode() in page.content


def test_a_410_disables_the_endpoint_holds_what_follows_and_tells_the_organisations_admins(
    operator, reporter, op_admin, viewer, analyst, receiver, settings, django_capture_on_commit_callbacks
):
    settings.BSSN_NOTIFY_EMAILS = ["csirt@bssn.example.org"]
    receiver.default = (410, {}, 0)
    incident = file_incident(operator, reporter)
    endpoint = add_endpoint(operator, op_admin, receiver)
    from incidents import services

    mail.outbox.clear()
    services.add_bssn_comment(incident=incident, actor=analyst, body="Any news?")
    with django_capture_on_commit_callbacks(execute=True):
        run_worker()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "gone" in endpoint.disabled_reason
    assert Delivery.objects.get(channel=endpoint).status == DeliveryStatus.HELD
    # The organisation's admins hear of it (not its viewers, not BSSN), with a link to enable it again.
    notices = [m for m in mail.outbox if endpoint.url in m.body]
    assert [m.to for m in notices] == [[op_admin.email]]
    assert reverse("webhooks:detail", args=[operator.slug, endpoint.pk]) in notices[0].body
    assert AuditEvent.objects.filter(action="alerts.channel_disabled", operator=operator).exists()
    services.add_bssn_comment(incident=incident, actor=analyst, body="Hello?")
    later = Delivery.objects.filter(channel=endpoint).latest("pk")
    assert later.status == DeliveryStatus.HELD
    assert deliver(delivery_id=later.pk) is None and len(receiver.received) == 1


def _every_bssn_event(client, incident) -> None:
    """Make BSSN do everything that reaches an organisation's endpoint, and the deadlines pass."""
    _transition(client, incident, Status.TRIAGE)
    _message(client, incident, CommentKind.COMMENT, f"About {incident.reference}")
    _message(client, incident, CommentKind.REQUEST, f"Logs for {incident.reference}?")


def test_every_event_reaches_its_own_organisations_endpoints_only(
    analyst_admin,
    operator,
    other_operator,
    reporter,
    op_admin,
    outsider,
    receiver,
    other_receiver,
):
    # An authority routed every event ("*"), with its own endpoint.
    authority_receiver = Receiver().start()
    try:
        authority = Authority.objects.create(code="all", name="Everything Authority", language="en")
        authority_hook, secret = create_webhook_channel(authority=authority, url=authority_receiver.url)
        authority_receiver.secrets = [secret]
        RoutingRule.objects.create(event_pattern="*", authority=authority)
        mine = add_endpoint(operator, op_admin, receiver)
        theirs = add_endpoint(other_operator, outsider, other_receiver)
        incidents = {
            operator.slug: file_incident(operator, reporter),
            other_operator.slug: file_incident(
                other_operator, make_member(other_operator, Role.REPORTER, "rep@globex.example")
            ),
        }
        for incident in incidents.values():
            _every_bssn_event(analyst_admin, incident)
        obligations = [i.obligations.get(rule__code="final-report") for i in incidents.values()]
        with time_machine.travel(min(o.remind_at for o in obligations) + timedelta(minutes=1), tick=False):
            send_deadline_reminders_task()
        with time_machine.travel(max(o.due_at for o in obligations) + timedelta(minutes=1), tick=False):
            send_deadline_reminders_task()
            run_worker()
    finally:
        authority_receiver.stop()
    # Every kind of authority alert there is, about the first organisation (a suspected case, a
    # ledger checkpoint, ...): routed to the authority, never to an organisation's endpoint.
    for event_type in EventType.values:
        alert = emit_event(event_type=event_type, operator=operator, payload={"schema": f"{event_type}/1"})
        channels = Channel.objects.filter(deliveries__alert=alert)
        assert authority_hook in channels and not channels.filter(operator__isnull=False), event_type

    for org, rx, endpoint in ((operator, receiver, mine), (other_operator, other_receiver, theirs)):
        got = envelopes(rx)
        assert all(r.verified for r in rx.received)
        assert sorted(e["type"] for e in got) == sorted(ALL_EVENTS + [OperatorEventType.STATUS_CHANGED]), org
        for envelope in got:
            validate(envelope)
            assert envelope["data"]["organisation"] == org.slug
            assert envelope["data"]["incident"]["reference"] == incidents[org.slug].reference
        # In the outbox too: each operator event went to its own organisation's endpoint only.
        for delivery in Delivery.objects.filter(
            alert__operator=org, alert__event_type__in=OPERATOR_EVENT_TYPES
        ):
            assert delivery.channel_id == endpoint.pk and delivery.authority_id is None
    # The authority got its alerts, and never an organisation's event.
    authority_types = [e["type"] for e in envelopes(authority_receiver)]
    assert {"incident.submitted", "incident.status_changed", "incident.deadline_missed"} <= set(
        authority_types
    )
    assert not any(t.startswith("operator.") for t in authority_types)
    assert not Delivery.objects.filter(
        channel=authority_hook, alert__event_type__in=OPERATOR_EVENT_TYPES
    ).exists()
    assert not Delivery.objects.filter(
        channel__operator__isnull=False, alert__event_type__in=EventType.values
    ).exists()
    # BSSN's messages about one organisation never reached the other's receiver.
    assert incidents[operator.slug].reference.encode() not in b"".join(
        r.body for r in other_receiver.received
    )


def test_an_authority_alert_cannot_be_resent_to_an_organisations_endpoint(operator, op_admin, receiver, hook):
    endpoint = add_endpoint(operator, op_admin, receiver)
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    with pytest.raises(ValidationError):
        resend_alert(alert=alert, channel=endpoint)
    assert not Delivery.objects.filter(channel=endpoint).exists()


def test_the_channel_admin_shows_organisations_endpoints_read_only(
    operator, op_admin, receiver, staff_client, supervisor
):
    endpoint = add_endpoint(operator, op_admin, receiver)
    sup = staff_client(supervisor)
    listing = sup.get("/admin/alerts/channel/?owner=organisation")
    assert listing.status_code == 200 and endpoint.url.encode() in listing.content
    page = sup.get(f"/admin/alerts/channel/{endpoint.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    sup.post(
        f"/admin/alerts/channel/{endpoint.pk}/change/", {"url": "https://example.org/x", "kind": "webhook"}
    )
    endpoint.refresh_from_db()
    assert endpoint.url == receiver.url
    # Nor can BSSN's resend form pick an organisation's endpoint.
    from portal.alerts.admin import ResendForm

    assert endpoint not in ResendForm().fields["channel"].queryset


def test_a_routing_rule_cannot_name_an_organisations_event():
    from portal.alerts.models import EventPattern

    assert not OPERATOR_EVENT_TYPES & set(EventPattern.values)
    with pytest.raises(ValueError):
        emit_event(event_type=OperatorEventType.MESSAGE, operator=None, payload={"schema": "x"})


@pytest.mark.parametrize("event_type", OperatorEventType.values)
def test_every_organisation_event_has_a_published_schema(event_type):
    published = json.loads((SCHEMA_DIR / f"{event_type}.schema.json").read_text())
    Draft202012Validator.check_schema(published)
    assert published["properties"]["type"] == {"const": event_type}
    data = published["properties"]["data"]
    assert data["properties"]["schema"] == {"const": f"{event_type}/1"}
    if event_type != OperatorEventType.TEST_PING:
        built = dict(SCHEMAS[f"{event_type}/1"])
        built.pop("$schema")
        assert data == built


def test_the_bssn_dashboard_counts_alerts_to_authorities_only(
    operator, reporter, op_admin, analyst, receiver, staff_client
):
    import re

    incident = file_incident(operator, reporter)
    endpoint = add_endpoint(operator, op_admin, receiver)
    from incidents import services

    services.add_bssn_comment(incident=incident, actor=analyst, body="Any news?")
    Delivery.objects.filter(channel=endpoint).update(status=DeliveryStatus.DEAD)
    client = staff_client(analyst)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("admin:dashboard")).content.decode()
    panel = re.search(r'<section class="dashboard-panel" id="panel-delivery".*?</section>', page, re.S).group(
        0
    )
    # The organisation's own receiver failing is not a dead letter of BSSN's alerting.
    assert "Dead letters by authority" not in panel and "None" not in panel
