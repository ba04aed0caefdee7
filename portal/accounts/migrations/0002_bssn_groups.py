from django.db import migrations


def create_groups(apps, schema_editor):
    from portal.accounts.staff import create_groups, sync_group_permissions

    create_groups(apps)
    sync_group_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
