"""Celery tasks of the audit log: thin wrappers around services."""

from celery import shared_task

from . import checkpoints


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_audit_task() -> int:
    """Beat: sign and witness a checkpoint of every audit chain that grew since its last one."""
    return checkpoints.checkpoint_audit_streams()
