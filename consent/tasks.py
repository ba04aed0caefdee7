"""Celery tasks for consent: thin wrappers around services.

The import tasks run in the language of the person who started the import, so the
errors they store read in that language; an import can take minutes, so they get a
longer time limit than the default.
"""

from celery import shared_task
from django.utils import translation

from . import imports, ledger, withdrawals

IMPORT_TIME_LIMIT = 60 * 60


@shared_task(acks_late=True, ignore_result=True)
def send_processing_stop_reminders_task() -> dict[str, int]:
    """Beat: send every stop-processing reminder and overdue notice that is due and not yet sent."""
    return withdrawals.send_processing_stop_reminders()


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_ledgers_task() -> int:
    """Beat: sign and witness a checkpoint of every consent ledger that grew since its last one."""
    return ledger.checkpoint_ledgers()


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
