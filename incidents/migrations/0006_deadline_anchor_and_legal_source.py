"""Count each deadline from the moment its legal source names, and store that source.

Peraturan BSSN 1/2024 Pasal 15(5) counts the IIV initial report's 24 hours from
discovery ("1 x 24 jam setelah ditemukan"), i.e. `detected_at`; the seed counted it
from `aware_at`. This migration renames `source` to `legal_source` (text), writes the
seeded rules' corrected sources, moves the IIV rule to `detected_at` and recomputes
the OPEN obligations of existing incidents under it (met and waived ones are history).
Values are frozen here rather than imported from incidents/seed.py.
"""

from datetime import timedelta

from django.db import migrations, models
from django.db.models import Min, Q
from django.utils import timezone

IIV_SOURCE = "Peraturan BSSN No. 1 Tahun 2024, Pasal 15 ayat (5)–(6): 1 x 24 jam setelah ditemukan"
CORRECTIONS = {
    # code: (old seeded source, new source, new anchor or None to keep)
    "iiv-initial-report": ("Peraturan BSSN No. 1 Tahun 2024, Pasal 15(5)–(6)", IIV_SOURCE, "detected_at"),
    "pdp-failure-notice": (
        "UU No. 27 Tahun 2022 (PDP), Pasal 46",
        "UU No. 27 Tahun 2022 (PDP), Pasal 46 ayat (1): paling lambat 3 x 24 jam",
        None,
    ),
    "final-report": (
        "BSSN internal service level",
        "BSSN internal service level (not a statutory deadline)",
        None,
    ),
}


def _anchor_time(anchor: str, incident):
    if anchor == "detected_at":
        return incident.detected_at
    if anchor == "aware_at":
        return incident.aware_at
    return incident.submitted_at


def correct(apps, schema_editor):
    DeadlineRule = apps.get_model("incidents", "DeadlineRule")
    Obligation = apps.get_model("incidents", "Obligation")
    Incident = apps.get_model("incidents", "Incident")
    now = timezone.now()
    touched = set()
    for code, (old_source, new_source, new_anchor) in CORRECTIONS.items():
        rule = DeadlineRule.objects.filter(code=code).first()
        if rule is None:
            continue
        if rule.legal_source in ("", old_source):  # a supervisor's own wording stays
            rule.legal_source = new_source
        if new_anchor:
            rule.anchor = new_anchor
        rule.save()
        open_rows = Obligation.objects.filter(rule=rule, met_at__isnull=True, waived_at__isnull=True)
        for obligation in open_rows.select_related("incident"):
            incident = obligation.incident
            anchor = _anchor_time(rule.anchor, incident)
            if anchor is None:
                if incident.submitted_at is None:  # a draft's obligations follow its facts
                    obligation.delete()
                    touched.add(incident.pk)
                continue
            due = anchor + timedelta(hours=rule.period_hours)
            if due == obligation.due_at:
                continue
            remind_at = due - timedelta(hours=rule.remind_before_hours)
            # A reminder already sent goes out again only if its new time is still ahead;
            # an overdue notice is withdrawn only if the deadline is no longer past.
            if obligation.reminder_sent_at and remind_at > now:
                obligation.reminder_sent_at = None
            if obligation.overdue_sent_at and due > now:
                obligation.overdue_sent_at = None
            obligation.due_at, obligation.remind_at = due, remind_at
            obligation.save(update_fields=["due_at", "remind_at", "reminder_sent_at", "overdue_sent_at"])
            touched.add(incident.pk)
    for pk in touched:
        earliest = Obligation.objects.filter(
            Q(met_at__isnull=True, waived_at__isnull=True), incident_id=pk
        ).aggregate(d=Min("due_at"))["d"]
        Incident.objects.filter(pk=pk).update(next_due_at=earliest)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0005_evidence_purged_at")]

    operations = [
        migrations.RenameField(model_name="deadlinerule", old_name="source", new_name="legal_source"),
        migrations.AlterField(
            model_name="deadlinerule",
            name="legal_source",
            field=models.TextField(
                blank=True,
                help_text="The regulation and article the deadline comes from, shown beside every deadline.",
                verbose_name="legal source",
            ),
        ),
        migrations.AlterField(
            model_name="deadlinerule",
            name="anchor",
            field=models.CharField(
                choices=[
                    ("detected_at", "When the incident was detected"),
                    ("aware_at", "When the operator became aware"),
                    ("initial_report", "When the initial report was submitted"),
                ],
                max_length=20,
                verbose_name="counted from",
            ),
        ),
        migrations.RunPython(correct, migrations.RunPython.noop),
    ]
