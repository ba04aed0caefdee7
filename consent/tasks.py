"""Celery tasks for consent imports: thin wrappers around `consent.imports`.

Each runs in the language of the person who started it, so the errors it stores
read in that language. An import can take minutes: these tasks get a longer time
limit than the default.
"""

from celery import shared_task
from django.utils import translation

from . import imports

IMPORT_TIME_LIMIT = 60 * 60


@shared_task(
    acks_late=True, ignore_result=True, time_limit=IMPORT_TIME_LIMIT, soft_time_limit=IMPORT_TIME_LIMIT - 60
)
def import_validate_task(import_id: str, language: str | None = None) -> None:
    """Check every row of an uploaded file (nothing is written to the ledger)."""
    with translation.override(language):
        imports.import_validate(import_id=import_id)


@shared_task(
    acks_late=True, ignore_result=True, time_limit=IMPORT_TIME_LIMIT, soft_time_limit=IMPORT_TIME_LIMIT - 60
)
def import_commit_task(import_id: str, actor_id: int | None = None, language: str | None = None) -> None:
    """Import a confirmed file into the ledger, all or nothing."""
    with translation.override(language):
        imports.import_commit(import_id=import_id, actor_id=actor_id)
