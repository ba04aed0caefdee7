"""Row work of the consent importer, in plain Python without Django.

A parallel import runs `prepare_chunk` in worker processes: they import this module
only (no Django setup, so a worker starts in a fraction of a second) and receive
everything they need once, as a picklable `RowContext`. The same code runs in-process
for small files and on SQLite. Messages explaining bad rows are written by the main
process (`consent.importer`), which has the translations; here a bad row is only
reported back with its line number and fields.

What a worker returns for a good row is the event minus its place in the chain:
`seq`, `prev_hash` and `hash` are filled in by the one process that holds the
chain head, in file order.
"""

import csv
import hashlib
import hmac
import io
import operator
import os
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet

SEP = "\x1f"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MAX_IDENTIFIER_LENGTH = 200
MAX_EVIDENCE_LENGTH = 500

# How a chunk is prepared: validated with import keys only (the look-up of keys
# already in the ledger), as rows (preview, SQLite), or encrypted and formatted as
# COPY lines (PostgreSQL).
KEYS, ROWS, COPY_LINES = "keys", "rows", "copy"


@dataclass(frozen=True)
class RowContext:
    """Everything needed to check and prepare rows of one import, without a database."""

    header: tuple[str, ...]
    columns: tuple[int | None, ...]  # positions of REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    delimiter: str
    tz_name: str
    latest_allowed: datetime
    versions: dict[str, tuple[int, frozenset[str]]]  # number -> (pk, purpose codes)
    states: frozenset[str]
    methods: frozenset[str]
    actors: frozenset[str]
    default_actor: str
    withdrawn: str
    stop_micros: int
    index_key: bytes  # BLIND_INDEX_KEY: the subject's lookup index
    row_key: bytes  # the operator's import key: the row's import key
    fernet_key: bytes = b""  # derived key of the first of FERNET_KEYS (COPY_LINES only)
    operator_id: int = 0
    actor_id: int | None = None
    recorded_at: datetime = EPOCH


@dataclass(slots=True)
class Row:
    subject: str
    index: str
    purpose: str
    state: str
    method: str
    actor: str
    version_id: int
    event_at: datetime
    expires_at: datetime | None
    evidence_json: str
    key: str


@dataclass
class Chunk:
    """What preparing one chunk of the file gave."""

    rows: int = 0  # non-blank rows
    keys: list[int] = field(default_factory=list)  # import keys of the good rows, in order
    prepared: list = field(default_factory=list)  # Row, or (head, middle, tail) strings
    bad: list[tuple[int, list[str]]] = field(default_factory=list)  # (line, fields)
    unreadable: tuple[int, str] | None = None  # (line, error): reading stops there


def epoch_micros(value: datetime) -> int:
    """Return an aware time as whole microseconds since 1970 (as consent.models does)."""
    return (value - EPOCH) // MICROSECOND


def parse_time(value: str, tz) -> datetime | None:
    """Return an ISO 8601 time as UTC (a time without offset is in `tz`), or None if invalid."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def record_ids(count: int) -> list[str]:
    """Return `count` time-ordered record ids (UUID version 7 layout: milliseconds, then random).

    Ids that grow with time keep inserts into the primary-key index local, unlike
    random version 4 ids, which touch a random index page per row.
    """
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    raw = os.urandom(10 * count).hex()
    out = []
    for n in range(count):
        h = raw[20 * n : 20 * n + 20]
        variant = "89ab"[int(h[3], 16) & 3]
        out.append(f"{stamp[:8]}-{stamp[8:]}-7{h[:3]}-{variant}{h[4:7]}-{h[8:20]}")
    return out


def copy_text(value: str) -> str:
    """Escape a value for PostgreSQL's COPY text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class RowChecker:
    """Turn one CSV row into a Row, or say it is bad (the fast path: no explanations)."""

    def __init__(self, context: RowContext):
        self.context = context
        self.tz = ZoneInfo(context.tz_name)
        # Keyed once; each value then costs one copy of the prepared HMAC state.
        self.index_mac = hmac.new(context.index_key, b"identifier:", hashlib.sha256)
        self.row_mac = hmac.new(context.row_key, b"consent-row:", hashlib.sha256)
        self.width = len(context.header)
        # The usual case, every column present: one C-level call picks them in order.
        self.pick = operator.itemgetter(*context.columns) if None not in context.columns else None

    def subject_index(self, value: str) -> str:
        # Same value as portal.crypto.blind_index(Kind.IDENTIFIER, value), without the
        # per-call overhead (a test checks they agree).
        mac = self.index_mac.copy()
        mac.update(unicodedata.normalize("NFKC", value).strip().encode())
        return mac.hexdigest()

    def row_key(self, parts: tuple) -> str:
        """Return the row's import key: 128 bits of a keyed hash of its content, as a UUID."""
        mac = self.row_mac.copy()
        mac.update(SEP.join(parts).encode())
        h = mac.digest()[:16].hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def fields(self, fields: list[str]) -> tuple[str, ...]:
        """Return the row's values in REQUIRED_COLUMNS + OPTIONAL_COLUMNS order, stripped."""
        if self.pick is not None:
            return tuple(map(str.strip, self.pick(fields)))
        return tuple("" if i is None else fields[i].strip() for i in self.context.columns)

    def check(self, fields: list[str]) -> Row | bool | None:
        """Return the row, False when it is bad, or None for a blank line."""
        ctx = self.context
        if len(fields) != self.width:
            return False if any(f.strip() for f in fields) else None
        subject, purpose, state, event_time, method, version_no, actor, expires, evidence = self.fields(
            fields
        )
        state, method, actor = state.lower(), method.lower(), actor.lower() or ctx.default_actor
        version = ctx.versions.get(version_no)
        event_at = parse_time(event_time, self.tz)
        expires_at = parse_time(expires, self.tz) if expires else None
        if not (
            subject
            and len(subject) <= MAX_IDENTIFIER_LENGTH
            and version is not None
            and purpose in version[1]
            and state in ctx.states
            and method in ctx.methods
            and actor in ctx.actors
            and event_at is not None
            and event_at <= ctx.latest_allowed
            and (not expires or (expires_at is not None and expires_at > event_at))
            and len(evidence) <= MAX_EVIDENCE_LENGTH
        ):
            return False
        key = self.row_key(
            (subject, purpose, state, event_time, method, actor, version_no, expires, evidence)
        )
        # Evidence JSON written out directly: the same text as models.canonical_json
        # gives for {"reference": evidence} (tested), at a fraction of the cost.
        return Row(
            subject, self.subject_index(subject), purpose, state, method, actor, version[0], event_at,
            expires_at, '{"reference":' + encode_basestring(evidence) + "}" if evidence else "{}", key,
        )  # fmt: skip


class ChunkPreparer:
    """Prepare chunks of a CSV file (whole lines, header excluded) for one import."""

    def __init__(self, context: RowContext):
        self.context = context
        self.checker = RowChecker(context)
        self.fernet = Fernet(context.fernet_key) if context.fernet_key else None

    def __call__(self, data: bytes, first_line: int, mode: str) -> Chunk:
        out = Chunk()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.unreadable = (first_line + data.count(b"\n", 0, exc.start), str(exc))
            text = data[: data.rfind(b"\n", 0, exc.start) + 1].decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.context.delimiter)
        check = self.checker.check
        good: list[Row] = []
        try:
            for fields in reader:
                outcome = check(fields)
                if outcome is None:
                    continue
                out.rows += 1
                if outcome is False:
                    out.bad.append((first_line - 1 + reader.line_num, fields))
                else:
                    good.append(outcome)
        except csv.Error as exc:
            out.unreadable = (first_line - 1 + reader.line_num, str(exc))
        out.keys = [int(row.key.replace("-", ""), 16) for row in good]
        if mode == ROWS:
            out.prepared = good
        elif mode == COPY_LINES:
            out.prepared = self.copy_pieces(good)
        return out

    def copy_pieces(self, rows: list[Row]) -> list[tuple[str, str, str]]:
        """Return each row's COPY line and canonical text, less what the chain fills in.

        A line is `head \\t seq \\t middle \\t prev_hash \\t hash`; the canonical text
        (consent.models.CANONICAL_FIELDS) is `operator_id SEP seq SEP tail`.
        """
        ctx = self.context
        encrypt = self.fernet.encrypt_at_time
        now = int(time.time())  # the token's timestamp, the same for the chunk
        operator_id = str(ctx.operator_id)
        actor_copy = "\\N" if ctx.actor_id is None else str(ctx.actor_id)
        actor_text = "" if ctx.actor_id is None else str(ctx.actor_id)
        recorded_micros = str(epoch_micros(ctx.recorded_at))
        recorded_iso = ctx.recorded_at.isoformat()
        stop_after = timedelta(microseconds=ctx.stop_micros)
        withdrawn = ctx.withdrawn
        out = []
        for row, record_id in zip(rows, record_ids(len(rows)), strict=True):
            event_micros = epoch_micros(row.event_at)
            withdrawal = row.state == withdrawn
            expires = row.expires_at
            tail = SEP.join((
                record_id, row.index, row.purpose, str(row.version_id), row.state, row.method, row.actor,
                actor_text, str(event_micros), recorded_micros,
                str(epoch_micros(expires)) if expires is not None else "",
                str(event_micros + ctx.stop_micros) if withdrawal else "",
                row.evidence_json, row.key,
            ))  # fmt: skip
            # The Fernet token (URL-safe base64 bytes) goes to the bytea column as \x hex.
            middle = "\t".join((
                "\\\\x" + encrypt(row.subject.encode(), now).hex(), row.index, row.index, row.purpose,
                str(row.version_id), row.state, row.method, row.actor, actor_copy, row.event_at.isoformat(),
                recorded_iso,
                expires.isoformat() if expires is not None else "\\N",
                (row.event_at + stop_after).isoformat() if withdrawal else "\\N",
                copy_text(row.evidence_json), row.key,
            ))  # fmt: skip
            out.append((record_id + "\t" + operator_id, middle, tail))
        return out


def iter_chunks(stream: io.BufferedIOBase, first_line: int, size: int = 1 << 20):
    """Yield (bytes, number of its first line) of whole CSV records, about `size` bytes each.

    A newline ends a record only outside quotes; in CSV a quote inside a quoted field
    is doubled, so a newline is outside quotes when the quotes before it are even.
    """
    carry = b""
    line = first_line
    while True:
        block = stream.read(size)
        if not block:
            if carry:
                yield carry, line
            return
        data = carry + block
        cut = data.rfind(b"\n")
        while cut != -1 and data.count(b'"', 0, cut) % 2:
            cut = data.rfind(b"\n", 0, cut)
        if cut == -1:
            carry = data
            continue
        chunk, carry = data[: cut + 1], data[cut + 1 :]
        yield chunk, line
        line += chunk.count(b"\n")


# --- In a worker process -------------------------------------------------------------

_preparer: ChunkPreparer | None = None


def start_worker(context: RowContext) -> None:
    """Initialise a worker process with the import's context."""
    global _preparer
    _preparer = ChunkPreparer(context)


def prepare_in_worker(data: bytes, first_line: int, mode: str) -> Chunk:
    return _preparer(data, first_line, mode)
