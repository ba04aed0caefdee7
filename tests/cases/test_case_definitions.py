"""Current case definitions (issue 15.5): WHO 2022.1 by default, every class met, only its criteria."""

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from jsonschema import Draft202012Validator, FormatChecker

from incidents.cases.models import CaseDefinition, CaseFlag
from incidents.cases.rules import Facts
from incidents.cases.seed import WHO_2020, WHO_2022, make_current_default
from portal.alerts.models import Authority, Channel, Delivery
from portal.alerts.services import deliver
from tests.alerts.receiver import Receiver
from tests.cases.conftest import flag_post

pytestmark = pytest.mark.django_db
SCHEMAS = Path(settings.BASE_DIR) / "docs" / "schemas"
TODAY = date(2026, 11, 27)


def _who(code: str) -> CaseDefinition:
    return CaseDefinition.objects.get(code=code)


def _url(operator, name="cases:flag_create"):
    return reverse(name, kwargs={"operator_slug": operator.slug})


def _sari_post(**overrides) -> dict:
    """A hospitalised patient with fever and cough, no epidemiological link, under WHO 2022.1."""
    values = {
        "definition": _who(WHO_2022).pk,
        "symptoms": ["fever", "cough"],
        "epidemiological": [],
        "sari": "on",
        "nik": "",
        "consultation_ref": "KONS-SARI",
        **overrides,
    }
    return flag_post(**values)


# --- The evaluator --------------------------------------------------------------------


def test_a_hospitalised_sari_patient_meets_a_and_b_under_2022():
    facts = Facts(
        symptoms=frozenset({"fever", "cough"}), sari=True, onset_date=TODAY - timedelta(days=3), as_of=TODAY
    )
    result = _who(WHO_2022).evaluate(facts)
    assert result.classification == "suspect_a"
    assert result.matched_classes == ["suspect_a", "suspect_b"]
    assert _who(WHO_2020).evaluate(facts).matched_classes == ["suspect_b"]


def test_it_says_what_each_unmet_class_still_needs():
    fever_and_cough = Facts(
        symptoms=frozenset({"fever", "cough"}), onset_date=TODAY - timedelta(days=3), as_of=TODAY
    )
    result = _who(WHO_2020).evaluate(fever_and_cough)
    assert not result.meets_definition
    unmet = dict(result.unmet)
    assert unmet["suspect_a"] == [{"criterion": "epidemiological"}]
    assert unmet["suspect_b"] == [{"criterion": "sari"}]
    assert unmet["suspect_c"] == [{"criterion": "asymptomatic"}, "antigen_positive"]

    nothing = _who(WHO_2022).evaluate(Facts(as_of=TODAY))
    assert dict(nothing.unmet)["suspect_a"] == [
        {"any": [[{"criterion": "clinical"}], [{"criterion": "epidemiological"}]]}
    ]
    assert _who(WHO_2022).evaluate(fever_and_cough).unmet[0][0] == "suspect_b", "A is met; B and C are not"


def test_a_supervisors_own_default_is_kept_and_2020_moves_to_2022(db):
    CaseDefinition.objects.filter(code=WHO_2022).update(is_default=False)
    CaseDefinition.objects.filter(code=WHO_2020).update(is_default=True)
    make_current_default()
    assert _who(WHO_2022).is_default and not _who(WHO_2020).is_default

    CaseDefinition.objects.filter(code=WHO_2022).update(is_default=False)
    own = CaseDefinition.objects.create(
        code="KMK-2023", short_name="Kemenkes 2023", issuer="Kemenkes", published_on=TODAY, rule={}
    )
    CaseDefinition.objects.filter(pk=own.pk).update(is_default=True)
    make_current_default()
    assert CaseDefinition.objects.get(is_default=True).pk == own.pk


# --- The flag form -----------------------------------------------------------------------


def test_the_form_shows_only_the_criteria_of_the_chosen_definition(
    client_for, ht_reporter, healthtech_operator
):
    client = client_for(ht_reporter)
    body = client.get(_url(healthtech_operator)).content.decode()
    who_2020, who_2022 = _who(WHO_2020), _who(WHO_2022)
    assert f'data-definitions="{who_2022.pk}" hidden' not in body
    assert f'data-definitions="{who_2022.pk}">' in body, "2022.1-only criteria are shown"
    assert f'data-definitions="{who_2020.pk}" hidden' in body, "2020.2-only criteria are hidden"
    assert 'src="/static/cases/criteria.js"' in body

    preview = client.post(_url(healthtech_operator), {**flag_post(), "action": "preview"})
    body = preview.content.decode()
    assert f'data-definitions="{who_2022.pk}" hidden' in body
    assert f'data-definitions="{who_2020.pk}">' in body


def test_a_criterion_of_another_definition_is_refused_with_a_message(
    client_for, ht_reporter, healthtech_operator
):
    data = {
        **flag_post(epidemiological=["community_transmission", "contact_of_case"]),
        "action": "submit",
        "confirm_classification": "suspect_a",
    }
    response = client_for(ht_reporter).post(_url(healthtech_operator), data)
    assert response.status_code == 400
    errors = response.context["form"].errors["epidemiological"]
    # The reporter's language is Bahasa Indonesia.
    assert errors[0].startswith(
        "WHO 2020.2 tidak mencantumkan kriteria berikut: Kontak dengan kasus probabel"
    )
    assert not CaseFlag.objects.exists()

    classify = client_for(ht_reporter).post(
        _url(healthtech_operator, "cases:classify"),
        {"definition": _who(WHO_2020).pk, "symptoms": ["fever"], "epidemiological": ["cluster_linked"]},
    )
    assert classify.status_code == 400 and "epidemiological" in classify.json()["errors"]


def test_the_form_says_which_criteria_are_missing(client_for, ht_reporter, healthtech_operator):
    client = client_for(ht_reporter)
    response = client.post(_url(healthtech_operator), {**flag_post(epidemiological=[]), "action": "preview"})
    evaluation = response.context["evaluation"]
    assert evaluation["classification"] == "none"
    assert evaluation["missing"][0] == "Suspek A memerlukan: satu kriteria epidemiologis dari definisi ini"
    assert evaluation["missing"][1].startswith("Suspek B memerlukan: infeksi saluran pernapasan akut berat")
    assert response.content.decode().count("data-missing>") == 3
    assert "data-submit-button hidden" in response.content.decode()

    live = client.post(
        _url(healthtech_operator, "cases:classify"),
        {"definition": _who(WHO_2022).pk, "antigen_result": "not_done"},
    ).json()
    assert not live["meets_definition"] and len(live["missing"]) == 3
    assert live["missing"][0].startswith("Suspek A memerlukan: kriteria klinis (demam dan batuk")
    assert " atau satu kriteria epidemiologis" in live["missing"][0], "2022.1: clinical OR epidemiological"


def test_a_sari_flag_stores_and_forwards_both_classes(client_for, ht_reporter, healthtech_operator):
    receiver = Receiver().start()
    try:
        office = Channel(authority=Authority.objects.get(code="dinkes-sn"), kind="webhook", url=receiver.url)
        receiver.secrets = [office.rotate_secret(overlap=timedelta(0))]
        office.save()
        data = {**_sari_post(), "action": "submit", "confirm_classification": "suspect_a"}
        response = client_for(ht_reporter).post(_url(healthtech_operator), data)
        assert response.status_code == 302
        flag = CaseFlag.objects.get()
        assert flag.definition.code == WHO_2022
        assert (flag.classification, flag.classes) == ("suspect_a", ["suspect_a", "suspect_b"])
        deliver(delivery_id=Delivery.objects.get(channel=office).pk)
        [received] = receiver.accepted()
    finally:
        receiver.stop()
    envelope = json.loads(received.body)
    schema = json.loads((SCHEMAS / "suspected_case.flagged.schema.json").read_text())
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(envelope)
    assert envelope["data"]["classifications"] == ["suspect_a", "suspect_b"]
    assert envelope["data"]["case_definition"] == WHO_2022

    page = client_for(ht_reporter).get(flag.get_absolute_url()).content.decode()
    assert "data-classes>" in page and "Suspe" in page.split("data-classes>")[1].split("</dd>")[0]
    assert page.split("data-classes>")[1].split("</dd>")[0].count(",") == 1, "two classes shown"


def test_bssn_admin_shows_every_class_met(
    client_for, ht_reporter, healthtech_operator, staff_client, analyst
):
    data = {**_sari_post(), "action": "submit", "confirm_classification": "suspect_a"}
    client_for(ht_reporter).post(_url(healthtech_operator), data)
    flag = CaseFlag.objects.get()
    admin = staff_client(analyst)
    listing = admin.get(reverse("admin:cases_caseflag_changelist"))
    change = admin.get(reverse("admin:cases_caseflag_change", args=[flag.pk]))
    assert listing.status_code == 200 and change.status_code == 200
    for response in (listing, change):
        text = response.content.decode()
        assert "Suspek A, Suspek B" in text


def test_a_correction_that_changes_the_classes_is_forwarded(client_for, ht_reporter, healthtech_operator):
    client = client_for(ht_reporter)
    data = {**_sari_post(sari=""), "action": "submit", "confirm_classification": "suspect_a"}
    assert client.post(_url(healthtech_operator), data).status_code == 302
    flag = CaseFlag.objects.get()
    assert flag.classes == ["suspect_a"]
    url = reverse("cases:flag_correct", args=[healthtech_operator.slug, flag.pk])
    form = client.get(url).content.decode()
    assert f'data-definitions="{_who(WHO_2020).pk}" hidden' in form, "only the flag's definition's criteria"
    assert 'src="/static/cases/criteria.js"' in form
    correction = {**_sari_post(), "onset_date": flag.onset_date.isoformat()}
    response = client.post(url, correction)
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.classes == ["suspect_a", "suspect_b"]
    corrected = flag.disclosures.filter(event_type="suspected_case.corrected").first()
    assert corrected is not None and "classifications" in corrected.fields


def test_a_correction_that_no_longer_meets_the_definition_says_what_is_missing(
    client_for, ht_reporter, healthtech_operator
):
    client = client_for(ht_reporter)
    data = {**_sari_post(), "action": "submit", "confirm_classification": "suspect_a"}
    assert client.post(_url(healthtech_operator), data).status_code == 302
    flag = CaseFlag.objects.get()
    url = reverse("cases:flag_correct", args=[healthtech_operator.slug, flag.pk])
    response = client.post(url, {**_sari_post(symptoms=[], sari=""), "onset_date": ""})
    assert response.status_code == 400
    errors = response.context["form"].non_field_errors()
    assert any(e.startswith("Suspek A memerlukan: kriteria klinis") for e in errors), errors
    flag.refresh_from_db()
    assert flag.revision == 1 and flag.classes == ["suspect_a", "suspect_b"]
