"""On PostgreSQL the pipeline's hot statements are prepared once per connection, not planned per alert."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from portal.alerts.models import Delivery, DeliveryStatus, EventType
from portal.alerts.services import deliver, emit_event

ROOT = Path(__file__).resolve().parents[2]


def _emit(operator, count: int) -> None:
    for number in range(count):
        emit_event(
            event_type=EventType.INCIDENT_SUBMITTED,
            operator=operator,
            payload={"schema": "incident.submitted/1", "incident": {"reference": f"INC-{number}"}},
        )


def _prepared(fragment: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall() if fragment in row[0]]


@pytest.mark.postgres
@pytest.mark.django_db
def test_emitting_and_delivering_reuse_one_prepared_statement_each(operator, hook, receiver):
    _emit(operator, 3)
    assert len(_prepared('INSERT INTO "alerts_alert"')) == 1  # three alerts, planned once
    first, second, third = Delivery.objects.filter(channel=hook).order_by("pk")
    deliver(delivery_id=first.pk)  # sends all three: the claim, then the batch
    after_first = sorted(_prepared('"alerts_delivery"'))
    assert any('"claimed_at" = $' in statement for statement in after_first)  # the claim is prepared
    assert deliver(delivery_id=second.pk) is None  # their own tasks find them sent...
    assert deliver(delivery_id=third.pk) is None
    assert sorted(_prepared('"alerts_delivery"')) == after_first  # ...with the claim already prepared
    assert set(Delivery.objects.filter(channel=hook).values_list("status", flat=True)) == {"delivered"}
    assert len(receiver.received) == 3


@pytest.mark.postgres
@pytest.mark.django_db
def test_with_prepared_statements_off_nothing_is_prepared_and_alerts_still_go(
    operator, hook, receiver, monkeypatch
):
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    _emit(operator, 2)
    deliver(delivery_id=Delivery.objects.filter(channel=hook).order_by("pk").first().pk)
    assert _prepared("alerts_") == []
    assert set(Delivery.objects.filter(channel=hook).values_list("status", flat=True)) == {
        DeliveryStatus.DELIVERED
    }


@pytest.mark.parametrize(("value", "expected"), [(None, 5), ("false", None)])
def test_the_setting_turns_prepared_statements_on_by_default_and_off_on_request(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_PREPARED_STATEMENTS"}
    env |= {"DJANGO_SETTINGS_MODULE": "portal.settings_test", "DATABASE_URL": "postgres://u@db.invalid/x"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["prepare_threshold"] == expected
