"""The seeded vocabulary and WHO case definitions (DESIGN.md §4), as data.

Used by the data migration and by tests that flush the database. Idempotent: rows
that exist are left alone, so a supervisor's corrections in the admin survive.
"""

from datetime import date

# code, kind, English, Bahasa Indonesia
CRITERIA = [
    ("fever", "symptom", "Fever (≥ 38 °C or history of fever)", "Demam (≥ 38 °C atau riwayat demam)"),
    ("cough", "symptom", "Cough", "Batuk"),
    ("fatigue", "symptom", "General weakness or fatigue", "Lemas atau kelelahan umum"),
    ("headache", "symptom", "Headache", "Sakit kepala"),
    ("myalgia", "symptom", "Myalgia (muscle pain)", "Nyeri otot (mialgia)"),
    ("sore_throat", "symptom", "Sore throat", "Nyeri tenggorokan"),
    ("coryza", "symptom", "Coryza (runny nose)", "Pilek (koriza)"),
    ("dyspnoea", "symptom", "Dyspnoea (shortness of breath)", "Sesak napas (dispnea)"),
    (
        "anorexia_nausea_vomiting",
        "symptom",
        "Anorexia, nausea or vomiting",
        "Tidak nafsu makan, mual atau muntah",
    ),
    ("diarrhoea", "symptom", "Diarrhoea", "Diare"),
    ("altered_mental_status", "symptom", "Altered mental status", "Perubahan status mental"),
    (
        "high_risk_setting",
        "epidemiological",
        "Lived or worked in a setting with high transmission risk (14 days before onset)",
        "Tinggal atau bekerja di lingkungan berisiko tinggi penularan (14 hari sebelum gejala)",
    ),
    (
        "community_transmission",
        "epidemiological",
        "Lived in or travelled to an area with community transmission (14 days before onset)",
        "Tinggal di atau bepergian ke wilayah dengan transmisi komunitas (14 hari sebelum gejala)",
    ),
    (
        "health_care_setting",
        "epidemiological",
        "Worked in a health-care setting (14 days before onset)",
        "Bekerja di fasilitas pelayanan kesehatan (14 hari sebelum gejala)",
    ),
    (
        "contact_of_case",
        "epidemiological",
        "Contact of a probable or confirmed case (14 days before onset)",
        "Kontak dengan kasus probabel atau terkonfirmasi (14 hari sebelum gejala)",
    ),
    (
        "cluster_linked",
        "epidemiological",
        "Linked to a COVID-19 cluster (14 days before onset)",
        "Terkait dengan klaster COVID-19 (14 hari sebelum gejala)",
    ),
]

SYMPTOMS = [code for code, kind, _en, _id in CRITERIA if kind == "symptom"]


def _rule(*, epidemiological: list[str], suspect_a: str) -> dict:
    """Return a WHO-style rule; suspect A joins clinical and epidemiological with `suspect_a` (all/any)."""
    return {
        "symptoms": list(SYMPTOMS),
        "epidemiological": epidemiological,
        "criteria": {
            # Acute onset of fever AND cough, OR of any three or more of the listed symptoms.
            "clinical": {"any": [{"all": ["fever", "cough"]}, {"at_least": 3, "of": "symptoms"}]},
            "epidemiological": {"at_least": 1, "of": "epidemiological"},
            # SARI: fever and cough, onset within 10 days, needs hospitalisation.
            "sari": {"all": ["fever", "cough", "sari", {"onset_within_days": 10}]},
            "asymptomatic": {"not": {"at_least": 1, "of": "symptoms"}},
        },
        "classes": [
            {
                "code": "suspect_a",
                "when": {suspect_a: [{"criterion": "clinical"}, {"criterion": "epidemiological"}]},
            },
            {"code": "suspect_b", "when": {"criterion": "sari"}},
            {
                "code": "suspect_c",
                "when": {
                    "all": [
                        {"criterion": "asymptomatic"},
                        {"not": {"criterion": "epidemiological"}},
                        "antigen_positive",
                    ]
                },
            },
        ],
    }


WHO_2020 = "WHO/2019-nCoV/Surveillance_Case_Definition/2020.2"
WHO_2022 = "WHO/2019-nCoV/Surveillance_Case_Definition/2022.1"

DEFINITIONS = [
    # WHO/2019-nCoV/Surveillance_Case_Definition/2020.2, "WHO COVID-19 Case definition",
    # 16 December 2020. Suspected case A: clinical AND epidemiological criteria; the
    # epidemiological criteria (14 days before onset) are a high-transmission-risk setting,
    # an area with community transmission, a health-care setting. Kept for the flags
    # classified with it; no longer the default.
    {
        "code": WHO_2020,
        "short_name": "WHO 2020.2",
        "issuer": "World Health Organization",
        "published_on": date(2020, 12, 16),
        "source_url": "https://www.who.int/publications/i/item/WHO-2019-nCoV-Surveillance_Case_Definition-2020.2",
        "is_default": False,
        "rule": _rule(
            epidemiological=["high_risk_setting", "community_transmission", "health_care_setting"],
            suspect_a="all",
        ),
    },
    # WHO/2019-nCoV/Surveillance_Case_Definition/2022.1, "Public health surveillance for
    # COVID-19: interim guidance", 22 July 2022: the current definition and the default
    # for new flags. Suspected case A: clinical OR epidemiological criteria; the
    # epidemiological criteria (14 days before onset) are contact of a probable or
    # confirmed case, or a link to a COVID-19 cluster. Suspect B (SARI) and C (no
    # symptoms, positive Ag-RDT) as in 2020.2; a person may meet A and B at once.
    {
        "code": WHO_2022,
        "short_name": "WHO 2022.1",
        "issuer": "World Health Organization",
        "published_on": date(2022, 7, 22),
        "source_url": "https://www.who.int/publications/i/item/WHO-2019-nCoV-Surveillance_Case_Definition-2022.1",
        "is_default": True,
        "rule": _rule(epidemiological=["contact_of_case", "cluster_linked"], suspect_a="any"),
    },
]


def make_current_default(apps=None) -> None:
    """Make WHO 2022.1 the default where WHO 2020.2 still is (a supervisor's own default is kept)."""
    if apps is None:
        from django.apps import apps
    CaseDefinition = apps.get_model("cases", "CaseDefinition")
    if not CaseDefinition.objects.filter(code=WHO_2020, is_default=True).exists():
        return
    if not CaseDefinition.objects.filter(code=WHO_2022, is_active=True).exists():
        return
    CaseDefinition.objects.filter(code=WHO_2020).update(is_default=False)
    CaseDefinition.objects.filter(code=WHO_2022).update(is_default=True)


def seed_case_definitions(apps=None) -> None:
    """Create the vocabulary and both WHO definitions when missing."""
    if apps is None:
        from django.apps import apps
    Criterion = apps.get_model("cases", "Criterion")
    CaseDefinition = apps.get_model("cases", "CaseDefinition")
    for position, (code, kind, name, name_id) in enumerate(CRITERIA):
        Criterion.objects.get_or_create(
            code=code, defaults={"kind": kind, "name": name, "name_id": name_id, "position": position}
        )
    has_default = CaseDefinition.objects.filter(is_default=True).exists()
    for spec in DEFINITIONS:
        defaults = {k: v for k, v in spec.items() if k != "code"}
        if has_default:
            defaults["is_default"] = False
        CaseDefinition.objects.get_or_create(code=spec["code"], defaults=defaults)
