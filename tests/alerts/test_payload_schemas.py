"""docs/schemas: one JSON Schema per event type, and the envelopes we send validate against them."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from portal.alerts.models import EventType
from portal.alerts.services import emit_event, send_test_alert

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def schema_for(event_type: str) -> dict:
    return json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())


def validate(event_type: str, envelope: dict) -> None:
    Draft202012Validator(schema_for(event_type), format_checker=FormatChecker()).validate(envelope)


@pytest.mark.parametrize("event_type", EventType.values)
def test_every_event_type_has_a_valid_schema(event_type):
    schema = schema_for(event_type)
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["type"] == {"const": event_type}
    assert schema["properties"]["data"]["properties"]["schema"] == {"const": f"{event_type}/1"}


@pytest.mark.parametrize("name", [e for e in EventType.values if e.startswith("incident.")])
def test_the_incident_schemas_match_the_incidents_app(name):
    from incidents.payloads import SCHEMAS as INCIDENT_SCHEMAS

    data = dict(INCIDENT_SCHEMAS[f"{name}/1"])
    data.pop("$schema", None)
    assert schema_for(name)["properties"]["data"] == data


@pytest.mark.django_db
def test_a_test_ping_envelope_validates(webhook_authority):
    alert = send_test_alert(channel=webhook_authority)
    validate("test.ping", json.loads(alert.body))


FLAG = {
    "schema": "suspected_case.flagged/1",
    "flag_id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
    "revision": 1,
    "operator": {"slug": "sehat", "name": "PT Sehat"},
    "recontact_reference": "KONS-991",
    "classification": "suspect_a",
    "classifications": ["suspect_a", "suspect_b"],
    "case_definition": "WHO-2022.1",
    "symptoms": ["cough", "fever"],
    "onset_date": "2026-11-20",
    "province": "ID-BA",
    "regency": {"code": "51.71", "name": "Kota Denpasar"},
    "age_band": "30-39",
    "sex": "female",
}


@pytest.mark.django_db
def test_a_suspected_case_envelope_validates_and_an_unknown_field_does_not(healthtech_operator, seeded):
    alert = emit_event(
        event_type=EventType.SUSPECTED_CASE_FLAGGED, operator=healthtech_operator, payload=FLAG
    )
    validate("suspected_case.flagged", json.loads(alert.body))
    leaky = emit_event(
        event_type=EventType.SUSPECTED_CASE_FLAGGED,
        operator=healthtech_operator,
        payload={**FLAG, "notes": "internal"},
    )
    with pytest.raises(Exception, match="Additional properties"):
        validate("suspected_case.flagged", json.loads(leaky.body))


def test_the_receiver_docs_exist():
    text = (SCHEMAS.parent / "alerts.md").read_text()
    assert "manage.py webhook_receiver --port 8099 --secret whsec_" in text
    for event_type in EventType.values:
        assert f"schemas/{event_type}.schema.json" in text
