"""On PostgreSQL the pipeline's hot statements are prepared once per connection, not planned per alert."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction

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


def _rows_read(plan: dict) -> int:
    """Return the rows of alerts_delivery a plan (EXPLAIN ANALYZE, JSON) read: returned or filtered out."""
    read = 0
    if plan.get("Relation Name") == "alerts_delivery" and plan["Node Type"] != "ModifyTable":
        read += (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    return read + sum(_rows_read(child) for child in plan.get("Plans", []))


def _explain(sql: str, params, plan_cache_mode: str) -> dict:
    """Run a captured hot-path statement as a prepared statement under `plan_cache_mode`; return its plan."""
    import itertools
    import re
    import uuid

    names: list[str] = []

    def number(match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    if isinstance(params, dict):
        prepared = re.sub(r"%\((\w+)\)s", number, sql)
    else:  # positional
        names = [str(i) for i in range(len(params))]
        params = dict(zip(names, params, strict=True))
        positions = itertools.count(1)
        prepared = re.sub("%s", lambda _match: f"${next(positions)}", sql)
    name = f"claim_{uuid.uuid4().hex[:12]}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        cursor.execute(f"PREPARE {name} AS {prepared}")
        placeholders = ", ".join(["%s"] * len(names))
        cursor.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}({placeholders})", [params[n] for n in names]
        )
        [[document]] = cursor.fetchall()
        transaction.set_rollback(True)  # what the claim wrote
    return document[0]["Plan"]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
def test_a_claim_reads_only_its_own_rows_even_when_the_statistics_say_the_outbox_is_empty(
    operator, hook, plan_cache_mode
):
    """Statistics taken while nothing was pending must not turn each claim into a scan of the backlog."""
    import uuid

    from django.utils import timezone

    from portal.alerts import store

    _emit(operator, 5)
    Delivery.objects.update(status=DeliveryStatus.DELIVERED)
    with connection.cursor() as cursor:  # what autovacuum sees between two bursts
        cursor.execute("ANALYZE alerts_delivery")
        cursor.execute("ANALYZE alerts_alert")
    _emit(operator, 300)  # then a burst
    backlog = list(Delivery.objects.filter(channel=hook, status="pending").order_by("pk"))
    Delivery.objects.filter(pk__in=[d.pk for d in backlog[:100]]).update(status=DeliveryStatus.DELIVERED)
    captured: list[tuple[str, dict | list]] = []

    def capture(execute, sql, params, many, context):
        if '"claimed_at"' in sql:
            captured.append((sql, params))
        return execute(sql, params, many, context)

    now = timezone.now()
    with connection.execute_wrapper(capture), transaction.atomic():
        store.claim(delivery_id=backlog[0].pk, token=uuid.uuid4(), now=now)  # a sent one: claims nothing
        store.claim(delivery_id=backlog[-1].pk, token=uuid.uuid4(), now=now)  # the newest, alone
        store.claim_due(channel_id=hook.pk, token=uuid.uuid4(), now=now, limit=20)
        transaction.set_rollback(True)
    reads = [_rows_read(_explain(sql, params, plan_cache_mode)) for sql, params in captured]
    assert len(reads) == 3
    assert reads[0] <= 3 and reads[1] <= 5, reads  # found by primary key, not among 200 due ones
    assert reads[2] <= 2 * 20 + 5, reads  # the 20 oldest, then each by primary key
