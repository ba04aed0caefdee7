"""E-mails to people about an incident, through the notice outbox (a worker sends them after commit)."""

from django.conf import settings
from django.urls import reverse

from portal.accounts.models import WRITE_ROLES, User
from portal.alerts.notices import queue_email
from portal.alerts.transports import plain_email

from ..models import Incident


def _operator_recipients(incident: Incident) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True, memberships__operator_id=incident.operator_id, memberships__role__in=WRITE_ROLES
        ).order_by("email")
    )


def mail_operator(incident: Incident, template: str, context: dict) -> None:
    """E-mail the organisation's admins and reporters, each in their own language (sent after commit)."""
    url = settings.SITE_URL.rstrip("/") + incident.get_absolute_url()
    base = {"incident": incident, "operator": incident.operator, "url": url, **context}
    for user in _operator_recipients(incident):
        message = plain_email(
            to=[user.email],
            template=f"incidents/emails/{template}",
            context={**base, "recipient": user},
            language=user.language or settings.LANGUAGE_CODE,
        )
        queue_email(message, template=f"incidents/{template}", operator=incident.operator)


def mail_bssn(incident: Incident, template: str, context: dict) -> None:
    """E-mail BSSN's notification addresses (settings.BSSN_NOTIFY_EMAILS) (outbox: sent after commit)."""
    recipients = list(settings.BSSN_NOTIFY_EMAILS)
    if not recipients:
        return
    url = settings.SITE_URL.rstrip("/") + reverse("admin:incidents_incident_change", args=[incident.pk])
    message = plain_email(
        to=recipients,
        template=f"incidents/emails/{template}",
        context={"incident": incident, "operator": incident.operator, "url": url, **context},
        language=settings.LANGUAGE_CODE,
    )
    queue_email(message, template=f"incidents/{template}", operator=incident.operator)
