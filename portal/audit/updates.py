"""The one "compare fields, save, audit" step that every edit form's service shares."""

from collections.abc import Callable, Iterable, Mapping

from django.db import models, transaction
from django.http import HttpRequest

from .services import record


def apply_changes(
    instance: models.Model,
    data: Mapping,
    fields: Iterable[str],
    *,
    shown: Callable[[str, object], object] | None = None,
) -> dict[str, dict]:
    """Set each of `fields` present in `data` on `instance`; return the changes.

    The result maps each changed field to {"old": …, "new": …}.

    `shown(field, value)` turns a value into what the audit log keeps (mask a phone
    number, shorten a long text); by default the value itself.
    """
    shown = shown or (lambda _field, value: value)
    changes: dict[str, dict] = {}
    for field in fields:
        if field not in data:
            continue
        old, new = getattr(instance, field), data[field]
        if old != new:
            changes[field] = {"old": shown(field, old), "new": shown(field, new)}
            setattr(instance, field, new)
    return changes


def update_and_audit(
    *,
    instance: models.Model,
    data: Mapping,
    fields: Iterable[str],
    action: str,
    actor=None,
    operator=None,
    request: HttpRequest | None = None,
    shown: Callable[[str, object], object] | None = None,
) -> dict[str, dict]:
    """Apply the changed `fields`, then save and audit them in one transaction; return the changes.

    Nothing is saved or audited when nothing changed.
    """
    changes = apply_changes(instance, data, fields, shown=shown)
    if changes:
        with transaction.atomic():
            instance.save()
            record(
                action=action,
                actor=actor,
                operator=operator,
                target=instance,
                changes=changes,
                request=request,
            )
    return changes
