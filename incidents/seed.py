"""The deadline rules DESIGN.md §4 seeds; supervisors correct them afterwards in the admin."""

from django.conf import settings

RULES = [
    {
        "code": "iiv-initial-report",
        "name": "IIV initial report (24 hours)",
        "applies_when": "iiv",
        "anchor": "aware_at",
        "period_hours": 24,
        "met_by": "initial_report",
        "remind_before_hours": 6,
        "source": "Peraturan BSSN No. 1 Tahun 2024, Pasal 15(5)–(6)",
    },
    {
        "code": "pdp-failure-notice",
        "name": "Personal-data failure notice to data subjects and the PDP authority (72 hours)",
        "applies_when": "personal_data",
        "anchor": "aware_at",
        "period_hours": 72,
        "met_by": "operator_confirmation",
        "remind_before_hours": 24,
        "source": "UU No. 27 Tahun 2022 (PDP), Pasal 46",
    },
    {
        "code": "final-report",
        "name": "Final report",
        "applies_when": "always",
        "anchor": "initial_report",
        "period_hours": None,  # from settings.INCIDENT_FINAL_REPORT_DAYS
        "met_by": "final_report",
        "remind_before_hours": 72,
        "source": "BSSN internal service level",
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
