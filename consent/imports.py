"""Import services: upload and preview, confirm, and the command-line import of a file.

The row-level work (reading, validating, chaining, writing) is `consent.importer`;
this module is the layer above it: staging uploaded files (Fernet-encrypted),
recognising files imported before, recording each import and its audit events.
Every successful import ends in `_import_succeeded`.
"""

import csv
import io

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.services import record
from portal.crypto import file_fernet

from .importer import ImportFileError, ImportResult, file_digest, open_bytes, run_import, sniff_delimiter
from .models import ConsentImport, ImportStatus
from .services import lock_head, mask_identifier

# Web uploads are previewed in full before they are committed; larger files go
# through `manage.py import_consents`.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def previous_import(*, operator, digest: str) -> ConsentImport | None:
    """Return the committed import of the file with this digest, if there is one."""
    return (
        ConsentImport.objects.for_operator(operator)
        .filter(file_digest=digest, status=ImportStatus.COMMITTED)
        .first()
    )


def _import_from_bytes(*, operator, actor, data: bytes, write: bool) -> ImportResult:
    return run_import(
        operator=operator,
        actor=actor,
        open_stream=open_bytes(data),
        head=lock_head(operator) if write else None,
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


def preview_import(
    *, operator, actor, filename: str, data: bytes, request: HttpRequest | None = None
) -> ConsentImport:
    """Validate an uploaded CSV without importing it; stage it (encrypted) when it is valid.

    A file whose content was imported before is recognised and not staged again.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(_("The file is larger than 50 MB; use the import_consents command."))
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
    try:
        result = _import_from_bytes(operator=operator, actor=actor, data=data, write=False)
    except ImportFileError as exc:
        raise ValidationError(str(exc)) from exc
    consent_import.row_count = result.rows
    consent_import.skipped_count = result.skipped
    consent_import.error_count = result.error_count
    consent_import.errors = _errors(result)
    consent_import.status = ImportStatus.PREVIEWED if result.ok else ImportStatus.FAILED
    consent_import.save()
    if result.ok:
        path = consent_import.staging_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_fernet().encrypt(data))
    record(
        action="consent.import.preview",
        actor=actor,
        operator=operator,
        target=consent_import,
        changes={"rows": result.rows, "errors": result.error_count},
        request=request,
    )
    return consent_import


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


def commit_import(
    *, consent_import: ConsentImport, actor, request: HttpRequest | None = None
) -> ConsentImport:
    """Import a previewed file, all or nothing; a second confirmation changes nothing."""
    with transaction.atomic():
        locked = ConsentImport.objects.select_for_update().get(pk=consent_import.pk)
        if locked.status != ImportStatus.PREVIEWED:
            raise ValidationError(_("This import is not waiting for confirmation."))
        path = locked.staging_path
        data = file_fernet().decrypt(path.read_bytes())
        result = _import_from_bytes(operator=locked.operator, actor=actor, data=data, write=True)
        if result.committed:
            _import_succeeded(consent_import=locked, result=result, actor=actor, request=request)
        else:
            locked.status = ImportStatus.FAILED
            locked.error_count = result.error_count
            locked.errors = _errors(result)
            locked.skipped_count = result.skipped
            locked.save()
            _audit_commit(consent_import=locked, result=result, actor=actor, request=request)
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    return locked


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
