"""E-mails to people about an incident, through the notice outbox (a worker sends them after commit).

Each e-mail is in both languages, the recipient's first (Indonesian when unknown), and
shows times in the recipient's zone with UTC beside them: the organisation's zone for
its people, WIB for BSSN.
"""

from django.conf import settings
from django.urls import reverse

from portal.accounts.models import WRITE_ROLES, User
from portal.alerts.emails import plain_email
from portal.alerts.models import Alert, ChannelKind, Delivery
from portal.alerts.notices import queue_email

from ..models import Incident

BSSN_ZONE = "Asia/Jakarta"


def _operator_recipients(incident: Incident) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True, memberships__operator_id=incident.operator_id, memberships__role__in=WRITE_ROLES
        ).order_by("email")
    )


def _deadlines(incident: Incident) -> list:
    """Return the incident's open deadlines, soonest first (name, due time, legal source)."""
    return list(incident.obligations.open().select_related("rule").order_by("due_at"))


def mail_operator(incident: Incident, template: str, context: dict) -> None:
    """E-mail the organisation's admins and reporters, each in their own language (sent after commit)."""
    url = settings.SITE_URL.rstrip("/") + incident.get_absolute_url()
    base = {
        "incident": incident,
        "operator": incident.operator,
        "url": url,
        "zone": incident.operator.timezone,
        **context,
    }
    for user in _operator_recipients(incident):
        message = plain_email(
            to=[user.email],
            template=f"incidents/emails/{template}",
            context={**base, "recipient": user},
            language=user.language or None,
        )
        queue_email(message, template=f"incidents/{template}", operator=incident.operator)


def _alert_email_addresses(alert: Alert | None) -> set[str]:
    """Return the addresses the alert's own e-mail already reaches (they need no second e-mail)."""
    if alert is None or alert.pk is None:
        return set()
    addresses = Delivery.objects.filter(alert_id=alert.pk, kind=ChannelKind.EMAIL).values_list(
        "address", flat=True
    )
    return {address.strip().lower() for address in addresses}


def mail_bssn(incident: Incident, template: str, context: dict, *, alert: Alert | None = None) -> None:
    """E-mail BSSN's notification addresses (settings.BSSN_NOTIFY_EMAILS) (outbox: sent after commit).

    `alert` is the event's alert: an address that already receives its e-mail (BSSN's
    CSIRT channel, routed every incident event) is not sent this notice too, so each
    address gets one e-mail per event. The language of these addresses is not known:
    Indonesian first, English below.
    """
    covered = _alert_email_addresses(alert)
    recipients = [a for a in settings.BSSN_NOTIFY_EMAILS if a.strip().lower() not in covered]
    if not recipients:
        return
    url = settings.SITE_URL.rstrip("/") + reverse("admin:incidents_incident_change", args=[incident.pk])
    message = plain_email(
        to=recipients,
        template=f"incidents/emails/{template}",
        context={
            "incident": incident,
            "operator": incident.operator,
            "url": url,
            "zone": BSSN_ZONE,
            "deadlines": _deadlines(incident),
            **context,
        },
        language=None,
    )
    queue_email(message, template=f"incidents/{template}", operator=incident.operator)
