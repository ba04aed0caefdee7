"""Seed the deadline rules of DESIGN.md §4 "Deadlines" as they were first written.

The values are frozen here (migration 0006 corrects the IIV rule's anchor and adds the
legal sources): a migration must not follow later edits of incidents/seed.py.
"""

from django.conf import settings
from django.db import migrations

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
        "period_hours": None,
        "met_by": "final_report",
        "remind_before_hours": 72,
        "source": "BSSN internal service level",
    },
]


def seed(apps, schema_editor):
    DeadlineRule = apps.get_model("incidents", "DeadlineRule")
    for rule in RULES:
        values = dict(rule)
        if values["period_hours"] is None:
            values["period_hours"] = getattr(settings, "INCIDENT_FINAL_REPORT_DAYS", 30) * 24
        DeadlineRule.objects.get_or_create(code=values.pop("code"), defaults=values)


def unseed(apps, schema_editor):
    DeadlineRule = apps.get_model("incidents", "DeadlineRule")
    DeadlineRule.objects.filter(code__in=[r["code"] for r in RULES], obligations__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
