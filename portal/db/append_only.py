"""PostgreSQL triggers that make a table append-only: UPDATE and DELETE are refused.

TRUNCATE stays possible on purpose: it needs table ownership (a database
administrator's act, not the application's), and the test suite's flush relies on it.

Used by migrations of the audit log and the consent ledger. On other databases the
ORM-level guard is the only protection (SQLite is the embedded default only).
"""

from django.db import migrations


def _forward_sql(table: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION portal_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION portal_refuse_change();
"""


def _reverse_sql(table: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
"""


def append_only(table: str) -> migrations.RunPython:
    """Return a migration operation installing the append-only triggers on PostgreSQL."""

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_forward_sql(table), params=None)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_reverse_sql(table), params=None)

    return migrations.RunPython(forward, backward, elidable=False)
