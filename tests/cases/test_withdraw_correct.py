"""Withdrawal and correction send follow-up alerts; the flag row stays."""

import pytest
from django.urls import reverse

from incidents.cases.models import CaseDefinition, CaseFlag, Disclosure
from incidents.cases.seed import WHO_2022
from portal.alerts.models import Alert
from portal.audit.models import AuditEvent
from tests.cases.conftest import NAME, NIK, flag_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def flag(client_for, ht_reporter, healthtech_operator) -> CaseFlag:
    data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a"}
    client_for(ht_reporter).post(reverse("cases:flag_create", args=[healthtech_operator.slug]), data)
    return CaseFlag.objects.get()


def _url(flag, name):
    return reverse(f"cases:{name}", kwargs={"operator_slug": flag.operator.slug, "flag_id": flag.pk})


def test_it_withdraws_a_flag_and_tells_the_recipients(client_for, ht_reporter, flag):
    response = client_for(ht_reporter).post(_url(flag, "flag_withdraw"), {"reason": "mistake"})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.status == "withdrawn" and flag.withdraw_reason == "mistake"
    alert = Alert.objects.get(event_type="suspected_case.withdrawn")
    assert alert.payload == {
        "schema": "suspected_case.withdrawn/1",
        "flag_id": str(flag.uid),
        "revision": 1,
        "operator": {"slug": flag.operator.slug, "name": flag.operator.name},
        "recontact_reference": flag.recontact_ref,
        "reason": "mistake",
    }
    assert {d.authority.code for d in alert.deliveries.all()} == {"kemenkes", "dinkes-sn"}
    assert Disclosure.objects.filter(flag=flag, event_type="suspected_case.withdrawn").count() == 2
    assert AuditEvent.objects.filter(action="case_flag.withdraw", target_id=str(flag.pk)).exists()
    # Twice is refused with a message, not a second alert.
    client_for(ht_reporter).post(_url(flag, "flag_withdraw"), {"reason": "mistake"})
    assert Alert.objects.filter(event_type="suspected_case.withdrawn").count() == 1


def test_a_bad_withdrawal_reason_changes_nothing(client_for, ht_reporter, flag):
    client_for(ht_reporter).post(_url(flag, "flag_withdraw"), {"reason": "because"})
    flag.refresh_from_db()
    assert flag.is_active and not Alert.objects.filter(event_type="suspected_case.withdrawn").exists()


def test_it_corrects_a_flag_reclassifies_it_and_sends_no_identity(client_for, ht_reporter, flag):
    who_2022 = CaseDefinition.objects.get(code=WHO_2022)
    data = {
        **flag_post(
            definition=who_2022.pk,
            epidemiological=["contact_of_case"],
            symptoms=[],
            onset_date="",
            antigen_result="positive",
            age_band="45-59",
        )
    }
    response = client_for(ht_reporter).post(_url(flag, "flag_correct"), data)
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.revision == 2 and flag.definition == who_2022
    assert flag.classification == "suspect_a" and flag.age_band == "45-59"
    alert = Alert.objects.get(event_type="suspected_case.corrected")
    assert alert.payload["schema"] == "suspected_case.corrected/1"
    assert alert.payload["revision"] == 2
    assert alert.payload["case_definition"] == WHO_2022
    assert (
        "age_band" in alert.payload["corrected_fields"] and "definition" in alert.payload["corrected_fields"]
    )
    assert "identity" not in alert.payload and NIK not in alert.body and NAME not in alert.body
    event = AuditEvent.objects.get(action="case_flag.correct")
    assert event.changes["age_band"] == {"old": "30-44", "new": "45-59"}


def test_a_correction_that_no_longer_meets_the_definition_is_refused(client_for, ht_reporter, flag):
    response = client_for(ht_reporter).post(_url(flag, "flag_correct"), flag_post(epidemiological=[]))
    assert response.status_code == 400
    flag.refresh_from_db()
    assert flag.revision == 1 and flag.epidemiological == ["community_transmission"]
    assert not Alert.objects.filter(event_type="suspected_case.corrected").exists()


def test_a_withdrawn_flag_cannot_be_corrected(client_for, ht_reporter, flag):
    client = client_for(ht_reporter)
    client.post(_url(flag, "flag_withdraw"), {"reason": "duplicate"})
    response = client.post(_url(flag, "flag_correct"), flag_post(age_band="60+"))
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.age_band == "30-44"


def test_a_viewer_can_read_but_not_withdraw(client_for, ht_viewer, flag):
    client = client_for(ht_viewer)
    assert client.get(_url(flag, "flag_detail")).status_code == 200
    assert client.post(_url(flag, "flag_withdraw"), {"reason": "mistake"}).status_code == 403
    assert client.get(_url(flag, "flag_correct")).status_code == 403
    flag.refresh_from_db()
    assert flag.is_active


def test_the_list_filters_flags(client_for, ht_reporter, flag, healthtech_operator):
    client = client_for(ht_reporter)
    url = reverse("cases:flag_list", args=[healthtech_operator.slug])
    assert flag.recontact_ref in client.get(url).content.decode()
    assert flag.recontact_ref in client.get(url, {"classification": "suspect_a"}).content.decode()
    assert flag.recontact_ref not in client.get(url, {"classification": "suspect_b"}).content.decode()
    assert flag.recontact_ref not in client.get(url, {"province": "ID-JK"}).content.decode()
    assert flag.recontact_ref not in client.get(url, {"status": "withdrawn"}).content.decode()
    assert client.get(url, {"since": "not-a-date"}).status_code == 200


def test_reading_a_flags_decrypted_fields_is_audited(client_for, ht_viewer, flag):
    client_for(ht_viewer).get(_url(flag, "flag_detail"))
    event = AuditEvent.objects.get(action="case_flag.view", actor=ht_viewer)
    assert event.changes == {"decrypted": ["consultation_ref", "note"]}
    assert event.target_id == str(flag.pk)
