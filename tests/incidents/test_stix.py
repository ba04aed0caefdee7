"""STIX 2.1 export: a bundle that parses back, valid patterns, TLP 2.0 markings, refused above clearance."""

import json

import pytest
import stix2
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from stix2patterns.validator import run_validator

from incidents import services
from incidents.models import TLP, Incident
from incidents.stix import TLP_MARKING_IDS
from portal.audit.models import AuditEvent
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:incidents_incident_changelist")


def _export(client, *incidents):
    return client.post(CHANGELIST, {"action": "export_stix", ACTION_CHECKBOX_NAME: [i.pk for i in incidents]})


def _attach(incident, user, entries, tlp):
    services.attach_observables(incident=incident, actor=user, entries=entries, tlp=tlp)


def test_a_selection_exports_as_a_valid_bundle_naming_the_sector_not_the_operator(
    analyst_client, operator, reporter, other_operator, other_reporter
):
    first = file_incident(operator, reporter, tlp=TLP.AMBER, title="Phishing of customers")
    second = file_incident(other_operator, other_reporter, tlp=TLP.GREEN)
    _attach(
        first,
        reporter,
        [("domain", "phish.example"), ("url", "http://phish.example/it's"), ("sha256", "a" * 64)],
        TLP.GREEN,
    )
    _attach(second, other_reporter, [("ipv4", "192.0.2.9"), ("email", "boss@phish.example")], TLP.AMBER)
    response = _export(analyst_client, first, second)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/stix+json")
    bundle = stix2.parse(response.content.decode(), allow_custom=False)
    by_type: dict[str, list] = {}
    for obj in bundle.objects:
        by_type.setdefault(obj.type, []).append(obj)
    assert len(by_type["incident"]) == 2
    assert {o.name for o in by_type["incident"]} >= {f"{first.reference}: Phishing of customers"}
    patterns = sorted(i.pattern for i in by_type["indicator"])
    assert "[domain-name:value = 'phish.example']" in patterns
    assert "[url:value = 'http://phish.example/it\\'s']" in patterns
    assert f"[file:hashes.'SHA-256' = '{'a' * 64}']" in patterns
    assert "[ipv4-addr:value = '192.0.2.9']" in patterns
    for pattern in patterns:
        assert run_validator(pattern, stix_version="2.1") == []
    assert len(by_type["observed-data"]) == 5
    names = {i.name for i in by_type["identity"]}
    assert {"E-commerce", "Fintech payment"} <= names
    assert operator.name not in names and other_operator.name not in names  # AMBER and GREEN name no victim
    markings = {m.id: m for m in by_type["marking-definition"]}
    assert TLP_MARKING_IDS[TLP.AMBER] in markings and TLP_MARKING_IDS[TLP.GREEN] in markings
    incident = next(o for o in by_type["incident"] if o.name.startswith(first.reference))
    assert incident.object_marking_refs == [TLP_MARKING_IDS[TLP.AMBER]]
    amber = markings[TLP_MARKING_IDS[TLP.AMBER]]
    assert (
        amber.extensions["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"] == "amber"
    )
    event = AuditEvent.objects.get(action="incident.stix_export")
    assert set(event.changes["incidents"]) == {first.reference, second.reference}


def test_a_clear_incident_names_its_operator(analyst_client, operator, reporter):
    incident = file_incident(operator, reporter, tlp=TLP.CLEAR)
    bundle = json.loads(_export(analyst_client, incident).content)
    assert operator.name in {o.get("name") for o in bundle["objects"] if o["type"] == "identity"}


def test_an_export_above_the_callers_clearance_is_refused_whole(
    analyst_client, supervisor_client, operator, reporter
):
    fine = file_incident(operator, reporter, tlp=TLP.AMBER)
    red = file_incident(operator, reporter, tlp=TLP.GREEN)
    _attach(red, reporter, [("domain", "secret.example")], TLP.RED)  # one RED indicator is enough
    response = _export(analyst_client, fine, red)
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="incident.stix_export").exists()
    messages = [str(m) for m in analyst_client.get(response.url).context["messages"]]
    assert any(red.reference in m for m in messages)
    # A supervisor is cleared for RED.
    response = supervisor_client.post(
        CHANGELIST, {"action": "export_stix", ACTION_CHECKBOX_NAME: [fine.pk, red.pk]}
    )
    assert response.status_code == 200
    bundle = stix2.parse(response.content.decode())
    assert TLP_MARKING_IDS[TLP.RED] in {o.id for o in bundle.objects if o.type == "marking-definition"}
    assert Incident.objects.count() == 2
