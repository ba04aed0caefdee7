"""Alert e-mails are written for people: every event type, text and HTML, both languages.

Each event type's e-mail is rendered from a payload built by the code that emits it
(incidents/payloads.py, the cases service, the test ping). The subject names the
reference and what happened, the summary names the organisation, the link leads to
the admin, times carry their zone with UTC beside them, and no payload key shows.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from incidents import payloads
from incidents.cases import services as case_services
from portal.alerts.emails import render_email
from portal.alerts.models import Alert, Authority, Delivery, EventType
from tests.conftest import make_member, make_operator
from tests.factories import cases_make_flag
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

# What a `key: value` dump of the payload would show: a payload key opening a line or a table cell.
RAW_KEYS = re.compile(
    r"(?:^|>)\s*(schema|reference|bssn_severity|personal_data|is_iiv|aware_at|submitted_at|due_at|flag_id|"
    r"recontact_reference|case_definition|age_band|sex|incident\.\w+|operator\.\w+)\s*[:<]",
    re.MULTILINE,
)


def _payloads(operator, user) -> dict[str, tuple[dict, object]]:
    """Return, per event type, (payload, subject object) as the emitting code builds them."""
    # Fixed times (the e-mails are checked for 01:00 UTC = 8.00 WIB), all in the past.
    aware = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    incident = file_incident(
        operator,
        user,
        occurred_at=aware - timedelta(hours=2),
        detected_at=aware - timedelta(hours=1),
        aware_at=aware,
    )
    change = incident.status_changes.order_by("pk").last()
    obligation = incident.obligations.select_related("rule").order_by("due_at").first()
    report = incident.reports.get(number=1)
    flag = cases_make_flag(operator, user, recontact_ref="RK-DEMO-1")
    corrected = case_services.flag_payload(flag, event_type=case_services.CORRECTED)
    corrected["corrected_fields"] = ["age_band", "symptoms"]
    withdrawn = case_services._base_payload(flag, case_services.WITHDRAWN)
    withdrawn["reason"] = "duplicate"
    return {
        EventType.INCIDENT_SUBMITTED: (payloads.submitted(incident), incident),
        EventType.INCIDENT_STATUS_CHANGED: (payloads.status_changed(incident, change), incident),
        EventType.INCIDENT_INFORMATION_REQUESTED: (
            payloads.information_requested(incident, timezone.now()),
            incident,
        ),
        EventType.INCIDENT_REPORT_ADDED: (payloads.report_added(incident, report), incident),
        EventType.INCIDENT_DEADLINE_MISSED: (payloads.deadline_missed(incident, obligation), incident),
        EventType.SUSPECTED_CASE_FLAGGED: (case_services.flag_payload(flag), flag),
        EventType.SUSPECTED_CASE_CORRECTED: (corrected, flag),
        EventType.SUSPECTED_CASE_WITHDRAWN: (withdrawn, flag),
        EventType.TEST_PING: ({"schema": "test.ping/1", "authority": "x", "message": "Test."}, None),
        EventType.LEDGER_CHECKPOINT: (
            {
                "schema": "ledger.checkpoint/1",
                "operator": {"slug": operator.slug, "name": operator.name},
                "stream": f"consent/{operator.pk}",
                "number": 3,
                "size": 42,
                "root_hash": "ab" * 32,
            },
            operator,
        ),
    }


def _render(event_type, payload, subject, authority) -> tuple:
    alert = Alert(
        event_type=event_type,
        operator=getattr(subject, "operator", None),
        payload=payload,
        subject_type=ContentType.objects.get_for_model(subject) if subject is not None else None,
        subject_id=str(subject.pk) if subject is not None else "",
        created_at=datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
    )
    alert.body = alert.render_body()
    message = render_email(Delivery(alert=alert, authority=authority, address="csirt@bssn.example.test"))
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return message, message.body, html


def test_the_raw_key_pattern_finds_a_dump():
    assert RAW_KEYS.search("To: BSSN\nincident.reference: INC-9\n")
    assert RAW_KEYS.search('<tr><th align="left">age_band</th><td>30-44</td></tr>')
    assert not RAW_KEYS.search("Recontact reference: RK-1\nAge band / sex: 30–44 years / Female\n")


def test_every_event_types_email_is_written_for_people():
    operator = make_operator("acme", province="ID-SN")
    user = make_member(operator, "admin", "admin@acme.example.test")
    authority = Authority.objects.create(code="bssn-test", name="BSSN CSIRT (test)", language="id")
    built = _payloads(operator, user)
    assert set(built) == set(EventType), "a new event type needs a case here"

    for event_type, (payload, subject) in built.items():
        message, text, html = _render(event_type, payload, subject, authority)
        for part in (text, html):
            assert not RAW_KEYS.search(part), (event_type, RAW_KEYS.search(part).group(0))
            assert "{" not in part.replace("{%", "") or "alert.json" in part  # no template left unrendered
        if event_type == EventType.TEST_PING:
            assert "BSSN CSIRT (test)" in text
            continue
        if event_type == EventType.LEDGER_CHECKPOINT:
            assert "ab" * 32 in text and "ab" * 32 in html
            assert operator.name in text and "42" in text
            continue
        assert operator.name in message.subject, event_type
        assert operator.name in text and operator.name in html, event_type
        if event_type.startswith("incident."):
            reference = payload["incident"]["reference"]
            assert f"[{reference}]" in message.subject, event_type
            assert f"/admin/incidents/incident/{subject.pk}/change/" in text
            assert f'href="{payload["incident"]["url"]}"' in html
            assert "Tinggi" in text  # the operator's severity, as a label
            assert "AMBER" in text  # TLP
            # Became aware 01:00 UTC: 8.00 WIB, the authority's zone (national), UTC beside it.
            assert "8.00 WIB (" in text and "1.00 UTC)" in text, event_type
        else:
            assert "RK-DEMO-1" in message.subject, event_type
            assert f"/admin/cases/caseflag/{subject.pk}/change/" in text
        # Both languages: the authority's (Indonesian) first, English below.
        assert text.index("----- English -----") > 0
        assert '<div lang="id">' in html and '<div lang="en">' in html
        assert html.index('lang="id"') < html.index('<div lang="en">')


def test_the_deadline_e_mail_names_the_deadline_its_zone_and_legal_source():
    operator = make_operator("acme")
    user = make_member(operator, "admin", "admin@acme.example.test")
    authority = Authority.objects.create(code="dinkes-test", name="Dinkes", language="en", province="ID-PA")
    incident = file_incident(operator, user)
    obligation = incident.obligations.select_related("rule").exclude(rule__legal_source="").first()

    message, text, html = _render(
        EventType.INCIDENT_DEADLINE_MISSED,
        payloads.deadline_missed(incident, obligation),
        incident,
        authority,
    )

    assert obligation.legal_source in text and obligation.legal_source in html
    assert "WIT (" in text  # a Papuan authority reads its own zone, with UTC beside it
    assert text.index("----- Bahasa Indonesia -----") > text.index("missed a reporting deadline")


def test_an_english_authority_reads_english_first():
    operator = make_operator("acme")
    user = make_member(operator, "admin", "admin@acme.example.test")
    authority = Authority.objects.create(code="en-test", name="English desk", language="en")
    incident = file_incident(operator, user)

    message, text, _html = _render(
        EventType.INCIDENT_SUBMITTED, payloads.submitted(incident), incident, authority
    )

    assert message.subject.startswith(f"[{incident.reference}] Incident submitted")
    assert text.startswith(f"{operator.name} reported a new incident")
    assert "melaporkan insiden baru" in text.split("----- Bahasa Indonesia -----")[1]


def test_a_new_incident_e_mail_lists_the_open_deadlines_with_zone_and_legal_source():
    operator = make_operator("acme")
    user = make_member(operator, "admin", "admin@acme.example.test")
    authority = Authority.objects.create(code="bssn-test", name="BSSN CSIRT (test)", language="id")
    incident = file_incident(
        operator,
        user,
        personal_data_involved=True,
        personal_data_categories=["contact"],
        data_subjects_count=40,
    )
    open_deadlines = list(incident.obligations.open().select_related("rule"))
    assert open_deadlines

    _message, text, html = _render(
        EventType.INCIDENT_SUBMITTED, payloads.submitted(incident), incident, authority
    )

    for obligation in open_deadlines:
        assert obligation.legal_source in text and obligation.legal_source in html
    assert text.count("Tenggat:") == len(open_deadlines)
