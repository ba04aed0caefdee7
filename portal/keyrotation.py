"""Re-encrypt every encrypted column under the first key and recompute blind indexes.

Encrypted columns are found by introspection (every `fernet_fields.EncryptedField`).
Blind indexes are declared on their model as
`BLIND_INDEXES = {"index_field": ("source_field", Kind.X)}`, or with a third element
naming a field whose value prefixes the source (`"<prefix>:<source>"`), for indexes
scoped to an organisation. Rows are processed in
primary-key order, in batches, each batch in its own transaction; a checkpoint per
(model, target keys) lets an interrupted run resume where it stopped. Append-only
tables (PostgreSQL trigger `<table>_append_only`) are rewritten with the trigger
disabled inside the batch's transaction only: key rotation is the one sanctioned
rewrite of their ciphertext, and hash chains cover plaintext-derived content, not
ciphertext.

Encrypted files are declared by their model with a classmethod `encrypted_files()`
returning their paths; `rotate_files` re-encrypts each under the first key.
"""

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from fernet_fields import EncryptedField

from portal.crypto import blind_index, file_fernet


@dataclass(frozen=True)
class Target:
    model: type[models.Model]
    encrypted: tuple[str, ...]
    indexes: dict  # index field -> (source field, Kind)

    @property
    def label(self) -> str:
        return self.model._meta.label


def targets() -> list[Target]:
    """Return every concrete model with encrypted columns or blind indexes."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        encrypted = tuple(f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedField))
        indexes = dict(getattr(model, "BLIND_INDEXES", {}))
        if encrypted or indexes:
            found.append(Target(model, encrypted, indexes))
    return sorted(found, key=lambda t: t.label)


def run_fingerprint() -> str:
    """Identify the target keys, so a checkpoint only resumes the same rotation."""
    material = f"{settings.FERNET_KEYS[0]}|{settings.BLIND_INDEX_KEY}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def reset_field_caches() -> None:
    """Forget keys cached on field instances (settings may have changed in-process)."""
    for target in targets():
        for name in target.encrypted:
            field = target.model._meta.get_field(name)
            for attr in ("keys", "fernet_keys", "fernet"):
                field.__dict__.pop(attr, None)


def _append_only(table: str) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", [f"{table}_append_only"])
        return cursor.fetchone() is not None


def _rewrite_batch(target: Target, rows: list[dict]) -> None:
    meta = target.model._meta
    table = meta.db_table
    columns = [*target.encrypted, *target.indexes]
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(meta.get_field(c).column)} = %s" for c in columns)
    # Identifiers come from model metadata, never from input; values are parameters.
    sql = f"UPDATE {qn(table)} SET {assignments} WHERE {qn(meta.pk.column)} = %s"  # noqa: S608
    params = []
    for row in rows:
        values = []
        for name in target.encrypted:
            field = meta.get_field(name)
            values.append(field.get_db_prep_save(row[name], connection))
        for source, kind, *prefix in target.indexes.values():
            source_value = row[source]
            if source_value in (None, ""):
                values.append("")
                continue
            if prefix:
                source_value = f"{row[prefix[0]]}:{source_value}"
            values.append(blind_index(kind, source_value))
        params.append([*values, meta.pk.get_db_prep_value(row["pk"], connection)])
    guarded = _append_only(table)
    with transaction.atomic(), connection.cursor() as cursor:
        if guarded:
            cursor.execute(f"ALTER TABLE {qn(table)} DISABLE TRIGGER {qn(table + '_append_only')}")
        cursor.executemany(sql, params)
        if guarded:
            cursor.execute(f"ALTER TABLE {qn(table)} ENABLE TRIGGER {qn(table + '_append_only')}")


def rotate(
    *, batch_size: int = 500, progress: Callable[[Target, int], None] | None = None
) -> Iterator[tuple[Target, int]]:
    """Rotate every target; yield (target, rows rewritten) per model when it is done."""
    from portal.accounts.models import KeyRotationCheckpoint

    fingerprint = run_fingerprint()
    reset_field_caches()
    for target in targets():
        checkpoint, _ = KeyRotationCheckpoint.objects.get_or_create(
            model_label=target.label, fingerprint=fingerprint
        )
        if checkpoint.finished_at is not None:
            yield target, 0
            continue
        sources = {field for spec in target.indexes.values() for field in (spec[0], *spec[2:])}
        fields = sorted(set(target.encrypted) | sources)
        done = 0
        queryset = target.model._base_manager.order_by("pk")
        while True:
            remaining = queryset
            if checkpoint.last_pk:
                remaining = queryset.filter(pk__gt=target.model._meta.pk.to_python(checkpoint.last_pk))
            batch = list(remaining.values("pk", *fields)[:batch_size])
            if not batch:
                break
            _rewrite_batch(target, batch)
            checkpoint.last_pk = str(batch[-1]["pk"])
            checkpoint.rows_done += len(batch)
            checkpoint.save(update_fields=["last_pk", "rows_done"])
            done += len(batch)
            if progress is not None:
                progress(target, len(batch))
        checkpoint.mark_finished()
        yield target, done


def rotate_files() -> tuple[int, int]:
    """Re-encrypt every declared encrypted file under the first key; return (rotated, unreadable).

    Each file is replaced atomically (write beside it, then rename), so a reader sees
    the old or the new token, both readable while the old key is still listed. A file
    already under the first key is rewritten again: harmless, and it keeps a rerun simple.
    A file no listed key opens is left as it is and counted: it was lost before this run.
    """
    cipher = file_fernet()
    done = unreadable = 0
    for model in apps.get_models():
        for path in getattr(model, "encrypted_files", list)():
            try:
                token = path.read_bytes()
            except FileNotFoundError:
                continue  # imported or refused meanwhile
            try:
                rotated = cipher.rotate(token)
            except InvalidToken:
                unreadable += 1
                continue
            fresh = path.with_name(path.name + ".rotating")
            fresh.write_bytes(rotated)
            os.replace(fresh, path)
            done += 1
    return done, unreadable
