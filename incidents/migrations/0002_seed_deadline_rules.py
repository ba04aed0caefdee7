"""Seed the deadline rules of DESIGN.md §4 "Deadlines" (incidents/seed.py). Supervisors correct them in the admin."""

from django.db import migrations


def seed(apps, schema_editor):
    from incidents.seed import seed_deadline_rules

    seed_deadline_rules(apps.get_model("incidents", "DeadlineRule"))


def unseed(apps, schema_editor):
    from incidents.seed import RULES

    DeadlineRule = apps.get_model("incidents", "DeadlineRule")
    DeadlineRule.objects.filter(code__in=[r["code"] for r in RULES], obligations__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
