"""The flag form: preview (works without JavaScript), submit, live classification endpoint."""

import pytest
from django.urls import reverse

from incidents.cases.models import CaseDefinition, CaseFlag, CaseIdentity, Disclosure
from incidents.cases.seed import WHO_2022
from portal.alerts.models import Alert
from tests.cases.conftest import flag_post

pytestmark = pytest.mark.django_db


def _url(operator, name="cases:flag_create"):
    return reverse(name, kwargs={"operator_slug": operator.slug})


def test_it_shows_the_form_with_the_default_definition(client_for, ht_reporter, healthtech_operator):
    response = client_for(ht_reporter).get(_url(healthtech_operator))
    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["form"]["definition"].value() == CaseDefinition.objects.get(code=WHO_2022).pk
    assert "WHO 2022.1" in body and "WHO 2020.2" in body, "2020.2 stays offered for history"
    assert 'src="/static/cases/classify.js"' in body and "nonce=" in body
    assert "<script>" not in body and 'style="' not in body


def test_it_previews_the_classification_without_saving(client_for, ht_reporter, healthtech_operator):
    response = client_for(ht_reporter).post(_url(healthtech_operator), {**flag_post(), "action": "preview"})
    assert response.status_code == 200
    assert response.context["evaluation"]["classification"] == "suspect_a"
    assert 'name="confirm_classification" value="suspect_a"' in response.content.decode()
    assert not CaseFlag.objects.exists()


def test_it_does_not_submit_without_the_classification_being_shown(
    client_for, ht_reporter, healthtech_operator
):
    response = client_for(ht_reporter).post(_url(healthtech_operator), {**flag_post(), "action": "submit"})
    assert response.status_code == 200
    assert response.context["evaluation"]["classification"] == "suspect_a"
    assert not CaseFlag.objects.exists()


def test_it_does_not_submit_when_the_facts_changed_after_the_preview(
    client_for, ht_reporter, healthtech_operator
):
    data = {**flag_post(epidemiological=[]), "action": "submit", "confirm_classification": "suspect_a"}
    response = client_for(ht_reporter).post(_url(healthtech_operator), data)
    assert response.context["evaluation"]["classification"] == "none"
    assert not CaseFlag.objects.exists()


def test_it_records_and_forwards_a_confirmed_flag(
    client_for, ht_reporter, healthtech_operator, django_capture_on_commit_callbacks
):
    data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a"}
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(ht_reporter).post(_url(healthtech_operator), data)
    flag = CaseFlag.objects.get()
    assert response.status_code == 302 and response["Location"] == flag.get_absolute_url()
    assert flag.classification == "suspect_a"
    assert flag.definition.short_name == "WHO 2020.2"
    assert flag.evaluation["criteria"] == ["clinical", "epidemiological"]
    assert flag.created_by == ht_reporter
    assert CaseIdentity.objects.get(flag=flag).nik == "7371015508900003"
    alert = Alert.objects.get()
    assert alert.event_type == "suspected_case.flagged"
    assert {d.authority.code for d in alert.deliveries.all()} == {"kemenkes", "dinkes-sn"}
    assert callbacks, "the deliveries are enqueued when the transaction commits"
    assert set(Disclosure.objects.values_list("authority_code", flat=True)) == {"kemenkes", "dinkes-sn"}

    page = client_for(ht_reporter).get(flag.get_absolute_url()).content.decode()
    assert "Suspek A" in page or "Suspect A" in page
    assert "Kementerian Kesehatan" in page and "Dinas Kesehatan Provinsi Sulawesi Selatan" in page
    assert "recontact_reference" in page and "identity.nik" not in page


def test_it_refuses_a_case_that_does_not_meet_the_definition(client_for, ht_reporter, healthtech_operator):
    data = {
        **flag_post(symptoms=["cough"], epidemiological=[]),
        "action": "submit",
        "confirm_classification": "none",
    }
    response = client_for(ht_reporter).post(_url(healthtech_operator), data)
    assert response.status_code == 200
    assert "data-submit-button hidden" in response.content.decode()
    assert not CaseFlag.objects.exists() and not Alert.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nik": "1234"}, "nik"),
        ({"nik": "7371013208900003"}, "nik"),  # day 32 is not a date
        ({"nik": "0071015508900003"}, "nik"),  # 00 is no province
        ({"province": "ID-XX"}, "province"),
        ({"regency_code": "31.71"}, "regency_code"),  # a Jakarta code in Sulawesi Selatan
        ({"onset_date": "2999-01-01"}, "onset_date"),
        ({"onset_date": ""}, "onset_date"),
        ({"legal_basis": ""}, "legal_basis"),
        ({"share_identity": "on", "share_reason": ""}, "share_reason"),
        ({"phone": "call me"}, "phone"),
    ],
)
def test_it_refuses_bad_input_with_a_message_and_saves_nothing(
    client_for, ht_reporter, healthtech_operator, overrides, field
):
    data = {**flag_post(**overrides), "action": "submit", "confirm_classification": "suspect_a"}
    response = client_for(ht_reporter).post(_url(healthtech_operator), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not CaseFlag.objects.exists() and not CaseIdentity.objects.exists() and not Alert.objects.exists()


def test_the_classify_endpoint_answers_json(client_for, ht_reporter, healthtech_operator):
    client = client_for(ht_reporter)
    response = client.post(_url(healthtech_operator, "cases:classify"), flag_post())
    assert response.status_code == 200
    assert response.json()["classification"] == "suspect_a"
    assert response.json()["meets_definition"] is True
    response = client.post(_url(healthtech_operator, "cases:classify"), flag_post(epidemiological=[]))
    assert response.json()["classification"] == "none"
    response = client.post(_url(healthtech_operator, "cases:classify"), {"definition": "nope"})
    assert response.status_code == 400 and "definition" in response.json()["errors"]


def test_a_viewer_cannot_flag(client_for, ht_viewer, healthtech_operator):
    client = client_for(ht_viewer)
    assert client.get(_url(healthtech_operator)).status_code == 403
    data = {**flag_post(), "action": "submit", "confirm_classification": "suspect_a"}
    assert client.post(_url(healthtech_operator), data).status_code == 403
    assert client.get(_url(healthtech_operator, "cases:flag_list")).status_code == 200
    assert not CaseFlag.objects.exists()


def test_anonymous_users_are_sent_to_sign_in(client, healthtech_operator, cases_seeded):
    response = client.get(_url(healthtech_operator))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_shows_the_classification_while_other_fields_need_fixing(
    client_for, ht_reporter, healthtech_operator
):
    data = {**flag_post(province="", age_band=""), "action": "preview"}
    response = client_for(ht_reporter).post(_url(healthtech_operator), data)
    assert response.status_code == 400
    assert response.context["evaluation"]["classification"] == "suspect_a"
    assert {"province", "age_band"} <= set(response.context["form"].errors)
    assert "data-submit-button hidden" in response.content.decode()
