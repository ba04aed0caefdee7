from django.db import migrations

from portal.db.append_only import append_only


def create_main_stream(apps, schema_editor):
    apps.get_model("audit", "AuditStream").objects.get_or_create(name="main")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        append_only("audit_auditevent"),
        migrations.RunPython(create_main_stream, migrations.RunPython.noop),
    ]
