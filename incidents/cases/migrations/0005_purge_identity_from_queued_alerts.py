"""Take the identity out of suspected-case alerts still queued when disclosure moved to send time.

Alerts written before it held the identity in their stored body; a send now adds it only
while the basis holds, so the stored copy of an alert not yet delivered everywhere is
rewritten without it (delivered-only alerts are left as the record of what was sent).
"""

import json

from django.db import migrations


def purge(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    Delivery = apps.get_model("alerts", "Delivery")
    queued = (
        Delivery.objects.exclude(status="delivered")
        .filter(alert__event_type="suspected_case.flagged")
        .values_list("alert_id", flat=True)
        .distinct()
    )
    for alert in Alert.objects.filter(pk__in=list(queued)).only("pk", "body").iterator(chunk_size=200):
        envelope = json.loads(alert.body)
        if "identity" not in envelope.get("data", {}):
            continue
        del envelope["data"]["identity"]
        body = json.dumps(envelope, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        Alert.objects.filter(pk=alert.pk).update(body=body)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0004_flag_classes_who_2022_default"),
        ("alerts", "0008_notices"),
    ]

    operations = [migrations.RunPython(purge, migrations.RunPython.noop)]
