"""Bulk import of consent events from CSV: streamed, validated, all-or-nothing, idempotent.

The file is read in chunks of whole records inside one transaction. Each chunk is
checked and, on PostgreSQL, its identifiers encrypted and its rows indexed and
formatted as `COPY` lines (`consent.import_rows`) — in worker processes when the
import asks for them, so the cryptography of several chunks runs at once. This
process takes the chunks back in file order, gives each row its place in the chain
(sequence, previous hash, hash: sequential by nature, and cheap) and writes: on
PostgreSQL into one `COPY` kept open for the whole import, fed by a writer thread so
the server inserts while Python prepares the next chunk; elsewhere with bulk_create.
Any bad row makes the whole import roll back, and the rest of the file is still
checked so every error is reported at once.

A row's import key is a keyed hash of its content under the operator's import key
(`ImportSecret`, which survives key rotation). A row already in the ledger, or
repeated within the file, is recognised and skipped instead of doubled. When the
operator has imported before, a first pass over the file looks its keys up (the
ledger cannot be queried while a `COPY` is open on the connection).
"""

import codecs
import csv
import gc
import hashlib
import hmac
import io
import json
import multiprocessing
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from queue import Queue
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from fernet_fields.hkdf import derive_fernet_key

from .import_rows import (
    COPY_LINES,
    KEYS,
    MAX_EVIDENCE_LENGTH,
    MAX_IDENTIFIER_LENGTH,
    ROWS,
    SEP,
    Chunk,
    ChunkPreparer,
    Row,
    RowChecker,
    RowContext,
    epoch_micros,
    iter_chunks,
    parse_time,
    prepare_in_worker,
    record_ids,
    start_worker,
)
from .keyset import KeySet
from .ledger import checkpoint_after_import, save_head
from .models import (
    WITHDRAWAL_STOP_HOURS,
    ActorType,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    ImportSecret,
    LedgerHead,
    PolicyStatus,
    PolicyVersion,
)

# Separators a CSV file may use: spreadsheets set to Indonesian (or most European)
# settings save with a semicolon, because the comma is their decimal mark.
DELIMITERS = (",", ";", "\t")
REQUIRED_COLUMNS = ("subject_id", "purpose", "state", "event_time", "method", "policy_version")
OPTIONAL_COLUMNS = ("actor", "expires_at", "evidence")
CHUNK_BYTES = 1 << 18  # about 3,000 rows: small enough to keep every process lean
MAX_REPORTED_ERRORS = 1000
# Event times a little in the future are clock skew between systems, not errors.
FUTURE_TOLERANCE = timedelta(minutes=10)
STOP_MICROS = WITHDRAWAL_STOP_HOURS * 3600 * 1_000_000
# Pieces of COPY data the writer thread may hold before the importer waits for the
# server (psycopg's default, 1,024 pieces of up to 128 kB, could reach 128 MB).
COPY_QUEUE_PIECES = 64

COPY_COLUMNS = (
    "record_id", "operator_id", "seq", "subject_identifier", "subject_index", "subject_digest",
    "purpose_code", "policy_version_id", "state", "method", "actor_type", "recorded_by_id", "event_at",
    "recorded_at",
    "expires_at", "stop_processing_by", "evidence", "import_key", "prev_hash", "hash",
)  # fmt: skip


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not CSV, missing columns)."""


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_errors(self, errors: list[RowError]) -> None:
        self.error_count += len(errors)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])


def row_context(
    operator, *, header: list[str], delimiter: str, actor=None, encrypt: bool = False
) -> RowContext:
    """Return what checking (and, with `encrypt`, preparing) the operator's rows needs."""
    versions = {}
    for version in PolicyVersion.objects.for_operator(operator).exclude(status=PolicyStatus.DRAFT):
        versions[str(version.number)] = (version.pk, frozenset(version.purpose_codes()))
    position = {name: i for i, name in enumerate(header)}
    return RowContext(
        header=tuple(header),
        columns=tuple(position.get(c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS),
        delimiter=delimiter,
        tz_name=operator.timezone,
        latest_allowed=timezone.now() + FUTURE_TOLERANCE,
        versions=versions,
        states=frozenset(ConsentState.values),
        methods=frozenset(CollectionMethod.values),
        actors=frozenset(ActorType.values),
        default_actor=ActorType.SUBJECT.value,
        withdrawn=ConsentState.WITHDRAWN.value,
        stop_micros=STOP_MICROS,
        index_key=settings.BLIND_INDEX_KEY.encode(),
        row_key=import_secret(operator),
        # The key the field encrypts with: the first of FERNET_KEYS, derived as fernet_fields does.
        fernet_key=derive_fernet_key(settings.FERNET_KEYS[0]) if encrypt else b"",
        operator_id=operator.pk,
        actor_id=actor.pk if actor is not None else None,
        recorded_at=timezone.now(),
    )


class _Validator(RowChecker):
    """The row checker, plus the messages that explain a bad row (translated here)."""

    def validate(self, line: int, fields: list[str]) -> Row | list[RowError] | None:
        """Return the row, its errors, or None for a blank line."""
        outcome = self.check(fields)
        if outcome is False:
            return self.explain(line, fields)
        return outcome

    def explain(self, line: int, fields: list[str]) -> list[RowError]:
        """Return every reason a row was refused (the slow path, only for bad rows)."""
        ctx = self.context
        if len(fields) != self.width:
            return [
                RowError(line, "", _("The row has %(found)s fields; the header has %(expected)s.")
                         % {"found": len(fields), "expected": self.width})
            ]  # fmt: skip
        subject, purpose, state, event_time, method, version_no, actor, expires, evidence = self.fields(
            fields
        )
        state, method, actor = state.lower(), method.lower(), actor.lower() or ctx.default_actor
        version = ctx.versions.get(version_no)
        event_at = self._time(event_time)
        expires_at = self._time(expires) if expires else None
        errors = []

        def add(column: str, reason: str) -> None:
            errors.append(RowError(line, column, reason))

        iso_hint = _("Not a date and time in ISO 8601 form, e.g. 2026-03-01T09:30:00+07:00.")
        if not subject:
            add("subject_id", _("The subject identifier is empty."))
        elif len(subject) > MAX_IDENTIFIER_LENGTH:
            add("subject_id", _("The subject identifier is longer than 200 characters."))
        if version is None:
            add("policy_version", _("No published or retired policy version %(value)s.")
                % {"value": version_no[:20] or "—"})  # fmt: skip
        if not purpose:
            add("purpose", _("The purpose is empty."))
        elif version is not None and purpose not in version[1]:
            add("purpose", _("Policy version %(number)s does not declare the purpose %(purpose)s.")
                % {"number": version_no, "purpose": purpose[:60]})  # fmt: skip
        if state not in ctx.states:
            add("state", _("Unknown state %(value)s; use one of: %(choices)s.")
                % {"value": state[:30] or "—", "choices": ", ".join(ConsentState.values)})  # fmt: skip
        if method not in ctx.methods:
            add("method", _("Unknown method %(value)s; use one of: %(choices)s.")
                % {"value": method[:30] or "—", "choices": ", ".join(CollectionMethod.values)})  # fmt: skip
        if actor not in ctx.actors:
            add("actor", _("Unknown actor %(value)s; use one of: %(choices)s.")
                % {"value": actor[:30], "choices": ", ".join(ActorType.values)})  # fmt: skip
        if event_at is None:
            add("event_time", iso_hint)
        elif event_at > ctx.latest_allowed:
            add("event_time", _("The event time is in the future."))
        if expires and expires_at is None:
            add("expires_at", iso_hint)
        elif expires_at is not None and event_at is not None and expires_at <= event_at:
            add("expires_at", _("The expiry must be after the event time."))
        if len(evidence) > MAX_EVIDENCE_LENGTH:
            add("evidence", _("The evidence is longer than 500 characters."))
        return errors

    def _time(self, value: str):
        return parse_time(value, self.tz)


class _Writer:
    """Chain and insert one operator's prepared rows, in file order.

    The canonical text built here (and in `import_rows`) must equal
    `ConsentEvent.canonical()` of the stored row (verify_ledger recomputes it; the
    tests check an imported chain verifies on PostgreSQL and SQLite).
    """

    def __init__(self, operator, head: LedgerHead, actor, context: RowContext, stack: ExitStack):
        self.operator = operator
        self.head = head
        self.context = context
        self.actor_id = actor.pk if actor is not None else None
        self.copy = None
        if connection.vendor == "postgresql":
            from psycopg.copy import QueuedLibpqWriter

            # The driver's own cursor: Django's debug wrapper does not pass `writer` on.
            cursor = stack.enter_context(connection.cursor()).cursor
            writer = QueuedLibpqWriter(cursor)
            writer._queue = Queue(maxsize=COPY_QUEUE_PIECES)  # bound the memory it may hold
            columns = ", ".join(COPY_COLUMNS)
            self.copy = stack.enter_context(
                cursor.copy(
                    f"COPY {ConsentEvent._meta.db_table} ({columns}) FROM STDIN",  # noqa: S608  constant names
                    writer=writer,
                )
            )

    def write_copy_lines(self, pieces: list[tuple[str, str, str]]) -> None:
        """Chain rows prepared as COPY lines and send them to the open COPY."""
        if not pieces:
            return
        seq, prev = self.head.last_seq, self.head.last_hash
        prefix = f"{self.operator.pk}{SEP}"
        sha256 = hashlib.sha256
        lines = []
        for head, middle, tail in pieces:
            seq += 1
            number = str(seq)
            digest = sha256((prev + prefix + number + SEP + tail).encode()).hexdigest()
            lines.append(f"{head}\t{number}\t{middle}\t{prev}\t{digest}")
            prev = digest
        lines.append("")
        self.copy.write("\n".join(lines).encode())
        self.head.last_seq, self.head.last_hash = seq, prev

    def write_rows(self, rows: list[Row]) -> None:
        """Chain rows and insert them with bulk_create (databases without COPY)."""
        if not rows:
            return
        seq, prev = self.head.last_seq, self.head.last_hash
        recorded_at = self.context.recorded_at
        actor_text = "" if self.actor_id is None else str(self.actor_id)
        recorded_micros = str(epoch_micros(recorded_at))
        stop_after = timedelta(hours=WITHDRAWAL_STOP_HOURS)
        events = []
        for row, record_id in zip(rows, record_ids(len(rows)), strict=True):
            seq += 1
            event_micros = epoch_micros(row.event_at)
            withdrawal = row.state == ConsentState.WITHDRAWN
            canonical = SEP.join((
                str(self.operator.pk), str(seq), record_id, row.index, row.purpose, str(row.version_id),
                row.state, row.method, row.actor, actor_text, str(event_micros), recorded_micros,
                str(epoch_micros(row.expires_at)) if row.expires_at is not None else "",
                str(event_micros + STOP_MICROS) if withdrawal else "", row.evidence_json, row.key,
            ))  # fmt: skip
            digest = hashlib.sha256((prev + canonical).encode()).hexdigest()
            events.append(
                ConsentEvent(
                    record_id=record_id, operator_id=self.operator.pk, seq=seq,
                    subject_identifier=row.subject,
                    subject_index=row.index, subject_digest=row.index, purpose_code=row.purpose,
                    policy_version_id=row.version_id, state=row.state, method=row.method,
                    actor_type=row.actor, recorded_by_id=self.actor_id, event_at=row.event_at,
                    recorded_at=recorded_at, expires_at=row.expires_at,
                    stop_processing_by=row.event_at + stop_after if withdrawal else None,
                    evidence=json.loads(row.evidence_json), import_key=row.key, prev_hash=prev, hash=digest,
                )
            )  # fmt: skip
            prev = digest
        ConsentEvent.objects.bulk_create(events, batch_size=500)
        self.head.last_seq, self.head.last_hash = seq, prev


def _existing_keys(operator, keys: list[int]) -> set[int]:
    """Return which of `keys` are already in the operator's ledger (index look-ups)."""
    found: set[int] = set()
    for i in range(0, len(keys), 500):
        batch = [uuid.UUID(int=k) for k in keys[i : i + 500]]
        found.update(
            key.int
            for key in ConsentEvent.objects.filter(operator=operator, import_key__in=batch).values_list(
                "import_key", flat=True
            )
        )
    return found


def sniff_delimiter(header_line: str) -> str:
    """Return the separator under which `header_line` names every required column (default ",")."""
    for delimiter in DELIMITERS:
        names = {h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter), [])}
        if names.issuperset(REQUIRED_COLUMNS):
            return delimiter
    return ","


def _separator_hint(header_line: str) -> str:
    """Return a sentence naming the separator a header seems to use, if it is not one we read."""
    counts = {c: header_line.count(c) for c in "|:^~#"}
    found = max(counts, key=counts.get)
    if counts[found] < len(REQUIRED_COLUMNS) - 1:
        return ""
    return " " + _(
        "The columns seem to be separated by “%(separator)s”; separate them with a comma, "
        "a semicolon or a tab."
    ) % {"separator": found}


def read_header(stream: BinaryIO) -> tuple[list[str], str]:
    """Read the header line; return the column names and the separator the file uses."""
    first = stream.readline()
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    try:
        text = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ImportFileError(_("The file is not a UTF-8 CSV file.")) from exc
    delimiter = sniff_delimiter(text)
    try:
        header = [h.strip().lower() for h in next(csv.reader([text], delimiter=delimiter), [])]
    except csv.Error as exc:
        raise ImportFileError(_("The file is not a UTF-8 CSV file.")) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            _("Missing column(s): %(columns)s. Expected: %(expected)s.")
            % {"columns": ", ".join(missing), "expected": ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}
            + _separator_hint(text)
        )
    return header, delimiter


class _Chunks:
    """Prepare the file's chunks in order: here, or in worker processes when there are any."""

    def __init__(self, context: RowContext, workers: int, stack: ExitStack):
        self.pool = None
        self.preparer = ChunkPreparer(context)
        if workers > 0:
            # Spawned, not forked: this process holds a database connection and, on
            # PostgreSQL, a COPY writer thread; workers need neither (nor Django).
            self.pool = stack.enter_context(
                ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=start_worker,
                    initargs=(context,),
                )
            )
        self.in_flight = 2 * workers

    def prepare(self, stream: BinaryIO, mode: str) -> Iterator[Chunk]:
        chunks = iter_chunks(stream, 2, CHUNK_BYTES)
        if self.pool is None:
            for data, line in chunks:
                yield self.preparer(data, line, mode)
            return
        pending: deque = deque()
        for data, line in chunks:
            pending.append(self.pool.submit(prepare_in_worker, data, line, mode))
            if len(pending) >= self.in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _keys_already_recorded(operator, chunks: _Chunks, open_stream: Callable[[], BinaryIO]) -> KeySet:
    """First pass: return the import keys of the file's rows that the ledger already holds.

    On PostgreSQL the file's keys are copied into a temporary table and joined with
    the ledger in one query: one look-up query per few hundred keys cost minutes for
    a large file. Elsewhere the keys are looked up in batches.
    """
    found = KeySet()
    with open_stream() as stream:
        read_header(stream)
        if connection.vendor != "postgresql":
            for chunk in chunks.prepare(stream, KEYS):
                found.update(_existing_keys(operator, chunk.keys))
                if chunk.unreadable:
                    break  # the main pass reports it, with its line number
            return found
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE consent_import_keys (import_key uuid) ON COMMIT DROP")
            with cursor.cursor.copy("COPY consent_import_keys FROM STDIN") as copy:
                for chunk in chunks.prepare(stream, KEYS):
                    copy.write("".join(f"{key:032x}\n" for key in chunk.keys).encode())
                    if chunk.unreadable:
                        break
            cursor.execute("ANALYZE consent_import_keys")
            cursor.execute(
                "SELECT e.import_key FROM consent_consentevent e "
                "JOIN consent_import_keys k ON k.import_key = e.import_key WHERE e.operator_id = %s",
                [operator.pk],
            )
            while batch := cursor.fetchmany(10_000):
                found.update(key.int for (key,) in batch)
            cursor.execute("DROP TABLE consent_import_keys")
    return found


def run_import(
    *,
    operator,
    actor,
    open_stream: Callable[[], BinaryIO],
    head: LedgerHead | None,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> ImportResult:
    """Validate every row of a consent CSV and, given a chain head and no row failed, import it.

    `open_stream` returns the file, opened anew (called once, or twice when the
    operator has imported before). `head` is the operator's chain head, locked by the
    caller in the enclosing transaction (None: validate only). `workers` > 0 prepares
    chunks in that many processes (PostgreSQL; worth it from about 100,000 rows).
    Errors carry the line number in the file (the header is line 1); with any error
    nothing is imported.
    """
    result = ImportResult()
    with open_stream() as stream:
        header, delimiter = read_header(stream)
    copy = head is not None and connection.vendor == "postgresql"
    context = row_context(operator, header=header, delimiter=delimiter, actor=actor, encrypt=copy)
    validator = _Validator(context)
    mode = COPY_LINES if copy else ROWS
    # Keys of the rows seen so far: a row repeated within the file is not doubled.
    seen = KeySet()

    # Nothing created here is cyclic; the collector's passes would only cost time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with transaction.atomic(), ExitStack() as pool_stack:
            chunks = _Chunks(context, workers if copy else 0, pool_stack)
            any_imported = ConsentEvent.objects.filter(operator=operator, import_key__isnull=False).exists()
            known = _keys_already_recorded(operator, chunks, open_stream) if any_imported else KeySet()
            with ExitStack() as stack:
                writer = _Writer(operator, head, actor, context, stack) if head is not None else None
                stream = stack.enter_context(open_stream())
                read_header(stream)
                for chunk in chunks.prepare(stream, mode):
                    result.rows += chunk.rows
                    for line, fields in chunk.bad:
                        result.add_errors(validator.explain(line, fields))
                    fresh = []
                    for key, prepared in zip(chunk.keys, chunk.prepared or chunk.keys, strict=True):
                        if key in known or not seen.add(key):
                            result.skipped += 1
                            continue
                        fresh.append(prepared)
                    if chunk.unreadable:
                        line, error = chunk.unreadable
                        result.add_errors(
                            [RowError(line, "", _("Unreadable CSV: %(error)s") % {"error": error})]
                        )
                    if writer is not None and not result.error_count:
                        if copy:
                            writer.write_copy_lines(fresh)
                        else:
                            writer.write_rows(fresh)
                        result.imported += len(fresh)
                    if progress is not None:
                        progress(chunk.rows)
                    if chunk.unreadable:
                        break
                if result.rows == 0:
                    result.add_errors([RowError(1, "", _("The file has no rows."))])
            # The COPY is finished here, before anything else uses the connection.
            if writer is not None and result.error_count:
                result.imported = 0
                transaction.set_rollback(True)
            elif writer is not None:
                save_head(writer.head)
                result.committed = True
                # One signed, witnessed checkpoint per import, once it is committed.
                transaction.on_commit(partial(checkpoint_after_import, operator_id=operator.pk))
    finally:
        if gc_was_enabled:
            gc.enable()
    return result


def import_secret(operator) -> bytes:
    """Return the operator's import key (created on first use), which survives key rotation."""
    found, _created = ImportSecret.objects.get_or_create(
        operator=operator, defaults={"secret": secrets.token_urlsafe(32)}
    )
    return found.secret.encode()


def file_digest(*, operator, source: str | bytes) -> str:
    """Return the keyed digest identifying a file's content (recognises a re-import).

    `source` is the content, or the path of a file on disk.
    """
    mac = hmac.new(import_secret(operator), b"consent-file:", hashlib.sha256)
    if isinstance(source, bytes | bytearray):
        mac.update(source)
    else:
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                mac.update(chunk)
    return mac.hexdigest()


def open_bytes(data: bytes) -> Callable[[], BinaryIO]:
    """Return an `open_stream` for a file held in memory."""
    return lambda: io.BytesIO(data)
