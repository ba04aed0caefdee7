"""Celery tasks of the consent ledger: thin wrappers around services."""

from celery import shared_task

from . import ledger


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_ledgers_task() -> int:
    """Beat: sign and witness a checkpoint of every consent ledger that grew since its last one."""
    return ledger.checkpoint_ledgers()
