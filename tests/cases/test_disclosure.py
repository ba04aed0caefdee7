"""Minimal disclosure, tested on the exact bytes the health office's webhook receives."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from incidents.cases.models import CaseFlag, Disclosure
from portal.alerts.models import Alert, Authority, Channel, Delivery
from portal.alerts.services import deliver
from tests.alerts.receiver import Receiver
from tests.cases.conftest import ADDRESS, NAME, NIK, NOTE, PHONE, flag_post
from tests.consent.helpers import give

pytestmark = pytest.mark.django_db

SUBJECT = "user-4711"
# Every way the person could leak: name, phone (as typed and as digits), NIK and its
# birth-date part, the birth date itself, address, the internal note, the consultation reference.
FORBIDDEN = [
    NAME,
    "Siti",
    PHONE,
    "812 5555",
    "8125555",
    NIK,
    "550890",
    "1990-08-15",
    "15-08-1990",
    ADDRESS,
    "Jalan Contoh",
    NOTE,
    "KONS-2026-0001",
    SUBJECT,
]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def health_office_hook(cases_seeded, receiver):
    """A webhook channel of the Sulawesi Selatan health office pointing at the local receiver."""
    channel = Channel(authority=Authority.objects.get(code="dinkes-sn"), kind="webhook", url=receiver.url)
    receiver.secrets = [channel.rotate_secret(overlap=timedelta(0))]
    channel.save()
    return channel


def _submit(client, operator, **overrides):
    data = {**flag_post(**overrides), "action": "submit", "confirm_classification": "suspect_a"}
    response = client.post(reverse("cases:flag_create", kwargs={"operator_slug": operator.slug}), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    return CaseFlag.objects.latest("created_at")


def _deliver_all(alert: Alert) -> None:
    for delivery in Delivery.objects.filter(alert=alert):
        deliver(delivery_id=delivery.pk)


def test_without_consent_the_bytes_sent_carry_no_identity(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    flag = _submit(client_for(ht_reporter), healthtech_operator)
    alert = Alert.objects.get()
    _deliver_all(alert)

    [received] = receiver.accepted()
    assert received.verified, "signed with the channel's Standard Webhooks secret"
    assert received.body == alert.body.encode()
    sent = received.body.decode()
    for value in FORBIDDEN:
        assert value not in sent, value
    data = json.loads(sent)["data"]
    assert data == {
        "schema": "suspected_case.flagged/1",
        "flag_id": str(flag.uid),
        "revision": 1,
        "classification": "suspect_a",
        "classifications": ["suspect_a"],
        "case_definition": "WHO/2019-nCoV/Surveillance_Case_Definition/2020.2",
        "symptoms": ["cough", "fever"],
        "onset_date": flag.onset_date.isoformat(),
        "province": "ID-SN",
        "regency": {"code": "73.71", "name": "Kota Makassar"},
        "age_band": "30-44",
        "sex": "female",
        "operator": {"slug": healthtech_operator.slug, "name": healthtech_operator.name},
        "recontact_reference": flag.recontact_ref,
    }
    # The e-mail to the Ministry of Health (text, HTML and the JSON attachment) leaks nothing either.
    [email] = [m for m in mail.outbox if "kemkes" in m.to[0]]
    email_bytes = email.message().as_bytes().decode("utf-8", "replace")
    for value in FORBIDDEN:
        assert value not in email_bytes, value

    disclosures = Disclosure.objects.filter(flag=flag)
    assert {d.recipient for d in disclosures} == {
        "Kementerian Kesehatan",
        "Dinas Kesehatan Provinsi Sulawesi Selatan",
    }
    for d in disclosures:
        assert not d.identity_included and d.basis == ""
        assert d.fields == sorted(
            [
                "schema",
                "flag_id",
                "revision",
                "classification",
                "classifications",
                "case_definition",
                "symptoms",
                "onset_date",
                "province",
                "regency.code",
                "regency.name",
                "age_band",
                "sex",
                "operator",
                "recontact_reference",
            ]
        )


def test_with_current_consent_the_identity_is_sent_and_recorded(
    client_for, ht_reporter, healthtech_operator, health_office_hook, receiver
):
    give(healthtech_operator, SUBJECT, "share-identity-health")
    flag = _submit(client_for(ht_reporter), healthtech_operator, subject_identifier=SUBJECT)
    alert = Alert.objects.get()
    _deliver_all(alert)

    [received] = receiver.accepted()
    assert received.verified
    data = json.loads(received.body)["data"]
    assert data["identity"] == {"full_name": NAME, "phone": PHONE, "nik": NIK, "address": ADDRESS}
    assert NOTE not in received.body.decode() and "KONS-2026-0001" not in received.body.decode()
    assert flag.identity_basis == "consent"
    for d in Disclosure.objects.filter(flag=flag):
        assert d.identity_included and d.basis == "consent"
        assert {"identity.full_name", "identity.phone", "identity.nik", "identity.address"} <= set(d.fields)

    page = client_for(ht_reporter).get(flag.get_absolute_url()).content.decode()
    assert "identity.nik" in page


def test_consent_for_another_purpose_or_withdrawn_consent_shares_nothing(
    client_for, ht_reporter, healthtech_operator, cases_seeded
):
    give(healthtech_operator, SUBJECT, "marketing-email")
    give(healthtech_operator, "user-9", "share-identity-health")
    give(healthtech_operator, "user-9", "share-identity-health", state="withdrawn")
    client = client_for(ht_reporter)
    first = _submit(client, healthtech_operator, subject_identifier=SUBJECT)
    second = _submit(client, healthtech_operator, subject_identifier="user-9", nik="", consultation_ref="K-2")
    for flag in (first, second):
        assert flag.identity_basis == ""
        alert = Alert.objects.get(subject_id=str(flag.pk))
        assert "identity" not in alert.payload and NAME not in alert.body


def test_a_recorded_legal_basis_with_a_reason_shares_the_identity(
    client_for, ht_reporter, healthtech_operator, cases_seeded
):
    flag = _submit(
        client_for(ht_reporter),
        healthtech_operator,
        legal_basis="vital_interest",
        share_identity="on",
        share_reason="Sesak berat, perlu dijemput ambulans segera",
    )
    alert = Alert.objects.get()
    assert NIK not in alert.body, "the queued alert holds no identity; it is added when a message leaves"
    _deliver_all(alert)
    [email] = [m for m in mail.outbox if "kemkes" in m.to[0]]
    [(_name, attachment, _type)] = email.attachments
    assert json.loads(attachment)["data"]["identity"]["nik"] == NIK
    assert "ambulans" not in email.message().as_bytes().decode("utf-8", "replace"), "the reason stays"
    assert flag.identity_basis == "legal_basis"
    assert flag.identity_basis_reason.startswith("Sesak berat")
    assert all(d.identity_included and d.basis == "legal_basis" for d in flag.disclosures.all())


def test_the_operator_sees_the_disclosure_record_per_flag(
    client_for, ht_reporter, healthtech_operator, cases_seeded
):
    flag = _submit(client_for(ht_reporter), healthtech_operator)
    page = client_for(ht_reporter).get(flag.get_absolute_url()).content.decode()
    assert page.count("data-disclosure") == 2
    assert "suspected_case.flagged" in page
    assert "age_band, case_definition, classification" in page
