from django.db import migrations


def seed(apps, schema_editor):
    from incidents.cases.seed import seed_case_definitions

    seed_case_definitions(apps)


class Migration(migrations.Migration):
    dependencies = [("cases", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
