"""The alerts a flag sends validate against docs/schemas (the contract with the authorities)."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from jsonschema import Draft202012Validator, FormatChecker

from incidents.cases import services
from incidents.cases.models import CaseFlag
from portal.alerts.models import Alert
from portal.alerts.services import deliver
from tests.cases.conftest import flag_post
from tests.consent.helpers import give

pytestmark = pytest.mark.django_db
SCHEMAS = Path(settings.BASE_DIR) / "docs" / "schemas"


def _validate_envelope(event_type: str, envelope: dict) -> None:
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(envelope)


def _validate(alert: Alert) -> None:
    _validate_envelope(alert.event_type, json.loads(alert.body))


def test_flagged_corrected_and_withdrawn_alerts_match_their_schemas(
    client_for, ht_reporter, healthtech_operator
):
    give(healthtech_operator, "user-4711", "share-identity-health")  # the identity variant, too
    data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a"}
    client_for(ht_reporter).post(reverse("cases:flag_create", args=[healthtech_operator.slug]), data)
    flag = CaseFlag.objects.get()
    flagged = Alert.objects.get()
    for delivery in flagged.deliveries.all():
        deliver(delivery_id=delivery.pk)
    [email] = [m for m in mail.outbox if "kemkes" in m.to[0]]
    sent = json.loads(email.attachments[0][1])
    assert "identity" in sent["data"], "the identity variant as it leaves"
    _validate_envelope("suspected_case.flagged", sent)
    form_data = {
        **flag_post(),
        "definition": flag.definition,
        "onset_date": flag.onset_date,
        "age_band": "60+",
    }
    services.correct_flag(flag=flag, actor=ht_reporter, data=form_data)
    services.withdraw_flag(flag=flag, actor=ht_reporter, reason="mistake")
    alerts = Alert.objects.order_by("pk")
    assert [a.event_type for a in alerts] == [
        "suspected_case.flagged",
        "suspected_case.corrected",
        "suspected_case.withdrawn",
    ]
    for alert in alerts:
        _validate(alert)
