"""Signed checkpoints of the consent ledger: one per import, by beat when it grew, witnessed."""

import json

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from jsonschema import Draft202012Validator, FormatChecker

from consent import ledger, services, tasks
from portal import transparency
from portal.alerts import services as alert_services
from portal.alerts.models import Alert, EventType
from portal.alerts.seed import BSSN, seed_authorities
from portal.audit.models import Checkpoint
from tests.alerts.test_payload_schemas import schema_for
from tests.consent.helpers import give, published_version
from tests.consent.test_import import _csv, _rows

pytestmark = pytest.mark.django_db


def import_rows(operator, tmp_path, rows, name):
    path = tmp_path / name
    path.write_bytes(_csv(rows))
    call_command("import_consents", str(path), "--operator", operator.slug, "--no-progress")


def test_an_import_ends_with_one_checkpoint_kept_witnessed_and_sent_to_bssn(
    operator, tmp_path, checkpoint_store, django_capture_on_commit_callbacks
):
    seed_authorities()
    published_version(operator)
    rows = _rows(300)
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(operator, tmp_path, rows[:200], "a.csv")
    stream = ledger.stream_name(operator.pk)
    first = Checkpoint.objects.get(stream=stream)
    assert (first.number, first.size) == (1, 200)

    # The store outside the database holds the same signed checkpoint and the 200 leaves.
    store = transparency.CheckpointStore(checkpoint_store)
    [stored] = store.checkpoints(stream)
    assert stored.root_hash == first.root_hash and stored.signature_valid(transparency.verification_keys())
    assert store.leaf_count(stream) == 200

    # BSSN receives it through the alert pipeline, as the documented schema says.
    alert = Alert.objects.get(event_type=EventType.LEDGER_CHECKPOINT)
    assert [d.authority.code for d in alert.deliveries.select_related("authority")] == [BSSN]
    envelope = json.loads(alert.body)
    Draft202012Validator(schema_for("ledger.checkpoint"), format_checker=FormatChecker()).validate(envelope)
    assert (
        envelope["data"]["root_hash"] == first.root_hash
        and envelope["data"]["operator"]["slug"] == operator.slug
    )
    for delivery in alert.deliveries.all():
        alert_services.deliver(delivery_id=delivery.pk)
    [sent] = [m for m in mail.outbox if "csirt@bssn" in m.to[0]]
    assert json.loads(sent.attachments[0][1])["data"]["signature"] == first.signature

    # The next import makes checkpoint 2, with a proof that the log only grew.
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(operator, tmp_path, rows[200:], "b.csv")
    second = store.checkpoints(stream)[-1]
    assert (second.number, second.size, second.previous_size) == (2, 300, 200)
    assert second.previous_root == first.root_hash and second.extends_previous()
    assert list(services.verify_ledger(operator=operator)) == []


def test_beat_checkpoints_a_ledger_only_when_it_grew(operator):
    give(operator, "subject-1")
    give(operator, "subject-2")
    assert tasks.checkpoint_ledgers_task() == 1
    assert tasks.checkpoint_ledgers_task() == 0
    give(operator, "subject-3")
    assert tasks.checkpoint_ledgers_task() == 1
    assert list(
        Checkpoint.objects.filter(stream=ledger.stream_name(operator.pk)).values_list("size", flat=True)
    ) == [
        3,
        2,
    ]


def test_without_a_signing_key_nothing_is_signed(operator, settings):
    give(operator, "subject-1")
    settings.CHECKPOINT_SIGNING_KEY = ""
    assert ledger.checkpoint_ledger(operator_id=operator.pk) is None
    assert not Checkpoint.objects.exists()


def test_after_key_rotation_old_checkpoints_verify_with_the_kept_public_key(operator, settings, capsys):
    give(operator, "subject-1")
    old_key = transparency.signing_key()
    ledger.checkpoint_ledger(operator_id=operator.pk)
    settings.CHECKPOINT_SIGNING_KEY = transparency.generate_signing_key()
    with pytest.raises(CommandError):
        call_command("verify_ledger")
    assert "checkpoint 1 in the store has no valid signature" in capsys.readouterr().err

    raw = transparency.public_raw(old_key.public_key())
    settings.CHECKPOINT_VERIFY_KEYS = [transparency.base64.urlsafe_b64encode(raw).decode()]
    call_command("verify_ledger")  # the idle head (MACed under the old key) is at its checkpoint
    assert "intact: 1 events" in capsys.readouterr().out
    give(operator, "subject-2")  # written under the new key, checkpointed with it
    assert ledger.checkpoint_ledger(operator_id=operator.pk).number == 2
    call_command("verify_ledger")
    assert "intact: 2 events" in capsys.readouterr().out


def test_beat_runs_both_checkpoint_tasks(settings):
    from importlib import import_module

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("consent.tasks.checkpoint_ledgers_task", "portal.audit.tasks.checkpoint_audit_task"):
        assert name in scheduled
        module, attribute = name.rsplit(".", 1)
        assert getattr(import_module(module), attribute).name == name


def test_an_audit_checkpoint_reaches_bssn_without_an_operator(operator):
    from portal.audit.checkpoints import checkpoint_audit
    from portal.audit.services import record

    seed_authorities()
    record(action="test.step", operator=operator)
    checkpoint = checkpoint_audit(stream="main")
    alert = Alert.objects.get(event_type=EventType.LEDGER_CHECKPOINT)
    envelope = json.loads(alert.body)
    Draft202012Validator(schema_for("ledger.checkpoint"), format_checker=FormatChecker()).validate(envelope)
    assert envelope["data"]["operator"] is None and envelope["data"]["stream"] == "audit/main"
    for delivery in alert.deliveries.all():
        alert_services.deliver(delivery_id=delivery.pk)
    [sent] = mail.outbox
    assert json.loads(sent.attachments[0][1])["data"]["root_hash"] == checkpoint.root_hash


@pytest.mark.postgres
def test_the_fast_verify_on_postgresql_reads_awkward_events_as_written(operator, op_admin):
    """PostgreSQL builds the canonical text for verify_ledger; it must equal what the writer hashed."""
    from datetime import timedelta

    from django.utils import timezone

    from consent.ledger import _walk_copy, _walk_rows

    evidence = {
        "z": "tab\there",
        "a": 'back\\slash "quoted"\nnew line',
        "ü": "é ✓",
        "n": {"b": 1, "a": [None]},
    }
    give(
        operator,
        "subject-1",
        evidence=evidence,
        actor=op_admin,
        expires_at=timezone.now() + timedelta(days=3),
    )
    give(operator, "subject-1", state="withdrawn", evidence={}, actor=op_admin)
    give(operator, "subject-2", evidence={"reference": "banner-7"})
    fast, broken = _walk_copy(operator.pk)
    assert broken is None and fast == _walk_rows(operator.pk, deep=False)[0] and len(fast) == 3
    assert list(services.verify_ledger(operator=operator)) == []


def test_a_withdrawal_rewritten_to_given_behind_the_orms_back_is_not_consent(operator):
    from django.db import connection

    from consent.models import ConsentEvent
    from tests.consent.helpers import PURPOSES

    give(operator, "subject-1")
    withdrawal = give(operator, "subject-1", state="withdrawn")
    ledger.checkpoint_ledger(operator_id=operator.pk)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE consent_consentevent SET state = 'given', stop_processing_by = NULL WHERE record_id = %s",
            [withdrawal.record_id.hex if connection.vendor == "sqlite" else withdrawal.record_id],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    assert ConsentEvent.objects.get(pk=withdrawal.pk).state == "given"
    assert not services.has_current_consent(
        operator=operator, subject_identifier="subject-1", purpose_code=PURPOSES[0]
    )
