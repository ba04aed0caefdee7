"""A held-out table for both WHO definitions, written from the definitions' text (DESIGN.md §4).

Each row: the facts, then the expected classification under WHO 2020.2 and WHO 2022.1.
"""

from datetime import date, timedelta

import pytest
from django.utils import translation

from incidents.cases.models import CaseDefinition
from incidents.cases.rules import Facts
from incidents.cases.seed import WHO_2020, WHO_2022

TODAY = date(2026, 11, 27)
RECENT = TODAY - timedelta(days=3)

A, B, C, NONE = "suspect_a", "suspect_b", "suspect_c", "none"

# (case, symptoms, epidemiological criteria, sari, antigen positive, onset, WHO 2020.2, WHO 2022.1)
TABLE = [
    # Edge case: fever and cough only (clinical, no epidemiological link).
    ("fever and cough only", {"fever", "cough"}, set(), False, False, RECENT, NONE, A),
    (
        "fever and cough, community transmission",
        {"fever", "cough"},
        {"community_transmission"},
        False,
        False,
        RECENT,
        A,
        A,
    ),
    (
        "fever and cough, health-care worker",
        {"fever", "cough"},
        {"health_care_setting"},
        False,
        False,
        RECENT,
        A,
        A,
    ),
    (
        "fever and cough, high-risk setting",
        {"fever", "cough"},
        {"high_risk_setting"},
        False,
        False,
        RECENT,
        A,
        A,
    ),
    # Edge case: three symptoms without fever meet the clinical criteria.
    (
        "three symptoms without fever",
        {"headache", "myalgia", "sore_throat"},
        set(),
        False,
        False,
        RECENT,
        NONE,
        A,
    ),
    (
        "three symptoms without fever, travel to a transmission area",
        {"headache", "myalgia", "sore_throat"},
        {"community_transmission"},
        False,
        False,
        RECENT,
        A,
        A,
    ),
    (
        "two symptoms without fever, transmission area",
        {"headache", "coryza"},
        {"community_transmission"},
        False,
        False,
        RECENT,
        NONE,
        NONE,
    ),
    ("fever alone, health-care worker", {"fever"}, {"health_care_setting"}, False, False, RECENT, NONE, NONE),
    ("cough alone", {"cough"}, set(), False, False, RECENT, NONE, NONE),
    (
        "fever and two other symptoms",
        {"fever", "diarrhoea", "anorexia_nausea_vomiting"},
        {"community_transmission"},
        False,
        False,
        RECENT,
        A,
        A,
    ),
    # Edge case: 2022 epidemiological criteria alone (no symptoms at all).
    (
        "2022 epidemiological criteria alone: contact of a case",
        set(),
        {"contact_of_case"},
        False,
        False,
        None,
        NONE,
        A,
    ),
    ("2022 epidemiological criteria alone: cluster", set(), {"cluster_linked"}, False, False, None, NONE, A),
    (
        "2020 epidemiological criteria alone",
        set(),
        {"community_transmission"},
        False,
        False,
        None,
        NONE,
        NONE,
    ),
    (
        "contact of a case with fever and cough",
        {"fever", "cough"},
        {"contact_of_case"},
        False,
        False,
        RECENT,
        NONE,
        A,
    ),
    # Edge case: no symptoms and a positive antigen test.
    ("no symptoms, positive antigen test", set(), set(), False, True, None, C, C),
    (
        "no symptoms, positive antigen, 2020 epidemiological link",
        set(),
        {"community_transmission"},
        False,
        True,
        None,
        NONE,
        C,
    ),
    ("no symptoms, positive antigen, contact of a case", set(), {"contact_of_case"}, False, True, None, C, A),
    ("one symptom, positive antigen test", {"headache"}, set(), False, True, RECENT, NONE, NONE),
    ("no symptoms, negative antigen test", set(), set(), False, False, None, NONE, NONE),
    # SARI: fever, cough, onset within 10 days, needs hospitalisation.
    (
        "SARI within 10 days",
        {"fever", "cough", "dyspnoea"},
        set(),
        True,
        False,
        TODAY - timedelta(days=10),
        B,
        A,
    ),
    ("SARI, onset 11 days ago", {"fever", "cough"}, set(), True, False, TODAY - timedelta(days=11), NONE, A),
    ("hospitalised without cough", {"fever", "dyspnoea"}, set(), True, False, RECENT, NONE, NONE),
    (
        "SARI and an epidemiological link",
        {"fever", "cough"},
        {"community_transmission"},
        True,
        False,
        RECENT,
        A,
        A,
    ),
    ("nothing at all", set(), set(), False, False, None, NONE, NONE),
]


@pytest.fixture
def definitions(db):
    return CaseDefinition.objects.get(code=WHO_2020), CaseDefinition.objects.get(code=WHO_2022)


@pytest.mark.parametrize(
    ("case", "symptoms", "epi", "sari", "antigen", "onset", "who2020", "who2022"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_it_classifies_the_held_out_table(
    definitions, case, symptoms, epi, sari, antigen, onset, who2020, who2022
):
    facts = Facts(
        symptoms=frozenset(symptoms),
        epidemiological=frozenset(epi),
        sari=sari,
        antigen_positive=antigen,
        onset_date=onset,
        as_of=TODAY,
    )
    who_2020, who_2022 = definitions
    assert who_2020.evaluate(facts).classification == who2020, f"WHO 2020.2: {case}"
    assert who_2022.evaluate(facts).classification == who2022, f"WHO 2022.1: {case}"


def test_it_returns_the_criteria_that_matched(definitions):
    who_2020, who_2022 = definitions
    facts = Facts(
        symptoms=frozenset({"fever", "cough", "headache"}),
        epidemiological=frozenset({"community_transmission"}),
        onset_date=RECENT,
        as_of=TODAY,
    )
    result = who_2020.evaluate(facts)
    assert result.classification == A
    assert result.matched_criteria == ["clinical", "epidemiological"]
    assert set(result.matched_facts) == {"fever", "cough", "headache", "community_transmission"}

    only_epi = who_2022.evaluate(Facts(epidemiological=frozenset({"cluster_linked"}), as_of=TODAY))
    assert only_epi.matched_criteria == ["asymptomatic", "epidemiological"]
    assert only_epi.matched_facts == ["cluster_linked"]


def test_it_never_claims_probable_or_confirmed(definitions):
    for definition in definitions:
        codes = {c["code"] for c in definition.rule["classes"]}
        assert codes == {A, B, C}


def test_the_seeded_definitions_are_the_who_versions_with_2022_as_default(definitions):
    who_2020, who_2022 = definitions
    assert who_2022.is_default and not who_2020.is_default
    assert who_2020.is_active, "2020.2 stays for the flags classified with it"
    assert who_2020.published_on == date(2020, 12, 16)
    assert who_2022.published_on == date(2022, 7, 22)
    assert len(who_2020.symptom_codes) == 11 == len(who_2022.symptom_codes)
    assert who_2020.epidemiological_codes == [
        "high_risk_setting",
        "community_transmission",
        "health_care_setting",
    ]
    assert who_2022.epidemiological_codes == ["contact_of_case", "cluster_linked"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("not json object", "JSON object"),
        ({"symptoms": ["sneezing"], "classes": [{"code": "suspect_a", "when": "sneezing"}]}, "sneezing"),
        ({"symptoms": ["fever"], "classes": [{"code": "probable", "when": "fever"}]}, "suspect_a"),
        ({"symptoms": ["fever"], "classes": []}, "at least one"),
        (
            {"symptoms": ["fever"], "classes": [{"code": "suspect_a", "when": {"criterion": "missing"}}]},
            "missing",
        ),
        (
            {
                "symptoms": ["fever"],
                "criteria": {"x": {"criterion": "y"}, "y": {"not": {"criterion": "x"}}},
                "classes": [{"code": "suspect_a", "when": {"criterion": "x"}}],
            },
            "refers to itself",
        ),
        (
            {"symptoms": ["fever"], "classes": [{"code": "suspect_a", "when": {"at_least": 0, "of": "x"}}]},
            "at_least",
        ),
        (
            {"symptoms": ["fever"], "classes": [{"code": "suspect_a", "when": {"maybe": 1}}]},
            "unknown condition",
        ),
    ],
)
def test_it_refuses_an_unusable_rule_with_a_readable_message(db, rule, message):
    from django.core.exceptions import ValidationError

    from incidents.cases.models import Criterion
    from incidents.cases.rules import validate_rule

    with translation.override("en"), pytest.raises(ValidationError) as info:
        validate_rule(
            rule,
            known_symptoms=Criterion.objects.filter(kind="symptom").values_list("code", flat=True),
            known_criteria=Criterion.objects.filter(kind="epidemiological").values_list("code", flat=True),
        )
    assert message in " ".join(info.value.messages)


def test_a_criterion_may_use_another_in_any_key_order():
    from incidents.cases.rules import evaluate

    rule = {
        "symptoms": ["fever"],
        "criteria": {"b": {"criterion": "a"}, "a": "fever"},
        "classes": [{"code": "suspect_a", "when": {"criterion": "b"}}],
    }
    assert evaluate(rule, Facts(symptoms=frozenset({"fever"}))).classification == A


@pytest.mark.parametrize(
    ("case", "symptoms", "epi", "sari", "antigen", "who2020", "who2022"),
    [
        ("SARI with fever and cough", {"fever", "cough"}, set(), True, False, [B], [A, B]),
        ("SARI and a 2020 link", {"fever", "cough"}, {"community_transmission"}, True, False, [A, B], [A, B]),
        ("SARI and a contact", {"fever", "cough"}, {"contact_of_case"}, True, False, [B], [A, B]),
        ("contact, no symptoms, positive antigen", set(), {"contact_of_case"}, False, True, [C], [A]),
        ("no symptoms, positive antigen", set(), set(), False, True, [C], [C]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_it_returns_every_class_met_in_the_definitions_order(
    definitions, case, symptoms, epi, sari, antigen, who2020, who2022
):
    facts = Facts(
        symptoms=frozenset(symptoms),
        epidemiological=frozenset(epi),
        sari=sari,
        antigen_positive=antigen,
        onset_date=RECENT if symptoms else None,
        as_of=TODAY,
    )
    who_2020, who_2022 = definitions
    assert who_2020.evaluate(facts).matched_classes == who2020, f"WHO 2020.2: {case}"
    assert who_2022.evaluate(facts).matched_classes == who2022, f"WHO 2022.1: {case}"
    assert who_2022.evaluate(facts).classification == who2022[0]
