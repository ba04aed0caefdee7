"""Encrypt alert payloads and bodies at rest, keeping existing rows (copy, then swap)."""

import json

import fernet_fields
from django.db import migrations

import portal.fields


def encrypt_existing(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    for alert in Alert.objects.only("pk", "payload_plain", "body_plain").iterator(chunk_size=500):
        payload = alert.payload_plain
        if isinstance(payload, str):  # some backends hand JSON back as text
            payload = json.loads(payload)
        Alert.objects.filter(pk=alert.pk).update(payload=payload, body=alert.body_plain)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_seed_authorities")]

    operations = [
        migrations.RenameField("alert", "payload", "payload_plain"),
        migrations.RenameField("alert", "body", "body_plain"),
        migrations.AddField(
            model_name="alert",
            name="payload",
            field=portal.fields.EncryptedJSONField(null=True, verbose_name="data"),
        ),
        migrations.AddField(
            model_name="alert",
            name="body",
            field=fernet_fields.EncryptedTextField(editable=False, null=True),
        ),
        migrations.RunPython(encrypt_existing, migrations.RunPython.noop),
        migrations.RemoveField("alert", "payload_plain"),
        migrations.RemoveField("alert", "body_plain"),
        migrations.AlterField(
            model_name="alert",
            name="payload",
            field=portal.fields.EncryptedJSONField(verbose_name="data"),
        ),
        migrations.AlterField(
            model_name="alert",
            name="body",
            field=fernet_fields.EncryptedTextField(editable=False),
        ),
    ]
