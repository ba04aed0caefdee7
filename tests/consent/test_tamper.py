"""An attacker with the PostgreSQL superuser's rights and no application key tampers; verify_ledger sees it.

Each test writes a small ledger through the application, lets it be checkpointed
(signed, written to the checkpoint store, sent to BSSN), then changes the database as
an attacker would: triggers off (`session_replication_role = replica`), the hash
chain and the head row recomputed so the old `verify_ledger --deep` said "intact".
The verify command, run as an operator of the portal would, names what happened.
"""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from consent import ledger, services
from consent.models import CANONICAL_FIELDS, GENESIS_HASH, ConsentEvent, canonical_bytes, chain_hash
from portal.audit.models import Checkpoint
from tests.consent.helpers import PURPOSES, give

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def as_superuser(*statements) -> None:
    """Run SQL with every trigger off, as a database superuser can."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            for sql, params in statements:
                cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def rechain(operator) -> None:
    """Recompute every hash and the head from the rows as they now are (what an attacker does)."""
    rows = (
        ConsentEvent.objects.filter(operator=operator)
        .order_by("seq")
        .values_list("record_id", *CANONICAL_FIELDS)
    )
    prev, statements, last_seq = GENESIS_HASH, [], 0
    for record_id, *values in rows:
        digest = chain_hash(prev, canonical_bytes(tuple(values)))
        statements.append(
            (
                "UPDATE consent_consentevent SET prev_hash = %s, hash = %s WHERE record_id = %s",
                [prev, digest, record_id],
            )
        )
        prev, last_seq = digest, values[CANONICAL_FIELDS.index("seq")]
    statements.append(
        (
            "UPDATE consent_ledgerhead SET last_seq = %s, last_hash = %s WHERE operator_id = %s",
            [last_seq, prev, operator.pk],
        )
    )
    as_superuser(*statements)


@pytest.fixture
def ledger_of_four(operator):
    """Four events (the third a withdrawal), checkpointed and witnessed."""
    events = [
        give(operator, "subject-1"),
        give(operator, "subject-2"),
        give(operator, "subject-1", state="withdrawn"),
        give(operator, "subject-3"),
    ]
    checkpoint = ledger.checkpoint_ledger(operator_id=operator.pk)
    assert checkpoint.size == 4
    call_command("verify_ledger")  # intact before the attack
    return events


def verify_fails(capsys, *args) -> str:
    with pytest.raises(CommandError, match="1 broken"):
        call_command("verify_ledger", *args)
    return capsys.readouterr().err


def test_a_withdrawal_flipped_back_to_given_is_named(operator, ledger_of_four, capsys):
    withdrawal = ledger_of_four[2]
    assert not services.has_current_consent(
        operator=operator, subject_identifier="subject-1", purpose_code=PURPOSES[0]
    )
    as_superuser(
        ("UPDATE consent_consentevent SET state = 'given', stop_processing_by = NULL WHERE record_id = %s",
         [withdrawal.record_id]),
    )  # fmt: skip
    rechain(operator)
    err = verify_fails(capsys, "--operator", operator.slug, "--deep")
    assert "seq=3" in err and "event 3 differs from the one witnessed in checkpoint 1" in err
    # The consent check does not take the rewritten event at its word.
    assert not services.has_current_consent(
        operator=operator, subject_identifier="subject-1", purpose_code=PURPOSES[0]
    )


def test_a_deleted_middle_event_is_named(operator, ledger_of_four, capsys):
    as_superuser(
        ("DELETE FROM consent_consentevent WHERE record_id = %s", [ledger_of_four[1].record_id]),
        ("UPDATE consent_consentevent SET seq = seq - 1 WHERE operator_id = %s AND seq > 2", [operator.pk]),
    )
    rechain(operator)
    err = verify_fails(capsys)
    assert "seq=2" in err and "event 2 differs" in err
    assert "1 events missing since checkpoint 1" in err


def test_reordered_events_are_named(operator, ledger_of_four, capsys):
    second, third = ledger_of_four[1], ledger_of_four[2]
    as_superuser(
        ("UPDATE consent_consentevent SET seq = -1 WHERE record_id = %s", [second.record_id]),
        ("UPDATE consent_consentevent SET seq = 2 WHERE record_id = %s", [third.record_id]),
        ("UPDATE consent_consentevent SET seq = 3 WHERE record_id = %s", [second.record_id]),
    )
    rechain(operator)
    err = verify_fails(capsys, "--operator", operator.slug)
    assert "seq=2" in err and "event 2 differs from the one witnessed" in err


def test_a_forged_append_is_named_and_never_signed(operator, ledger_of_four, capsys):
    last = ConsentEvent.objects.get(record_id=ledger_of_four[3].record_id)
    forged = ConsentEvent(**{f.attname: getattr(last, f.attname) for f in ConsentEvent._meta.concrete_fields})
    forged.record_id, forged.seq, forged.prev_hash = "00000000-0000-4000-8000-000000000001", 5, last.hash
    forged.subject_index = forged.subject_digest = ledger_of_four[2].subject_index
    forged.hash = forged.compute_hash()
    forged.save(force_insert=True)  # the ORM allows an insert; the superuser then moves the head
    as_superuser(
        (
            "UPDATE consent_ledgerhead SET last_seq = 5, last_hash = %s WHERE operator_id = %s",
            [forged.hash, operator.pk],
        )
    )
    err = verify_fails(capsys)
    assert "seq=5" in err and "events after seq 4 are not authenticated" in err
    # Beat does not sign the forged event into a checkpoint.
    assert ledger.checkpoint_ledgers() == 0
    assert Checkpoint.objects.filter(stream=ledger.stream_name(operator.pk)).count() == 1


def test_a_cut_tail_with_the_head_rolled_back_is_counted(operator, ledger_of_four, capsys):
    third = ConsentEvent.objects.get(record_id=ledger_of_four[2].record_id)
    as_superuser(
        ("DELETE FROM consent_consentevent WHERE operator_id = %s AND seq = 4", [operator.pk]),
        (
            "UPDATE consent_ledgerhead SET last_seq = 3, last_hash = %s WHERE operator_id = %s",
            [third.hash, operator.pk],
        ),
    )
    err = verify_fails(capsys, "--operator", operator.slug)
    assert "seq=4" in err and "1 events missing since checkpoint 1 (4 events" in err


def test_a_truncated_ledger_is_still_checked_without_arguments(operator, ledger_of_four, capsys):
    as_superuser(
        ("TRUNCATE consent_consentevent", []),
        ("TRUNCATE consent_ledgerhead", []),
        ("TRUNCATE audit_checkpoint", []),
    )
    err = verify_fails(capsys)  # no --operator: the store still knows this ledger
    assert f"operator={operator.slug} seq=1" in err and "4 events missing since checkpoint 1" in err


def test_a_rewrite_signed_with_the_stolen_key_fails_the_consistency_proof(operator, ledger_of_four, capsys):
    """An attacker on the application server (with the signing key) rewrites and re-signs everything local."""
    from portal import transparency

    as_superuser(
        ("UPDATE consent_consentevent SET state = 'given', stop_processing_by = NULL WHERE record_id = %s",
         [ledger_of_four[2].record_id]),
    )  # fmt: skip
    rechain(operator)
    leaves = [bytes.fromhex(h) for h in ConsentEvent.objects.filter(operator=operator).order_by("seq")
              .values_list("hash", flat=True)]  # fmt: skip
    stream = ledger.stream_name(operator.pk)
    first = Checkpoint.objects.get(stream=stream)
    store = transparency.default_store()
    forged = transparency.sign_checkpoint(
        key=transparency.signing_key(), stream=stream, number=2, size=4,
        root_hash=transparency.merkle_root(leaves).hex(), timestamp="2026-11-30T02:00:00+00:00",
        previous_size=4, previous_root=first.root_hash,
    )  # fmt: skip
    store.write_leaves(stream, 0, leaves)  # the local witness rewritten too
    store.write(forged)
    err = verify_fails(capsys)
    assert "checkpoints 1 and 2 disagree" in err


def test_checkpoints_resume_from_the_store_when_the_rows_are_gone(operator, ledger_of_four, capsys):
    as_superuser(("TRUNCATE audit_checkpoint", []))
    give(operator, "subject-4")
    second = ledger.checkpoint_ledger(operator_id=operator.pk)
    assert (second.number, second.previous_size, second.size) == (2, 4, 5)
    call_command("verify_ledger")
    assert "intact: 5 events" in capsys.readouterr().out
