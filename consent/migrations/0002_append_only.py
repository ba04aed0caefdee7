from django.db import migrations

from portal.db.append_only import append_only


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [
        append_only("consent_consentevent"),
    ]
