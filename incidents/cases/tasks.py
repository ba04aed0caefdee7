"""Celery tasks of the suspected-cases app."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def purge_expired_identities_task() -> int:
    """Purge identities past the retention period (idempotent: purged rows are skipped)."""
    return services.purge_expired_identities()
