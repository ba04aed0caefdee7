"""A covering index for the BSSN changelist, on PostgreSQL only.

The changelist orders by submitted_at DESC, id DESC and filters on the columns
INCLUDEd here; with them in the index, counting a filtered list and finding a page's
ids are index-only scans that never touch the (wide) table rows, however rare the
matches. SQLite, the embedded default, has no INCLUDE and keeps the plain index.
"""

from django.db import migrations

CREATE = """
CREATE INDEX IF NOT EXISTS incident_triage ON incidents_incident (submitted_at DESC, id DESC)
INCLUDE (status, severity, bssn_severity, category, operator_id, assignee_id, personal_data_involved,
         next_due_at)
"""
DROP = "DROP INDEX IF EXISTS incident_triage"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_next_due_at")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
