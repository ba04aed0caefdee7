"""Import services: upload, check, confirm and import a file; the command-line import.

The row-level work (reading, validating, chaining, writing) is `consent.importer`;
this module is the layer above it: staging uploaded files (Fernet-encrypted),
recognising files imported before, recording each import and its audit events.

A web upload never holds a web worker: the request stores the file and returns;
a Celery worker checks it (`import_validate`) and, once confirmed, imports it
(`import_commit`), storing its progress for the page to show. Every successful
import, from the web or the command line, ends in `_import_succeeded`.
"""

import csv
import io
import logging
import time

from celery import current_app
from cryptography.fernet import InvalidToken
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from portal.audit.services import record
from portal.crypto import file_fernet

from .importer import (
    ImportFileError,
    ImportResult,
    file_digest,
    open_bytes,
    read_header,
    run_import,
    sniff_delimiter,
)
from .models import ConsentImport, ImportStatus
from .services import lock_head, mask_identifier

logger = logging.getLogger(__name__)


def _unexpected_error() -> str:
    return _("The import stopped on an unexpected error; nothing was imported. Upload the file again.")


# Web uploads are checked (by a worker) and previewed before they are committed;
# larger files go through `manage.py import_consents`.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# One quick retry when publishing a task, then give up rather than hold the request.
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def previous_import(*, operator, digest: str) -> ConsentImport | None:
    """Return the committed import of the file with this digest, if there is one."""
    return (
        ConsentImport.objects.for_operator(operator)
        .filter(file_digest=digest, status=ImportStatus.COMMITTED)
        .first()
    )


def _errors(result: ImportResult) -> list[dict]:
    return [{"row": e.row, "column": e.column, "reason": e.reason} for e in result.errors]


def _import_succeeded(*, consent_import: ConsentImport, result: ImportResult, actor, request=None) -> None:
    """Record a committed import and audit it (inside the import's transaction).

    The one place every successful import ends, from the web or the command line.
    """
    consent_import.status = ImportStatus.COMMITTED
    consent_import.row_count = result.rows
    consent_import.imported_count = result.imported
    consent_import.skipped_count = result.skipped
    consent_import.error_count = 0
    consent_import.errors = []
    consent_import.committed_at = timezone.now()
    consent_import.save()
    _audit_commit(consent_import=consent_import, result=result, actor=actor, request=request)


def _audit_commit(*, consent_import: ConsentImport, result: ImportResult, actor, request=None) -> None:
    record(
        action="consent.import.commit",
        actor=actor,
        operator=consent_import.operator,
        target=consent_import,
        changes={
            "rows": result.rows,
            "imported": result.imported,
            "skipped": result.skipped,
            "errors": result.error_count,
        },
        request=request,
    )


class _Progress:
    """Count rows done and store the count, at most twice a second, where other sessions see it.

    During the import itself the work runs in one long transaction, which would hide
    the count until the end: on PostgreSQL the count is then written through a
    second, autocommitting connection (the import's transaction never touches the
    import's row before the end, so the two never wait for each other). On SQLite
    the count is shown only while the file is checked.
    """

    def __init__(self, import_id, *, inside_transaction: bool):
        self.import_id = import_id
        self.done = 0
        self.written_at = 0.0
        self.side = None
        self.enabled = True
        if inside_transaction:
            if connection.vendor == "postgresql":
                self.side = connections.create_connection(DEFAULT_DB_ALIAS)
            else:
                self.enabled = False

    def __call__(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.enabled and now - self.written_at >= 0.5:
            self.written_at = now
            if self.side is None:
                ConsentImport.objects.filter(pk=self.import_id).update(rows_done=self.done)
            else:
                with self.side.cursor() as cursor:
                    cursor.execute(
                        "UPDATE consent_consentimport SET rows_done = %s WHERE id = %s",
                        [self.done, self.import_id],
                    )

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def _publish(task_name: str, *args) -> None:
    """Queue a task by name once the transaction commits (tasks import this module, not the reverse).

    A broker that is down is logged, not raised: the upload is stored and the page says
    it is waiting; uploading again once the broker is back starts it.
    """

    def send() -> None:
        try:
            current_app.send_task(task_name, args=args, retry=True, retry_policy=RETRY_POLICY)
        except Exception as exc:  # any broker error: the page shows the import still waiting
            logger.warning("could not queue %s for import %s (%s)", task_name, args[0], type(exc).__name__)

    transaction.on_commit(send)


def import_upload(
    *, operator, actor, filename: str, data: bytes, request: HttpRequest | None = None
) -> ConsentImport:
    """Store an uploaded CSV (encrypted) and queue its check; return at once.

    Only what is quick is checked here: the size and the header. A file whose content
    was imported before is recognised and not stored again.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(_("The file is larger than 50 MB; use the import_consents command."))
    try:
        read_header(io.BytesIO(data))
    except ImportFileError as exc:
        raise ValidationError(str(exc)) from exc
    digest = file_digest(operator=operator, source=data)
    consent_import = ConsentImport(
        operator=operator, filename=filename[:200], file_digest=digest, created_by=actor
    )
    earlier = previous_import(operator=operator, digest=digest)
    if earlier is not None:
        consent_import.status = ImportStatus.DUPLICATE
        consent_import.row_count = earlier.row_count
        consent_import.save()
        return consent_import
    consent_import.status = ImportStatus.VALIDATING
    consent_import.rows_expected = max(data.count(b"\n") - 1, 1)
    with transaction.atomic():
        consent_import.save()
        path = consent_import.staging_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_fernet().encrypt(data))
        record(
            action="consent.import.upload",
            actor=actor,
            operator=operator,
            target=consent_import,
            changes={"bytes": len(data)},
            request=request,
        )
        _publish("consent.tasks.import_validate_task", str(consent_import.pk), get_language())
    return consent_import


def _refuse(consent_import: ConsentImport, errors: list[dict], error_count: int, **fields) -> None:
    """Mark an import refused, keep its errors, and delete its staged file."""
    ConsentImport.objects.filter(pk=consent_import.pk).update(
        status=ImportStatus.FAILED, errors=errors, error_count=error_count, **fields
    )
    consent_import.staging_path.unlink(missing_ok=True)


def _refuse_because(consent_import: ConsentImport, reason: str, *, row: int = 0) -> None:
    _refuse(consent_import, [{"row": row, "column": "", "reason": reason}], 1)


def import_validate(*, import_id) -> None:
    """Check every row of a staged upload; it then waits for confirmation, or is refused.

    Nothing is written to the ledger here. Run by a worker (`import_validate_task`).
    """
    consent_import = (
        ConsentImport.objects.select_related("operator", "created_by").filter(pk=import_id).first()
    )
    if consent_import is None or consent_import.status != ImportStatus.VALIDATING:
        return  # done already (a redelivered task)
    progress = _Progress(consent_import.pk, inside_transaction=False)
    try:
        data = file_fernet().decrypt(consent_import.staging_path.read_bytes())
        result = run_import(
            operator=consent_import.operator,
            actor=consent_import.created_by,
            open_stream=open_bytes(data),
            head=None,
            progress=progress,
        )
    except ImportFileError as exc:
        _refuse_because(consent_import, str(exc), row=1)
        return
    except (FileNotFoundError, InvalidToken):
        _refuse_because(consent_import, _("The uploaded file is no longer available; upload it again."))
        return
    except Exception:
        _refuse_because(consent_import, _unexpected_error())
        raise
    fields = {"row_count": result.rows, "rows_done": result.rows, "skipped_count": result.skipped}
    if result.ok:
        ConsentImport.objects.filter(pk=consent_import.pk).update(status=ImportStatus.PREVIEWED, **fields)
    else:
        _refuse(consent_import, _errors(result), result.error_count, **fields)
    record(
        action="consent.import.preview",
        actor=consent_import.created_by,
        operator=consent_import.operator,
        target=consent_import,
        changes={"rows": result.rows, "errors": result.error_count},
    )


def preview_sample(consent_import: ConsentImport, *, limit: int = 10) -> list[dict]:
    """Return the first rows of a staged file, with identifiers masked."""
    path = consent_import.staging_path
    if consent_import.status != ImportStatus.PREVIEWED or not path.exists():
        return []
    text = file_fernet().decrypt(path.read_bytes()).decode("utf-8-sig")
    rows = []
    delimiter = sniff_delimiter(text.split("\n", 1)[0])
    for raw in csv.DictReader(io.StringIO(text), delimiter=delimiter):
        raw = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        raw["subject_id"] = mask_identifier(raw.get("subject_id", ""))
        rows.append(raw)
        if len(rows) >= limit:
            break
    return rows


def import_confirm(
    *, consent_import: ConsentImport, actor, request: HttpRequest | None = None
) -> ConsentImport:
    """Queue the import of a checked file; a second confirmation changes nothing.

    The conditional update claims the import, so two clicks (or two people) queue it once.
    """
    with transaction.atomic():
        claimed = ConsentImport.objects.filter(pk=consent_import.pk, status=ImportStatus.PREVIEWED).update(
            status=ImportStatus.IMPORTING, rows_done=0
        )
        if not claimed:
            raise ValidationError(_("This import is not waiting for confirmation."))
        record(
            action="consent.import.confirm",
            actor=actor,
            operator=consent_import.operator,
            target=consent_import,
            request=request,
        )
        _publish(
            "consent.tasks.import_commit_task",
            str(consent_import.pk),
            actor.pk if actor else None,
            get_language(),
        )
    consent_import.refresh_from_db()
    return consent_import


def import_commit(*, import_id, actor_id: int | None) -> None:
    """Import a confirmed file into the ledger, all or nothing. Run by a worker (`import_commit_task`).

    The operator's chain head lock serialises imports; the import's status is read
    again under it, so a redelivered task finds the import done and does nothing.
    """
    consent_import = ConsentImport.objects.select_related("operator").filter(pk=import_id).first()
    if consent_import is None or consent_import.status != ImportStatus.IMPORTING:
        return
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    path = consent_import.staging_path
    progress = _Progress(consent_import.pk, inside_transaction=True)
    try:
        data = file_fernet().decrypt(path.read_bytes())
        with transaction.atomic():
            head = lock_head(consent_import.operator)
            if ConsentImport.objects.filter(pk=import_id, status=ImportStatus.IMPORTING).exists():
                result = run_import(
                    operator=consent_import.operator,
                    actor=actor,
                    open_stream=open_bytes(data),
                    head=head,
                    progress=progress,
                )
                consent_import.refresh_from_db()
                if result.committed:
                    _import_succeeded(consent_import=consent_import, result=result, actor=actor)
                else:
                    _audit_commit(consent_import=consent_import, result=result, actor=actor)
                    transaction.on_commit(
                        lambda: _refuse(
                            consent_import, _errors(result), result.error_count, skipped_count=result.skipped
                        )
                    )
                transaction.on_commit(lambda: path.unlink(missing_ok=True))
    except (FileNotFoundError, InvalidToken):
        _refuse_because(consent_import, _("The uploaded file is no longer available; upload it again."))
    except Exception:
        # The import's transaction rolled back: nothing of it is in the ledger.
        _refuse_because(consent_import, _unexpected_error())
        raise
    finally:
        progress.close()


def import_file(*, operator, actor, path: str, filename: str, progress=None, workers: int = 0):
    """Import a CSV file from disk (the management command); return (ConsentImport, result).

    `workers` > 0 encrypts and indexes rows in that many processes (PostgreSQL).
    """
    digest = file_digest(operator=operator, source=path)
    earlier = previous_import(operator=operator, digest=digest)
    if earlier is not None:
        return earlier, None
    with transaction.atomic():
        result = run_import(
            operator=operator,
            actor=actor,
            open_stream=lambda: open(path, "rb"),  # noqa: SIM115  run_import closes it
            head=lock_head(operator),
            progress=progress,
            workers=workers,
        )
        consent_import = ConsentImport(
            operator=operator, filename=filename[:200], file_digest=digest, created_by=actor
        )
        if result.committed:
            _import_succeeded(consent_import=consent_import, result=result, actor=actor)
        else:
            consent_import.status = ImportStatus.FAILED
            consent_import.row_count = result.rows
            consent_import.skipped_count = result.skipped
            consent_import.error_count = result.error_count
            consent_import.errors = _errors(result)
            consent_import.save()
            _audit_commit(consent_import=consent_import, result=result, actor=actor)
    return consent_import, result
