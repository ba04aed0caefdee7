"""The deadline rules DESIGN.md §4 seeds; supervisors correct them afterwards in the admin.

Each rule counts from the moment its legal source names:

- Peraturan BSSN No. 1 Tahun 2024 Pasal 15(5): an operator of vital information
  infrastructure (IIV) reports "paling lambat 1 x 24 jam setelah ditemukan" — within
  24 hours of the incident being *found*, i.e. from `detected_at`; Pasal 15(6) lets
  the report be completed afterwards.
- UU No. 27 Tahun 2022 (PDP) Pasal 46(1): a failure of personal-data protection is
  notified to the data subjects and the authority "paling lambat 3 x 24 (tiga kali
  dua puluh empat) jam" — counted from when the controller knows of it (`aware_at`).
- The final report is BSSN's own service level, counted from the initial report.
"""

from django.conf import settings

IIV_SOURCE = "Peraturan BSSN No. 1 Tahun 2024, Pasal 15 ayat (5)–(6): 1 x 24 jam setelah ditemukan"
PDP_SOURCE = "UU No. 27 Tahun 2022 (PDP), Pasal 46 ayat (1): paling lambat 3 x 24 jam"
# Translated on display (models.SEEDED_LEGAL_SOURCES).
SERVICE_LEVEL_SOURCE = "BSSN internal service level (not a statutory deadline)"

RULES = [
    {
        "code": "iiv-initial-report",
        "name": "IIV initial report (24 hours)",
        "applies_when": "iiv",
        "anchor": "detected_at",
        "period_hours": 24,
        "met_by": "initial_report",
        "remind_before_hours": 6,
        "legal_source": IIV_SOURCE,
    },
    {
        "code": "pdp-failure-notice",
        "name": "Personal-data failure notice to data subjects and the PDP authority (72 hours)",
        "applies_when": "personal_data",
        "anchor": "aware_at",
        "period_hours": 72,
        "met_by": "operator_confirmation",
        "remind_before_hours": 24,
        "legal_source": PDP_SOURCE,
    },
    {
        "code": "final-report",
        "name": "Final report",
        "applies_when": "always",
        "anchor": "initial_report",
        "period_hours": None,  # from settings.INCIDENT_FINAL_REPORT_DAYS
        "met_by": "final_report",
        "remind_before_hours": 72,
        "legal_source": SERVICE_LEVEL_SOURCE,
    },
]


def seed_deadline_rules(model=None) -> None:
    """Create the seeded rules that do not exist yet; never overwrite a supervisor's edits.

    `model` is the migration's historical DeadlineRule, or the real one by default
    (tests whose database is flushed between tests call this to get the rules back).
    """
    if model is None:
        from .models import DeadlineRule as model
    for rule in RULES:
        values = dict(rule)
        if values["period_hours"] is None:
            values["period_hours"] = getattr(settings, "INCIDENT_FINAL_REPORT_DAYS", 30) * 24
        model.objects.get_or_create(code=values.pop("code"), defaults=values)
