"""Bulk import of consent events from CSV: streamed, validated, all-or-nothing, idempotent.

The file is streamed in batches inside one transaction. While no row has failed,
each batch is encrypted, hash-chained (under the operator's chain head lock, taken
once per import) and written: on PostgreSQL into one `COPY` kept open for the whole
import, fed by a writer thread so the server inserts while Python prepares the next
batch; elsewhere with bulk_create. Any bad row makes the whole import roll back, and
the rest of the file is still validated so every error is reported at once.

A row's import key is a keyed hash of its content. A row already in the ledger, or
repeated within the file, is recognised and skipped instead of doubled. When the
operator has imported before, a first pass over the file looks its keys up (the
ledger cannot be queried while a `COPY` is open on the connection).
"""

import csv
import gc
import hashlib
import hmac
import io
import itertools
import json
import os
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

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
    epoch_micros,
)

# Separators a CSV file may use: spreadsheets set to Indonesian (or most European)
# settings save with a semicolon, because the comma is their decimal mark.
DELIMITERS = (",", ";", "\t")
REQUIRED_COLUMNS = ("subject_id", "purpose", "state", "event_time", "method", "policy_version")
OPTIONAL_COLUMNS = ("actor", "expires_at", "evidence")
BATCH_SIZE = 5000
MAX_REPORTED_ERRORS = 1000
MAX_IDENTIFIER_LENGTH = 200
MAX_EVIDENCE_LENGTH = 500
# Event times a little in the future are clock skew between systems, not errors.
FUTURE_TOLERANCE = timedelta(minutes=10)
STOP_MICROS = WITHDRAWAL_STOP_HOURS * 3600 * 1_000_000
SEP = "\x1f"

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


@dataclass(slots=True)
class _Row:
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


def _parse_time(value: str, tz) -> datetime | None:
    """Return an ISO 8601 time as UTC (a time without offset is in `tz`), or None if invalid."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


class _Validator:
    """Turn one CSV row into a _Row, or into the errors that explain why not."""

    def __init__(self, operator, header: list[str], secret: bytes):
        self.tz = ZoneInfo(operator.timezone)
        self.latest_allowed = timezone.now() + FUTURE_TOLERANCE
        self.versions: dict[str, tuple[int, frozenset[str]]] = {}
        for version in PolicyVersion.objects.for_operator(operator).exclude(status=PolicyStatus.DRAFT):
            self.versions[str(version.number)] = (version.pk, frozenset(version.purpose_codes()))
        self.states = frozenset(ConsentState.values)
        self.methods = frozenset(CollectionMethod.values)
        self.actors = frozenset(ActorType.values)
        # Keyed once; each value then costs one copy of the prepared HMAC state.
        self.index_mac = hmac.new(settings.BLIND_INDEX_KEY.encode(), b"identifier:", hashlib.sha256)
        self.row_mac = hmac.new(secret, b"consent-row:", hashlib.sha256)
        position = {name: i for i, name in enumerate(header)}
        self.columns = [position.get(c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        self.width = len(header)

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

    def validate(self, line: int, fields: list[str]) -> _Row | list[RowError] | None:
        """Return the row, its errors, or None for a blank line."""
        if len(fields) != self.width:
            if not any(f.strip() for f in fields):
                return None
            return [
                RowError(line, "", _("The row has %(found)s fields; the header has %(expected)s.")
                         % {"found": len(fields), "expected": self.width})
            ]  # fmt: skip
        subject, purpose, state, event_time, method, version_no, actor, expires, evidence = (
            "" if i is None else fields[i].strip() for i in self.columns
        )
        state, method, actor = state.lower(), method.lower(), actor.lower() or ActorType.SUBJECT
        version = self.versions.get(version_no)
        event_at = _parse_time(event_time, self.tz)
        expires_at = _parse_time(expires, self.tz) if expires else None
        if (
            subject
            and len(subject) <= MAX_IDENTIFIER_LENGTH
            and version is not None
            and purpose in version[1]
            and state in self.states
            and method in self.methods
            and actor in self.actors
            and event_at is not None
            and event_at <= self.latest_allowed
            and (not expires or (expires_at is not None and expires_at > event_at))
            and len(evidence) <= MAX_EVIDENCE_LENGTH
        ):
            key = self.row_key(
                (subject, purpose, state, event_time, method, actor, version_no, expires, evidence)
            )
            # Evidence JSON written out directly: the same text as models.canonical_json
            # gives for {"reference": evidence} (tested), at a fraction of the cost.
            return _Row(
                subject, self.subject_index(subject), purpose, state, method, actor, version[0], event_at,
                expires_at, '{"reference":' + encode_basestring(evidence) + "}" if evidence else "{}", key,
            )  # fmt: skip
        return self._explain(line, subject, purpose, state, method, version_no, version, actor, event_at,
                             expires, expires_at, evidence)  # fmt: skip

    def _explain(self, line, subject, purpose, state, method, version_no, version, actor, event_at,
                 expires, expires_at, evidence) -> list[RowError]:  # fmt: skip
        """Return every reason a row was refused (the slow path, only for bad rows)."""
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
        if state not in self.states:
            add("state", _("Unknown state %(value)s; use one of: %(choices)s.")
                % {"value": state[:30] or "—", "choices": ", ".join(ConsentState.values)})  # fmt: skip
        if method not in self.methods:
            add("method", _("Unknown method %(value)s; use one of: %(choices)s.")
                % {"value": method[:30] or "—", "choices": ", ".join(CollectionMethod.values)})  # fmt: skip
        if actor not in self.actors:
            add("actor", _("Unknown actor %(value)s; use one of: %(choices)s.")
                % {"value": actor[:30], "choices": ", ".join(ActorType.values)})  # fmt: skip
        if event_at is None:
            add("event_time", iso_hint)
        elif event_at > self.latest_allowed:
            add("event_time", _("The event time is in the future."))
        if expires and expires_at is None:
            add("expires_at", iso_hint)
        elif expires_at is not None and event_at is not None and expires_at <= event_at:
            add("expires_at", _("The expiry must be after the event time."))
        if len(evidence) > MAX_EVIDENCE_LENGTH:
            add("evidence", _("The evidence is longer than 500 characters."))
        return errors


def _record_ids(count: int) -> list[str]:
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


def _copy_text(value: str) -> str:
    """Escape a value for PostgreSQL's COPY text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Writer:
    """Chain, encrypt and insert batches of validated rows for one operator.

    The canonical text built here must equal `ConsentEvent.canonical()` of the stored
    row (verify_ledger recomputes it; the tests check an imported chain verifies).
    """

    def __init__(self, operator, head: LedgerHead, actor, stack: ExitStack):
        self.operator = operator
        self.head = head
        self.actor_id = actor.pk if actor is not None else None
        self.recorded_at = timezone.now()
        # The key fernet_fields encrypts with (the first of FERNET_KEYS, HKDF-derived).
        # The field's own Fernet (first key of FERNET_KEYS, derived as fernet_fields does).
        self.fernet = ConsentEvent._meta.get_field("subject_identifier").fernet
        self.copy = None
        if connection.vendor == "postgresql":
            from psycopg.copy import QueuedLibpqWriter

            # The driver's own cursor: Django's debug wrapper does not pass `writer` on.
            cursor = stack.enter_context(connection.cursor()).cursor
            columns = ", ".join(COPY_COLUMNS)
            self.copy = stack.enter_context(
                cursor.copy(
                    f"COPY {ConsentEvent._meta.db_table} ({columns}) FROM STDIN",  # noqa: S608  constant names
                    writer=QueuedLibpqWriter(cursor),
                )
            )

    def write(self, rows: list[_Row]) -> None:
        if not rows:
            return
        seq, prev = self.head.last_seq, self.head.last_hash
        operator_id, recorded_at = self.operator.pk, self.recorded_at
        # Everything of the canonical text that is the same for the whole import.
        actor_text = "" if self.actor_id is None else str(self.actor_id)
        recorded_micros = str(epoch_micros(recorded_at))
        withdrawn = ConsentState.WITHDRAWN
        sha256 = hashlib.sha256
        chained = []
        for row, record_id in zip(rows, _record_ids(len(rows)), strict=True):
            seq += 1
            event_micros = epoch_micros(row.event_at)
            stop_micros = str(event_micros + STOP_MICROS) if row.state == withdrawn else ""
            expires_micros = str(epoch_micros(row.expires_at)) if row.expires_at is not None else ""
            canonical = SEP.join((
                str(operator_id), str(seq), record_id, row.index, row.purpose, str(row.version_id),
                row.state, row.method, row.actor, actor_text, str(event_micros), recorded_micros,
                expires_micros, stop_micros, row.evidence_json, row.key,
            ))  # fmt: skip
            digest = sha256((prev + canonical).encode()).hexdigest()
            chained.append((record_id, seq, row, prev, digest))
            prev = digest
        if self.copy is not None:
            self._copy(chained)
        else:
            self._bulk_create(chained)
        self.head.last_seq, self.head.last_hash = seq, prev

    def _copy(self, chained) -> None:
        encrypt = self.fernet.encrypt
        tokens = [encrypt(row.subject.encode()) for _, _, row, _, _ in chained]
        operator_id = str(self.operator.pk)
        actor_id = "\\N" if self.actor_id is None else str(self.actor_id)
        recorded_at = self.recorded_at.isoformat()
        stop_after = timedelta(hours=WITHDRAWAL_STOP_HOURS)
        withdrawn = ConsentState.WITHDRAWN
        lines = []
        for (record_id, seq, row, prev, digest), token in zip(chained, tokens, strict=True):
            # The Fernet token (URL-safe base64 bytes) goes to the bytea column as \x hex.
            token = "\\\\x" + token.hex()
            lines.append("\t".join((
                record_id, operator_id, str(seq), token, row.index, row.index, row.purpose,
                str(row.version_id), row.state, row.method, row.actor, actor_id, row.event_at.isoformat(),
                recorded_at,
                row.expires_at.isoformat() if row.expires_at is not None else "\\N",
                (row.event_at + stop_after).isoformat() if row.state == withdrawn else "\\N",
                _copy_text(row.evidence_json), row.key, prev, digest,
            )))  # fmt: skip
        lines.append("")
        self.copy.write("\n".join(lines).encode())

    def _bulk_create(self, chained) -> None:
        stop_after = timedelta(hours=WITHDRAWAL_STOP_HOURS)
        events = [
            ConsentEvent(
                record_id=record_id, operator_id=self.operator.pk, seq=seq, subject_identifier=row.subject,
                subject_index=row.index, subject_digest=row.index, purpose_code=row.purpose,
                policy_version_id=row.version_id,
                state=row.state, method=row.method, actor_type=row.actor, recorded_by_id=self.actor_id,
                event_at=row.event_at, recorded_at=self.recorded_at, expires_at=row.expires_at,
                stop_processing_by=row.event_at + stop_after if row.state == ConsentState.WITHDRAWN else None,
                evidence=json.loads(row.evidence_json), import_key=row.key, prev_hash=prev, hash=digest,
            )
            for record_id, seq, row, prev, digest in chained
        ]  # fmt: skip
        ConsentEvent.objects.bulk_create(events, batch_size=500)


def _existing_keys(operator, keys: list[str]) -> set[str]:
    """Return which of `keys` are already in the operator's ledger (index look-ups)."""
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        found.update(
            str(key)
            for key in ConsentEvent.objects.filter(
                operator=operator, import_key__in=keys[i : i + 500]
            ).values_list("import_key", flat=True)
        )
    return found


def text_lines(stream: io.BufferedIOBase) -> Iterable[str]:
    """Decode a binary stream as UTF-8 (a byte-order mark is ignored), line by line."""
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


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


def _reader(lines: Iterable[str]) -> tuple[Iterable[list[str]], list[str]]:
    lines = iter(lines)
    try:
        first = next(lines, "")
    except UnicodeDecodeError as exc:
        raise ImportFileError(_("The file is not a UTF-8 CSV file.")) from exc
    reader = csv.reader(itertools.chain([first], lines), delimiter=sniff_delimiter(first))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFileError(_("The file is not a UTF-8 CSV file.")) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            _("Missing column(s): %(columns)s. Expected: %(expected)s.")
            % {"columns": ", ".join(missing), "expected": ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}
            + _separator_hint(first)
        )
    return reader, header


def _keys_already_recorded(operator, open_lines: Callable[[], Iterable[str]]) -> set[str]:
    """First pass: return the import keys of the file's rows that the ledger already holds."""
    reader, header = _reader(open_lines())
    validator = _Validator(operator, header, import_secret(operator))
    found: set[str] = set()
    batch: list[str] = []
    try:
        for fields in reader:
            outcome = validator.validate(reader.line_num, fields)
            if isinstance(outcome, _Row):
                batch.append(outcome.key)
                if len(batch) >= BATCH_SIZE:
                    found |= _existing_keys(operator, batch)
                    batch = []
    except (csv.Error, UnicodeDecodeError):
        pass  # the main pass reports it, with its line number
    if batch:
        found |= _existing_keys(operator, batch)
    return found


def run_import(
    *,
    operator,
    actor,
    open_lines: Callable[[], Iterable[str]],
    head: LedgerHead | None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate every row of a consent CSV and, given a chain head and no row failed, import it.

    `head` is the operator's chain head, locked by the caller in the enclosing
    transaction (None: validate only).

    `open_lines` returns a fresh iterator over the file's lines (called once, or
    twice when the operator has imported before). Errors carry the line number in
    the file (the header is line 1); with any error nothing is imported.
    """
    result = ImportResult()
    any_imported = ConsentEvent.objects.filter(operator=operator, import_key__isnull=False).exists()
    known = _keys_already_recorded(operator, open_lines) if any_imported else set()
    reader, header = _reader(open_lines())
    validator = _Validator(operator, header, import_secret(operator))
    # Keys (as 128-bit integers, compact) of the rows seen so far: a row repeated
    # within the file is not doubled.
    seen: set[int] = set()

    def flush(batch: list[_Row]) -> None:
        fresh = []
        for r in batch:
            number = int(r.key.replace("-", ""), 16)
            if number in seen or r.key in known:
                result.skipped += 1
                continue
            seen.add(number)
            fresh.append(r)
        if writer is not None and not result.error_count:
            writer.write(fresh)
            result.imported += len(fresh)
        if progress is not None:
            progress(len(batch))

    # Nothing created here is cyclic; the collector's passes would only cost time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with transaction.atomic(), ExitStack() as stack:
            writer = _Writer(operator, head, actor, stack) if head is not None else None
            batch: list[_Row] = []
            try:
                for fields in reader:
                    outcome = validator.validate(reader.line_num, fields)
                    if outcome is None:
                        continue
                    result.rows += 1
                    if isinstance(outcome, list):
                        result.add_errors(outcome)
                        continue
                    batch.append(outcome)
                    if len(batch) >= BATCH_SIZE:
                        flush(batch)
                        batch = []
                flush(batch)
            except (csv.Error, UnicodeDecodeError) as exc:
                result.add_errors(
                    [RowError(reader.line_num, "", _("Unreadable CSV: %(error)s") % {"error": exc})]
                )
            if result.rows == 0:
                result.add_errors([RowError(1, "", _("The file has no rows."))])
            stack.close()  # finish the COPY before anything else uses the connection
            if writer is not None and result.error_count:
                result.imported = 0
                transaction.set_rollback(True)
            elif writer is not None:
                LedgerHead.objects.filter(pk=writer.head.pk).update(
                    last_seq=writer.head.last_seq, last_hash=writer.head.last_hash
                )
                result.committed = True
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
