"""The consent ledger's chain: appending under the head lock, checkpoints, verification.

Writers take the operator's chain head row lock (`lock_head`) inside their
transaction, build each event from the locked head (`next_event`) and store the new
head with its MAC (`save_head`), so two writers at once still form one valid chain
(DESIGN.md, "Chains and counters under concurrency").

Each operator's ledger is also a Merkle tree (stream `consent/<operator id>`) whose
signed checkpoints are witnessed outside the database (portal/audit/checkpoints.py);
`verify_ledger` compares the database with the latest witnessed checkpoint.
"""

import json
import logging
import re
from binascii import unhexlify
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256

from django.db import connection, transaction

from portal.audit.checkpoints import (
    CheckpointRefused,
    compare_with_witness,
    head_is_authentic,
    head_problem,
    make_checkpoint,
)
from portal.audit.models import Checkpoint
from portal.crypto import Kind, blind_index
from portal.transparency import default_store, head_mac

from .models import (
    CANONICAL_FIELDS,
    GENESIS_HASH,
    ConsentEvent,
    ConsentState,
    LedgerHead,
    canonical_bytes,
    canonical_json,
    chain_hash,
    stop_processing_deadline,
)

logger = logging.getLogger(__name__)

STREAM_PREFIX = "consent/"


def stream_name(operator_id: int) -> str:
    return f"{STREAM_PREFIX}{operator_id}"


# --- Appending -----------------------------------------------------------------------


def lock_head(operator) -> LedgerHead:
    """Return the operator's chain head, row-locked until the transaction ends."""
    LedgerHead.objects.get_or_create(operator=operator)
    return LedgerHead.objects.select_for_update().get(operator=operator)


def next_event(*, head: LedgerHead, **values) -> ConsentEvent:
    """Return the next unsaved event of the chain and advance `head` in memory."""
    values.setdefault("subject_digest", values.get("subject_index", ""))
    event = ConsentEvent(seq=head.last_seq + 1, prev_hash=head.last_hash, **values)
    if event.state == ConsentState.WITHDRAWN:
        event.stop_processing_by = stop_processing_deadline(event.event_at)
    event.hash = event.compute_hash()
    head.last_seq, head.last_hash = event.seq, event.hash
    return event


def save_head(head: LedgerHead) -> None:
    """Store the (locked) head as advanced in memory, with its MAC."""
    head.mac = head_mac(stream_name(head.pk), head.last_seq, head.last_hash)
    LedgerHead.objects.filter(pk=head.pk).update(
        last_seq=head.last_seq, last_hash=head.last_hash, mac=head.mac
    )


# --- Checkpoints ---------------------------------------------------------------------


def _leaf_reader(operator_id: int):
    def read(start: int, end: int) -> Iterator[bytes]:
        if connection.vendor == "postgresql":
            return _leaves_copy(operator_id, start, end)
        hashes = (
            ConsentEvent.objects.filter(operator_id=operator_id, seq__gt=start, seq__lte=end)
            .order_by("seq")
            .values_list("hash", flat=True)
        )
        return (bytes.fromhex(h) for h in hashes.iterator(chunk_size=20000))

    return read


def _leaves_copy(operator_id: int, start: int, end: int) -> Iterator[bytes]:
    """Yield the hashes of events start < seq <= end with one COPY (the checkpoint after an import)."""
    sql = (
        f"COPY (SELECT hash FROM consent_consentevent WHERE operator_id = {int(operator_id)} "  # noqa: S608
        f"AND seq > {int(start)} AND seq <= {int(end)} ORDER BY seq) TO STDOUT"
    )
    with connection.cursor() as outer, outer.cursor.copy(sql) as copy_out:
        # psycopg hands out COPY data one row (one line) at a time.
        for row in copy_out:
            yield unhexlify(bytes(row)[:64])


def checkpoint_ledger(*, operator_id: int) -> Checkpoint | None:
    """Sign and witness a checkpoint of the operator's ledger if it grew; return it.

    Called by beat and once at the end of every import (never per event). Refuses
    (CheckpointRefused) a head that was moved outside the application: signing it
    would vouch for a forged append.
    """
    from portal.accounts.models import Operator

    operator = Operator.objects.filter(pk=operator_id).first()
    with transaction.atomic():
        head = LedgerHead.objects.select_for_update().filter(operator_id=operator_id).first()
        if head is None:
            return None
        stream = stream_name(operator_id)
        done = (
            Checkpoint.objects.filter(stream=stream)
            .order_by("-number")
            .values_list("size", flat=True)
            .first()
        )
        if not head_is_authentic(
            stream=stream,
            last_seq=head.last_seq,
            last_hash=head.last_hash,
            mac=head.mac,
            checkpointed=done or 0,
        ):
            raise CheckpointRefused(f"the head of {stream} was changed outside the application")
        return make_checkpoint(
            stream=stream, size=head.last_seq, read_leaves=_leaf_reader(operator_id), operator=operator
        )


def checkpoint_ledgers() -> int:
    """Checkpoint every ledger that grew since its last checkpoint; return how many were made.

    A refused ledger is logged and skipped (verify_ledger names what is wrong); the
    others still get their checkpoints.
    """
    made = 0
    for operator_id in LedgerHead.objects.filter(last_seq__gt=0).values_list("operator_id", flat=True):
        try:
            made += checkpoint_ledger(operator_id=operator_id) is not None
        except (CheckpointRefused, OSError) as exc:  # OSError: the checkpoint store is unwritable
            logger.error("consent ledger of operator %s not checkpointed: %s", operator_id, exc)
    return made


def event_is_sound(*, operator_id: int, values: tuple, prev_hash: str, stored_hash: str) -> bool:
    """Return False when an event (CANONICAL_FIELDS values) does not give its hash, or
    its hash is not the leaf the checkpoint store witnessed at its position.

    One SHA-256 and one 32-byte read from the store: cheap enough for every consent
    check. An event newer than the latest checkpoint has no witnessed leaf yet and is
    judged by its own hash only (verify_ledger checks the head MAC for those).
    """
    if chain_hash(prev_hash, canonical_bytes(values)) != stored_hash:
        return False
    seq = values[CANONICAL_FIELDS.index("seq")]
    witnessed = default_store().read_leaf(stream_name(operator_id), seq - 1)
    return witnessed is None or witnessed == bytes.fromhex(stored_hash)


# --- Verification --------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerBreak:
    operator_id: int
    seq: int
    record_id: str
    reason: str


# Each event as PostgreSQL's COPY writes it, tab-separated: seq, hash, then the bytes
# the hash covers in three parts — prev_hash and the canonical text up to the evidence,
# the evidence as stored (made canonical in Python), the import key — so verifying a
# million events is one streamed read and one SHA-256 per event. The canonical text is
# the same as ConsentEvent.canonical() (the tests verify chains written both ways).
_COPY_SQL = """
COPY (
    SELECT seq, hash,
           prev_hash || concat_ws(E'\\x1f', operator_id::text, seq::text, record_id::text, subject_digest,
                     purpose_code, policy_version_id::text, state, method, actor_type,
                     coalesce(recorded_by_id::text, ''),
                     (extract(epoch FROM event_at) * 1000000)::bigint::text,
                     (extract(epoch FROM recorded_at) * 1000000)::bigint::text,
                     coalesce(((extract(epoch FROM expires_at) * 1000000)::bigint)::text, ''),
                     coalesce(((extract(epoch FROM stop_processing_by) * 1000000)::bigint)::text, ''))
                     || E'\\x1f',
           evidence::text,
           E'\\x1f' || coalesce(import_key::text, '')
    FROM consent_consentevent WHERE operator_id = {operator_id} ORDER BY seq
) TO STDOUT
"""
_COPY_ESCAPES = {
    b"\\\\": b"\\",
    b"\\t": b"\t",
    b"\\n": b"\n",
    b"\\r": b"\r",
    b"\\b": b"\b",
    b"\\f": b"\f",
    b"\\v": b"\v",
}


def _evidence_text(text: str | None) -> str:
    if text is None or text == "{}":
        return "" if text is None else "{}"
    value = json.loads(text)
    if value is None:
        return ""
    return canonical_json(value) if isinstance(value, dict) else str(value)


def _unescape_copy(field: bytes) -> bytes:
    """Undo COPY's text-format escaping (only evidence can contain a backslash)."""
    return re.sub(rb"\\[\\tnrbfv]", lambda m: _COPY_ESCAPES[m.group(0)], field)


def _walk_copy(operator_id: int) -> tuple[list[bytes], LedgerBreak | None]:
    """Check the chain of one operator on PostgreSQL; return (leaves, first break or None)."""
    leaves: list[bytes] = []
    canonical_evidence: dict[bytes, bytes] = {}
    expected_seq, prev = 1, GENESIS_HASH.encode()
    broken: tuple[int, str] | None = None
    sql = _COPY_SQL.format(operator_id=int(operator_id))
    with transaction.atomic(), connection.cursor() as outer:
        # JIT-compiling this one scan costs seconds and saves nothing.
        outer.execute("SET LOCAL jit = off")
        with outer.cursor.copy(sql) as copy:
            # psycopg hands out COPY data one row (one line, with its newline) at a time.
            for block in copy:
                if broken is not None:
                    continue  # drain the rest: the connection is busy until COPY ends
                line = bytes(block)[:-1]
                seq, stored, head, evidence, tail = line.split(b"\t")
                if b"\\" in line:
                    head, evidence, tail = (
                        _unescape_copy(head),
                        _unescape_copy(evidence),
                        _unescape_copy(tail),
                    )
                # Evidence repeats (the same banner or form version for many events): its
                # canonical text is computed once per distinct value, in a bounded cache.
                text = canonical_evidence.get(evidence)
                if text is None:
                    if len(canonical_evidence) > 50_000:
                        canonical_evidence.clear()
                    raw = None if evidence == b"\\N" else evidence.decode()
                    text = canonical_evidence[evidence] = _evidence_text(raw).encode()
                if int(seq) != expected_seq:
                    broken = (int(seq), f"expected sequence {expected_seq}")
                elif head[:64] != prev:
                    broken = (int(seq), "previous hash does not match")
                elif sha256(head + text + tail).hexdigest().encode() != stored:
                    broken = (int(seq), "content does not match its hash")
                else:
                    leaves.append(unhexlify(stored))
                    prev, expected_seq = stored, expected_seq + 1
    # Asked only now: the connection is free again once COPY has ended.
    return leaves, _break_at(operator_id, *broken) if broken is not None else None


def _break_at(operator_id: int, seq: int, reason: str) -> LedgerBreak:
    record_id = (
        ConsentEvent.objects.filter(operator_id=operator_id, seq=seq)
        .values_list("record_id", flat=True)
        .first()
    )
    return LedgerBreak(operator_id, seq, str(record_id or ""), reason)


def _rows_orm(operator_id: int, deep: bool) -> Iterator[tuple[int, str, bytes, str, str]]:
    fields = (*CANONICAL_FIELDS, "prev_hash", "hash")
    if deep:
        fields += ("subject_identifier", "subject_index")
    count = len(CANONICAL_FIELDS)
    seq_at, id_at = CANONICAL_FIELDS.index("seq"), CANONICAL_FIELDS.index("record_id")
    rows = ConsentEvent.objects.filter(operator_id=operator_id).order_by("seq").values_list(*fields)
    for row in rows.iterator(chunk_size=5000):
        values = row[:count]
        if deep and blind_index(Kind.IDENTIFIER, row[count + 2].strip()) != row[count + 3]:
            # Reported as a content break of its own kind (see verify_ledger).
            yield values[seq_at], str(values[id_at]), b"", "", "deep"
            continue
        yield values[seq_at], str(values[id_at]), canonical_bytes(values), row[count], row[count + 1]


def _operator_ids() -> list[int]:
    """Return every operator that has, or ever had, a ledger: events, a head or a checkpoint."""
    ids = set(ConsentEvent.objects.order_by().values_list("operator_id", flat=True).distinct())
    ids |= set(LedgerHead.objects.values_list("operator_id", flat=True))
    streams = set(
        Checkpoint.objects.filter(stream__startswith=STREAM_PREFIX).values_list("stream", flat=True)
    )
    streams |= {s for s in default_store().streams() if s.startswith(STREAM_PREFIX)}
    ids |= {int(s.removeprefix(STREAM_PREFIX)) for s in streams if s.removeprefix(STREAM_PREFIX).isdigit()}
    return sorted(ids)


def verify_ledger(*, operator=None, deep: bool = False) -> Iterator[LedgerBreak]:
    """Yield what is wrong with each operator's ledger (or `operator`'s); nothing if intact.

    Checks, per operator: the hash chain (sequence, links, content), the head row
    (same end as the chain, MAC intact), and the chain against the latest witnessed
    checkpoint (first event that differs, events missing since it). Without
    `operator`, every operator that ever had a ledger is checked, also one whose
    events are all gone. `deep` also decrypts each identifier and checks it against
    its blind index (catches a ciphertext swapped in from another row).
    """
    operator_ids = [operator.pk] if operator is not None else _operator_ids()
    for operator_id in operator_ids:
        yield from _verify_one(operator_id, deep=deep)


def _walk_rows(operator_id: int, deep: bool) -> tuple[list[bytes], LedgerBreak | None]:
    """Check the chain of one operator through the ORM; return (leaves, first break or None)."""
    prev_hash, expected_seq = GENESIS_HASH, 1
    leaves: list[bytes] = []
    rows = _rows_orm(operator_id, deep)
    for seq, record_id, canonical, stored_prev, stored_hash in rows:
        reason = None
        if seq != expected_seq:
            reason = f"expected sequence {expected_seq}"
        elif stored_hash == "deep":
            reason = "identifier does not match its blind index"
        elif stored_prev != prev_hash:
            reason = "previous hash does not match"
        elif sha256(stored_prev.encode() + canonical).hexdigest() != stored_hash:
            reason = "content does not match its hash"
        if reason is not None:
            rows.close()
            return leaves, LedgerBreak(operator_id, seq, record_id, reason)
        leaves.append(bytes.fromhex(stored_hash))
        prev_hash, expected_seq = stored_hash, expected_seq + 1
    return leaves, None


def _verify_one(operator_id: int, *, deep: bool) -> Iterator[LedgerBreak]:
    stream = stream_name(operator_id)
    if connection.vendor == "postgresql" and not deep:
        leaves, broken = _walk_copy(operator_id)
    else:
        leaves, broken = _walk_rows(operator_id, deep)
    if broken is not None:
        yield broken
        return
    expected_seq = len(leaves) + 1
    prev_hash = leaves[-1].hex() if leaves else GENESIS_HASH
    last = expected_seq - 1
    head = LedgerHead.objects.filter(operator_id=operator_id).first()
    checkpoint, findings = compare_with_witness(stream=stream, leaves=leaves)
    for finding in findings:
        yield LedgerBreak(operator_id, finding.seq or 0, "", finding.reason)
    if findings:
        return
    problem = head_problem(stream=stream, head=head, length=last, last_hash=prev_hash, checkpoint=checkpoint)
    if problem is not None:
        yield LedgerBreak(operator_id, problem[0], "", problem[1])
    elif head is None and last:
        yield LedgerBreak(operator_id, 1, "", "the chain head is missing")


def checkpoint_after_import(*, operator_id: int) -> None:
    """Checkpoint the ledger after a committed import; a refusal is logged, not raised.

    The import itself is committed and stays; beat retries the checkpoint, and
    verify_ledger names whatever made it refuse.
    """
    try:
        checkpoint_ledger(operator_id=operator_id)
    except (CheckpointRefused, OSError) as exc:  # OSError: the checkpoint store is unwritable
        logger.error("consent ledger of operator %s not checkpointed after import: %s", operator_id, exc)
