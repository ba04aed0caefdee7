"""Celery tasks for consent: thin wrappers around services."""

from celery import shared_task

from . import ledger, withdrawals


@shared_task(acks_late=True, ignore_result=True)
def send_processing_stop_reminders_task() -> dict[str, int]:
    """Beat: send every stop-processing reminder and overdue notice that is due and not yet sent."""
    return withdrawals.send_processing_stop_reminders()


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_ledgers_task() -> int:
    """Beat: sign and witness a checkpoint of every consent ledger that grew since its last one."""
    return ledger.checkpoint_ledgers()
