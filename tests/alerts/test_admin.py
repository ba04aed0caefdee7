"""BSSN admin: authorities, channels, rules, alerts and deliveries; retry and test-alert actions."""

import pytest

from portal.alerts.models import Alert, Channel, Delivery, DeliveryStatus, EventType, RoutingRule
from portal.alerts.services import emit_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def sup(staff_client, supervisor):
    return staff_client(supervisor)


def _dead_delivery(operator, hook):
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    delivery = alert.deliveries.get(channel=hook)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DEAD, attempt_count=1, last_error="HTTP 400"
    )
    return delivery


@pytest.mark.parametrize("page", ["authority", "channel", "routingrule", "alert", "delivery"])
def test_the_supervisor_sees_every_alerts_page(sup, seeded, operator, hook, page):
    _dead_delivery(operator, hook)
    assert sup.get(f"/admin/alerts/{page}/").status_code == 200


def test_delivery_page_lists_attempts_inline_and_filters_by_status_and_authority(
    sup, operator, hook, receiver
):
    from portal.alerts.services import deliver

    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    delivery = alert.deliveries.get(channel=hook)
    deliver(delivery_id=delivery.pk)
    page = sup.get(f"/admin/alerts/delivery/{delivery.pk}/change/")
    assert page.status_code == 200 and b"200" in page.content
    listing = sup.get(
        f"/admin/alerts/delivery/?status__exact=delivered&authority__id__exact={hook.authority_id}"
    )
    assert hook.url.encode() in listing.content
    assert sup.get(f"/admin/alerts/alert/{alert.pk}/change/").status_code == 200


def test_the_failed_list_shows_only_dead_deliveries_newest_first(sup, operator, hook):
    first, second, third = (_dead_delivery(operator, hook) for _ in range(3))
    Delivery.objects.filter(pk=second.pk).update(status=DeliveryStatus.DELIVERED)
    listing = sup.get("/admin/alerts/delivery/?status__exact=dead")
    assert [d.pk for d in listing.context["cl"].result_list] == [third.pk, first.pk]
    ours = {first.pk, second.pk, third.pk}  # the operator's alerts also go to other channels
    everything = sup.get("/admin/alerts/delivery/").context["cl"].result_list
    assert [d.pk for d in everything if d.pk in ours] == [third.pk, second.pk, first.pk]


def test_the_retry_action_queues_a_dead_delivery_again(
    sup, operator, hook, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: enqueued.extend(delivery_ids),
    )
    delivery = _dead_delivery(operator, hook)
    with django_capture_on_commit_callbacks(execute=True):
        response = sup.post("/admin/alerts/delivery/", {"action": "retry", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and enqueued == [delivery.pk]


def test_an_analyst_may_retry_but_not_edit_routing(staff_client, analyst, operator, hook, seeded):
    c = staff_client(analyst)
    delivery = _dead_delivery(operator, hook)
    c.post("/admin/alerts/delivery/", {"action": "retry", "_selected_action": [delivery.pk]})
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING
    rule = RoutingRule.objects.first()
    assert c.post(f"/admin/alerts/routingrule/{rule.pk}/change/", {}).status_code == 403
    assert c.get("/admin/alerts/authority/add/").status_code == 403


def test_send_test_alert_sends_a_ping_to_that_channel_only(sup, hook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        sup.post("/admin/alerts/channel/", {"action": "send_test_alert", "_selected_action": [hook.pk]})
    alert = Alert.objects.get(event_type=EventType.TEST_PING)
    assert [d.channel for d in alert.deliveries.all()] == [hook]
    assert alert.payload["schema"] == "test.ping/1"
    assert len(callbacks) == 1


def test_a_new_webhook_shows_its_secret_once(sup, settings):
    from portal.alerts.models import Authority

    authority = Authority.objects.create(code="new-auth", name="New Authority")
    response = sup.post(
        "/admin/alerts/channel/add/",
        {
            "authority": authority.pk,
            "kind": "webhook",
            "url": "http://127.0.0.1:8099/hook",
            "enabled": "on",
        },
        follow=True,
    )
    channel = Channel.objects.get(authority=authority)
    assert channel.secret.startswith("whsec_")
    assert channel.secret.encode() in response.content
    again = sup.get(f"/admin/alerts/channel/{channel.pk}/change/")
    assert channel.secret.encode() not in again.content


def test_the_admin_refuses_a_private_webhook_url(sup, settings):
    from portal.alerts.models import Authority

    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    authority = Authority.objects.create(code="new-auth", name="New Authority")
    response = sup.post(
        "/admin/alerts/channel/add/",
        {
            "authority": authority.pk,
            "kind": "webhook",
            "url": "http://10.0.0.1/hook",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert not Channel.objects.filter(authority=authority).exists()
    assert b"privat" in response.content  # "The address 10.0.0.1 is private, …", in Indonesian


def test_rotating_a_secret_shows_the_new_one_and_keeps_the_old_signing(sup, hook):
    old = hook.secret
    response = sup.post(
        "/admin/alerts/channel/", {"action": "rotate_secret", "_selected_action": [hook.pk]}, follow=True
    )
    hook.refresh_from_db()
    assert hook.secret != old and hook.secret.encode() in response.content
    assert hook.signing_secrets() == [hook.secret, old]


def _held_channel(operator, hook, count: int) -> list[Delivery]:
    Channel.objects.filter(pk=hook.pk).update(enabled=False, disabled_reason="gone: endpoint disabled")
    for _ in range(count):
        emit_event(
            event_type=EventType.INCIDENT_SUBMITTED,
            operator=operator,
            payload={"schema": "incident.submitted/1"},
        )
    held = list(Delivery.objects.filter(channel=hook).order_by("pk"))
    assert [d.status for d in held] == [DeliveryStatus.HELD] * count
    return held


def test_enabling_a_channel_in_its_form_can_discard_the_backlog_audited(
    sup, operator, hook, django_capture_on_commit_callbacks, monkeypatch
):
    from portal.audit.models import AuditEvent

    enqueued = []
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: enqueued.extend(delivery_ids),
    )
    held = _held_channel(operator, hook, 3)
    page = sup.get(f"/admin/alerts/channel/{hook.pk}/change/")
    assert page.status_code == 200 and "held_alerts" in page.content.decode()
    data = {
        "authority": hook.authority_id,
        "kind": "webhook",
        "name": "",
        "email": "",
        "url": hook.url,
        "enabled": "on",
        "held_alerts": "discard",
        "disabled_reason": "gone: endpoint disabled",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = sup.post(f"/admin/alerts/channel/{hook.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    hook.refresh_from_db()
    assert hook.enabled and hook.disabled_reason == ""
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in held]).values_list("status", flat=True)) == {
        DeliveryStatus.DEAD
    }
    assert enqueued == []
    event = AuditEvent.objects.filter(action="alerts.channel_enable").get()
    assert event.changes["held"] == 3 and event.changes["backlog"] == "discarded"


def test_the_release_action_queues_the_backlog_oldest_first(
    sup, operator, hook, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: enqueued.extend(delivery_ids),
    )
    held = _held_channel(operator, hook, 3)
    with django_capture_on_commit_callbacks(execute=True):
        response = sup.post(
            "/admin/alerts/channel/", {"action": "enable_and_release", "_selected_action": [hook.pk]}
        )
    assert response.status_code == 302
    assert enqueued == [d.pk for d in held]
    assert set(Delivery.objects.filter(channel=hook).values_list("status", flat=True)) == {
        DeliveryStatus.PENDING
    }


def test_an_alert_can_be_resent_to_any_channel_audited(
    sup, operator, hook, webhook_authority, django_capture_on_commit_callbacks, monkeypatch
):
    from portal.audit.models import AuditEvent

    enqueued = []
    monkeypatch.setattr(
        "portal.alerts.services.enqueue_deliveries",
        lambda *, delivery_ids, countdown=None, kind=None: enqueued.extend(delivery_ids),
    )
    alert = emit_event(
        event_type=EventType.INCIDENT_SUBMITTED, operator=operator, payload={"schema": "incident.submitted/1"}
    )
    assert not alert.deliveries.filter(channel=webhook_authority).exists()  # no rule routes it there
    form = sup.post("/admin/alerts/alert/", {"action": "resend", "_selected_action": [alert.pk]})
    assert form.status_code == 200 and 'name="channel"' in form.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = sup.post(
            "/admin/alerts/alert/",
            {
                "action": "resend",
                "_selected_action": [alert.pk],
                "apply": "1",
                "channel": webhook_authority.pk,
            },
        )
    assert response.status_code == 302
    delivery = alert.deliveries.get(channel=webhook_authority)
    assert delivery.status == DeliveryStatus.PENDING and enqueued == [delivery.pk]
    # A delivered one goes out again too, from the deliveries list.
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DELIVERED)
    with django_capture_on_commit_callbacks(execute=True):
        sup.post("/admin/alerts/delivery/", {"action": "resend", "_selected_action": [delivery.pk]})
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING
    assert enqueued == [delivery.pk, delivery.pk]
    assert AuditEvent.objects.filter(action="alerts.delivery_resend").count() == 2
