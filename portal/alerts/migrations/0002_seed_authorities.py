from django.db import migrations


def seed(apps, schema_editor):
    from portal.alerts.seed import seed_authorities

    seed_authorities(apps)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
