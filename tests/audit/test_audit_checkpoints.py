"""The audit log is checkpointed and witnessed like the consent ledger; verify_audit compares them."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from portal.audit.checkpoints import checkpoint_audit
from portal.audit.models import GENESIS_HASH, AuditEvent
from portal.audit.services import record
from portal.audit.tasks import checkpoint_audit_task

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def as_superuser(*statements) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            for sql, params in statements:
                cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
def witnessed_log(operator):
    events = [record(action=f"test.step{i}", operator=operator) for i in range(5)]
    assert checkpoint_audit_task() == 1
    call_command("verify_audit")
    return events


def test_a_rewritten_event_with_the_chain_recomputed_is_named(witnessed_log, capsys):
    statements, prev = [], GENESIS_HASH
    for event in AuditEvent.objects.filter(stream="main").order_by("seq"):
        if event.seq == 3:
            event.action = "auth.nothing_to_see"
        event.prev_hash = prev
        event.hash = prev = event.compute_hash()
        statements.append(
            ("UPDATE audit_auditevent SET action = %s, prev_hash = %s, hash = %s WHERE id = %s",
             [event.action, event.prev_hash, event.hash, event.pk])
        )  # fmt: skip
    statements.append(("UPDATE audit_auditstream SET last_hash = %s WHERE name = 'main'", [prev]))
    as_superuser(*statements)
    with pytest.raises(CommandError, match="1 broken"):
        call_command("verify_audit")
    assert "stream=main seq=3" in capsys.readouterr().err


def test_a_truncated_log_is_counted(witnessed_log, capsys):
    as_superuser(("TRUNCATE audit_auditevent, audit_auditstream, audit_checkpoint", []))
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert "5 events missing since checkpoint 1" in capsys.readouterr().err


def test_a_checkpoint_covers_only_new_events_and_proves_growth(witnessed_log):
    record(action="test.more")
    second = checkpoint_audit(stream="main")
    assert (second.number, second.previous_size, second.size) == (2, 5, 6)
    assert checkpoint_audit(stream="main") is None
