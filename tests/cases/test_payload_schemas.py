"""The alerts a flag sends validate against docs/schemas (the contract with the authorities)."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from jsonschema import Draft202012Validator, FormatChecker

from incidents.cases import services
from incidents.cases.models import CaseFlag
from portal.alerts.models import Alert
from tests.cases.conftest import flag_post
from tests.consent.helpers import give

pytestmark = pytest.mark.django_db
SCHEMAS = Path(settings.BASE_DIR) / "docs" / "schemas"


def _validate(alert: Alert) -> None:
    schema = json.loads((SCHEMAS / f"{alert.event_type}.schema.json").read_text())
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(json.loads(alert.body))


def test_flagged_corrected_and_withdrawn_alerts_match_their_schemas(
    client_for, ht_reporter, healthtech_operator
):
    give(healthtech_operator, "user-4711", "share-identity-health")  # the identity variant, too
    data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a"}
    client_for(ht_reporter).post(reverse("cases:flag_create", args=[healthtech_operator.slug]), data)
    flag = CaseFlag.objects.get()
    assert "identity" in Alert.objects.get().payload
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
