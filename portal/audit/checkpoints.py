"""Make, witness and check signed checkpoints of an append-only stream.

Shared by the audit log (`portal/audit/services.py`) and the consent ledgers
(`consent/ledger.py`); the Merkle tree and the signatures are in `portal/transparency.py`.

A checkpoint is kept three times: as a `Checkpoint` row, as a file in the checkpoint
store outside the database (with the stream's leaves, so a later comparison can name
the first event that differs), and at BSSN, which receives it as a `ledger.checkpoint`
alert. Verification trusts only signatures, so a row deleted or rewritten by a
database superuser cannot hide what the store or BSSN still holds.
"""

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from portal.alerts.models import EventType
from portal.alerts.services import emit_event
from portal.transparency import (
    CheckpointStore,
    Frontier,
    SignedCheckpoint,
    SpilledLeaves,
    consistency_proof_from,
    default_store,
    head_mac,
    sign_checkpoint,
    signing_key,
    verification_keys,
)

from .models import GENESIS_HASH, AuditEvent, AuditStream, Checkpoint
from .services import STREAM_PREFIX, ChainBreak, stream_name

logger = logging.getLogger(__name__)

# Leaves of events with start < seq <= end, in sequence order (raw 32-byte chain hashes).
LeafReader = Callable[[int, int], Iterable[bytes]]


class CheckpointRefused(Exception):
    """The stream is not in a state the portal will sign (the reason says why)."""


@dataclass(frozen=True)
class Finding:
    """One thing verification found wrong with a stream; `seq` is the first bad event, if known."""

    stream: str
    seq: int | None
    reason: str


def head_is_authentic(*, stream: str, last_seq: int, last_hash: str, mac: str, checkpointed: int = 0) -> bool:
    """Return True when a head row's MAC matches it (always True without a signing key).

    A head no further than the latest signed checkpoint (`checkpointed` events) needs
    no MAC: the checkpoint vouches for it, and the comparison with the witness checks
    those events. So a head MACed under a rotated key is refused only if it moved on.
    """
    if last_seq <= checkpointed:
        return True
    expected = head_mac(stream, last_seq, last_hash)
    return not expected or mac == expected


def head_problem(*, stream: str, head, length: int, last_hash: str, checkpoint) -> tuple[int, str] | None:
    """Return (first bad sequence, why) when a chain's head row disagrees with its events, else None.

    `head` is the stream's head row (or None), `length` and `last_hash` describe the
    events as read, `checkpoint` is the latest witnessed one (or None). Shared by the
    consent ledgers and the audit log, so both name the same faults in the same words.
    """
    since = checkpoint.size if checkpoint is not None else 0
    if head is not None and (head.last_seq != length or head.last_hash != last_hash):
        if head.last_seq > length:
            missing = head.last_seq - length
            return length + 1, f"{missing} events missing at the end of the chain (head at {head.last_seq})"
        return head.last_seq + 1, (
            f"events after the head (seq {head.last_seq}) were added outside the application"
        )
    if head is not None and not head_is_authentic(
        stream=stream, last_seq=head.last_seq, last_hash=head.last_hash, mac=head.mac, checkpointed=since
    ):
        return since + 1, (
            f"the head was moved outside the application: events after seq {since} are not authenticated"
        )
    return None


def _as_signed(row: Checkpoint) -> SignedCheckpoint:
    return SignedCheckpoint(
        stream=row.stream,
        number=row.number,
        size=row.size,
        root_hash=row.root_hash,
        timestamp=row.timestamp,
        key_id=row.key_id,
        signature=row.signature,
        previous_size=row.previous_size,
        previous_root=row.previous_root,
        consistency=tuple(row.consistency),
    )


def make_checkpoint(*, stream: str, size: int, read_leaves: LeafReader, operator=None) -> Checkpoint | None:
    """Sign, keep and witness a checkpoint of the first `size` events of `stream`.

    Return None when the stream did not grow since its last checkpoint or no signing
    key is configured. Call it inside a transaction holding the stream head's row lock
    (so the events counted are committed and no writer moves the head meanwhile).
    Only the events since the previous checkpoint are read: the previous tree's
    frontier is kept with it. When the database lost checkpoint rows that the store
    still holds, resume from the store's latest if the events still give its root.
    Raise CheckpointRefused when they do not, or events are missing: signing on top
    would hide the loss.
    """
    key = signing_key()
    if key is None:
        logger.warning("no CHECKPOINT_SIGNING_KEY: stream %s not checkpointed", stream)
        return None
    previous = Checkpoint.objects.filter(stream=stream).order_by("-number").first()
    store = default_store()
    latest = store.latest(stream)
    if latest is not None and not latest.signature_valid(verification_keys()):
        latest = None  # not ours: verification reports it
    if latest is not None and latest.size > (previous.size if previous else 0):
        # The database lost checkpoint rows the store still has: resume from the
        # store's, but only if the database's events still give its signed root.
        old = Frontier()
        old.extend(read_leaves(0, latest.size))
        if old.size != latest.size or old.root().hex() != latest.root_hash:
            raise CheckpointRefused(
                f"the events do not match checkpoint {latest.number} of the checkpoint store: "
                "run the verify command"
            )
        old_size, previous_root = latest.size, latest.root_hash
    elif previous is not None:
        old = Frontier.from_json(previous.size, previous.frontier)
        old_size, previous_root = previous.size, previous.root_hash
    else:
        old, old_size, previous_root = Frontier(), 0, ""
    if size <= old_size:
        return None
    with SpilledLeaves() as new_leaves:
        tree = Frontier(old.size, old.nodes)
        tree.extend(new_leaves.record(read_leaves(old_size, size)))
        if tree.size != size:
            raise CheckpointRefused(f"{size - tree.size} events missing below the head")
        proof = consistency_proof_from(old, new_leaves.subtree_root, size - old_size) if old_size else []
        number = max(previous.number if previous else 0, latest.number if latest else 0) + 1
        signed = sign_checkpoint(
            key=key,
            stream=stream,
            number=number,
            size=size,
            root_hash=tree.root().hex(),
            timestamp=datetime.now(UTC).isoformat(),
            previous_size=old_size,
            previous_root=previous_root,
            consistency=[h.hex() for h in proof],
        )
        row = Checkpoint.objects.create(
            stream=stream,
            number=number,
            size=size,
            root_hash=signed.root_hash,
            timestamp=signed.timestamp,
            key_id=signed.key_id,
            signature=signed.signature,
            frontier=tree.to_json(),
            previous_size=old_size,
            previous_root=signed.previous_root,
            consistency=list(signed.consistency),
        )
        _witness(store, signed, new_leaves, read_leaves)
        emit_event(
            event_type=EventType.LEDGER_CHECKPOINT,
            operator=operator,
            payload=checkpoint_payload(signed, operator=operator),
            subject=row,
        )
        return row


def _witness(
    store: CheckpointStore, signed: SignedCheckpoint, new_leaves: SpilledLeaves, read_leaves: LeafReader
) -> None:
    """Write the new leaves, then the checkpoint, to the store (an empty store is filled in)."""
    have = min(store.leaf_count(signed.stream), signed.previous_size)
    missing = read_leaves(have, signed.previous_size) if have < signed.previous_size else ()
    store.write_leaves(signed.stream, have, itertools.chain(missing, new_leaves.read()))
    store.write(signed)


def checkpoint_payload(signed: SignedCheckpoint, *, operator=None) -> dict:
    """Return the `ledger.checkpoint/1` document BSSN receives (docs/schemas)."""
    return {
        "schema": "ledger.checkpoint/1",
        "operator": {"slug": operator.slug, "name": operator.name} if operator is not None else None,
        **{k: v for k, v in signed.to_json().items() if k != "format"},
    }


def witnessed_checkpoints(stream: str, *, store: CheckpointStore | None = None):
    """Return (checkpoints with a valid signature, oldest first; findings about the others).

    Both the store's files and the database's rows count: whichever knows more wins,
    as neither can forge a signature.
    """
    store = store or default_store()
    keys = verification_keys()
    findings: list[Finding] = []
    found: dict[tuple[int, int, str], SignedCheckpoint] = {}
    candidates = [(c, "store") for c in store.checkpoints(stream)]
    candidates += [(_as_signed(r), "database") for r in Checkpoint.objects.filter(stream=stream)]
    for cp, where in candidates:
        if cp.stream != stream or not cp.signature_valid(keys):
            findings.append(
                Finding(stream, None, f"checkpoint {cp.number} in the {where} has no valid signature")
            )
            continue
        found[(cp.size, cp.number, cp.root_hash)] = cp
    ordered = sorted(found.values(), key=lambda c: (c.size, c.number))
    for older, newer in zip(ordered, ordered[1:], strict=False):
        if older.size == newer.size and older.root_hash != newer.root_hash:
            findings.append(Finding(stream, None, f"checkpoints {older.number} and {newer.number} disagree"))
        elif newer.previous_size == older.size and (
            newer.previous_root != older.root_hash or not newer.extends_previous()
        ):
            findings.append(
                Finding(stream, None, f"checkpoint {newer.number} does not extend checkpoint {older.number}")
            )
    return ordered, findings


def compare_with_witness(
    *, stream: str, leaves: list[bytes], store: CheckpointStore | None = None
) -> tuple[SignedCheckpoint | None, list[Finding]]:
    """Compare a stream's leaves in the database with its latest witnessed checkpoint.

    Return (that checkpoint or None, findings). A finding names the first event that
    differs from the witnessed leaves (rewritten, reordered, deleted, inserted), or
    how many events are missing since the checkpoint (truncated, tail cut).
    """
    store = store or default_store()
    checkpoints, findings = witnessed_checkpoints(stream, store=store)
    if not checkpoints:
        return None, findings
    latest = checkpoints[-1]
    label = f"checkpoint {latest.number} ({latest.size} events, {latest.timestamp})"
    if len(leaves) >= latest.size and _root_hex(leaves[: latest.size]) == latest.root_hash:
        return latest, findings  # the database holds exactly the witnessed events
    # Something differs: the store's leaves, when they match the signed root, name the
    # first event that does.
    witnessed = list(store.read_leaves(stream, latest.size))
    usable = len(witnessed) == latest.size and _root_hex(witnessed) == latest.root_hash
    if witnessed and not usable:
        findings.append(Finding(stream, None, f"the store's leaves do not match {label}"))
    common = min(len(leaves), latest.size)
    if usable and leaves[:common] != witnessed[:common]:
        position = next(i for i in range(common) if leaves[i] != witnessed[i])
        findings.append(
            Finding(stream, position + 1, f"event {position + 1} differs from the one witnessed in {label}")
        )
    if len(leaves) < latest.size:
        findings.append(
            Finding(stream, len(leaves) + 1, f"{latest.size - len(leaves)} events missing since {label}")
        )
    elif not any(f.seq for f in findings):
        findings.append(
            Finding(stream, None, f"events 1-{latest.size} do not match the root signed in {label}")
        )
    return latest, findings


def _root_hex(leaves: list[bytes]) -> str:
    tree = Frontier()
    tree.extend(leaves)
    return tree.root().hex()


def latest_checkpoint(stream: str) -> SignedCheckpoint | None:
    """Return the latest checkpoint with a valid signature (store or database), or None."""
    checkpoints, _ = witnessed_checkpoints(stream)
    return checkpoints[-1] if checkpoints else None


# --- The audit log's streams ---------------------------------------------------------


def _audit_leaf_reader(name: str) -> LeafReader:
    def read(start: int, end: int):
        hashes = (
            AuditEvent.objects.filter(stream=name, seq__gt=start, seq__lte=end)
            .order_by("seq")
            .values_list("hash", flat=True)
        )
        return (bytes.fromhex(h) for h in hashes.iterator(chunk_size=20000))

    return read


def checkpoint_audit(*, stream: str = "main") -> Checkpoint | None:
    """Sign and witness a checkpoint of audit chain `stream` if it grew; return it."""
    name = stream_name(stream)
    with transaction.atomic():
        head = AuditStream.objects.select_for_update().filter(pk=stream).first()
        if head is None:
            return None
        done = (
            Checkpoint.objects.filter(stream=name).order_by("-number").values_list("size", flat=True).first()
        )
        if not head_is_authentic(
            stream=name,
            last_seq=head.last_seq,
            last_hash=head.last_hash,
            mac=head.mac,
            checkpointed=done or 0,
        ):
            raise CheckpointRefused(f"the head of {name} was changed outside the application")
        return make_checkpoint(stream=name, size=head.last_seq, read_leaves=_audit_leaf_reader(stream))


def checkpoint_audit_streams() -> int:
    """Checkpoint every audit chain that grew; return how many checkpoints were made."""
    made = 0
    for stream in AuditStream.objects.filter(last_seq__gt=0).values_list("name", flat=True):
        try:
            made += checkpoint_audit(stream=stream) is not None
        except (CheckpointRefused, OSError) as exc:  # OSError: the checkpoint store is unwritable
            logger.error("audit stream %s not checkpointed: %s", stream, exc)
    return made


def _audit_stream_names() -> list[str]:
    names = set(AuditEvent.objects.order_by().values_list("stream", flat=True).distinct())
    names |= set(AuditStream.objects.values_list("name", flat=True))
    streams = set(
        Checkpoint.objects.filter(stream__startswith=STREAM_PREFIX).values_list("stream", flat=True)
    )
    streams |= {s for s in default_store().streams() if s.startswith(STREAM_PREFIX)}
    names |= {s.removeprefix(STREAM_PREFIX) for s in streams}
    return sorted(names)


def verify_audit_log(*, stream: str | None = None) -> Iterator[ChainBreak]:
    """Yield what is wrong with each audit chain (or `stream`); nothing when all verify.

    The chain (sequence, links, content), then the head row and the chain against the
    latest witnessed checkpoint, as verify_ledger does for the consent ledgers.
    """
    for name in [stream] if stream else _audit_stream_names():
        broken, leaves = None, []
        for brk, event_hash in _walk_chain(name):
            if brk is not None:
                broken = brk
                break
            leaves.append(bytes.fromhex(event_hash))
        if broken is not None:
            yield broken
            continue
        checkpoint, findings = compare_with_witness(stream=stream_name(name), leaves=leaves)
        for finding in findings:
            yield ChainBreak(name, finding.seq or 0, 0, finding.reason)
        if findings:
            continue
        head = AuditStream.objects.filter(pk=name).first()
        last_hash = leaves[-1].hex() if leaves else GENESIS_HASH
        problem = head_problem(
            stream=stream_name(name),
            head=head,
            length=len(leaves),
            last_hash=last_hash,
            checkpoint=checkpoint,
        )
        if problem is not None:
            yield ChainBreak(name, problem[0], 0, problem[1])


def _walk_chain(name: str):
    prev_hash, expected_seq = GENESIS_HASH, 1
    for event in AuditEvent.objects.filter(stream=name).order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            yield ChainBreak(name, event.seq, event.pk, f"expected sequence {expected_seq}"), None
            return
        if event.prev_hash != prev_hash:
            yield ChainBreak(name, event.seq, event.pk, "previous hash does not match"), None
            return
        if event.compute_hash() != event.hash:
            yield ChainBreak(name, event.seq, event.pk, "content does not match its hash"), None
            return
        yield None, event.hash
        prev_hash, expected_seq = event.hash, expected_seq + 1
