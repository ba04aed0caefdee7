"""Celery tasks of the API: thin wrappers around its services."""

from celery import shared_task

from .idempotency import purge_idempotent_requests


@shared_task(acks_late=True, ignore_result=True)
def purge_idempotent_requests_task() -> int:
    """Beat: forget Idempotency-Key responses past their keeping time."""
    return purge_idempotent_requests()
