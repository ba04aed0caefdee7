"""E-mails to people about an incident: one per event per address, written for people, both languages."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from incidents import services
from incidents.services.notify import mail_bssn, mail_operator
from portal.accounts.models import TimeZone
from portal.alerts.models import Delivery
from portal.alerts.seed import seed_authorities
from portal.alerts.services import deliver
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

CSIRT = "csirt@bssn.example.org"  # the seeded BSSN CSIRT e-mail channel, routed every incident event


# Fixed times (pages and e-mails are checked for 01:00 UTC), all in the past: occurred 2 h and
# detected 1 h before the operator became aware.
_AWARE = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
AWARE_AT_01_UTC = {
    "occurred_at": _AWARE - timedelta(hours=2),
    "detected_at": _AWARE - timedelta(hours=1),
    "aware_at": _AWARE,
}


def test_bssn_csirt_gets_one_e_mail_per_new_incident(
    operator, reporter, settings, mailoutbox, django_capture_on_commit_callbacks
):
    seed_authorities()
    settings.BSSN_NOTIFY_EMAILS = [CSIRT.upper(), "duty@bssn.example.test"]
    with django_capture_on_commit_callbacks(execute=True):
        incident = file_incident(operator, reporter, severity="critical")
    for delivery in Delivery.objects.filter(alert__subject_id=str(incident.pk), kind="email"):
        deliver(delivery_id=delivery.pk)

    received = Counter(address.lower() for message in mailoutbox for address in message.to)
    assert received[CSIRT] == 1  # the alert e-mail, not the alert and the notice
    assert received["duty@bssn.example.test"] == 1  # not a channel: it gets the notice


def _notices(incident, analyst, reporter) -> dict[str, dict]:
    obligation = (
        incident.obligations.select_related("rule").exclude(rule__legal_source="").order_by("due_at").first()
    )
    comment = services.add_bssn_comment(incident=incident, actor=analyst, body="Which hosts were hit?")
    change = services.change_status(incident=incident, actor=analyst, to_status="triage", reason="Checking")
    return {
        "status_changed": {"change": change},
        "information_requested": {"comment": comment},
        "new_comment": {"comment": comment},
        "deadline_reminder": {"obligation": obligation},
        "deadline_missed": {"obligation": obligation},
        "bssn_new_incident": {"report": incident.reports.first(), "change": change},
        "bssn_deadline_missed": {"obligation": obligation},
    }


def test_every_incident_notice_is_written_for_people(
    operator, reporter, analyst, settings, mailoutbox, django_capture_on_commit_callbacks
):
    operator.timezone = TimeZone.WITA
    operator.save()
    settings.BSSN_NOTIFY_EMAILS = ["duty@bssn.example.test"]
    incident = file_incident(operator, reporter, title="Ransomware & billing", **AWARE_AT_01_UTC)
    for template, context in _notices(incident, analyst, reporter).items():
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            (mail_bssn if template.startswith("bssn_") else mail_operator)(incident, template, context)
        [message] = mailoutbox
        [(html, _mimetype)] = message.alternatives
        text = message.body
        assert message.subject.startswith(f"[{incident.reference}] Ransomware & billing"), template
        assert incident.reference in text and incident.reference in html
        assert "----- English -----" in text and '<div lang="en">' in html  # Indonesian first, English below
        if template.startswith("bssn_"):
            assert f"/admin/incidents/incident/{incident.pk}/change/" in text
            zone = "WIB ("  # BSSN reads Jakarta time, with UTC beside it
        else:
            assert incident.get_absolute_url() in text
            zone = "WITA ("  # the organisation's zone
        if "obligation" in context or template == "bssn_new_incident":
            assert zone in text and "UTC)" in text, template
        if "obligation" in context:
            assert context["obligation"].legal_source in text, template
        assert "Time (UTC)" not in text


def test_the_new_incident_notice_lists_the_deadlines_with_their_legal_source(
    operator, reporter, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.BSSN_NOTIFY_EMAILS = ["duty@bssn.example.test"]
    with django_capture_on_commit_callbacks(execute=True):
        incident = file_incident(operator, reporter, severity="critical")
    [message] = [m for m in mailoutbox if m.to == ["duty@bssn.example.test"]]
    for obligation in incident.obligations.open().select_related("rule"):
        assert obligation.legal_source in message.body
