"""Celery tasks of the alert pipeline: thin wrappers that take ids and call one service.

The top layer: services and notices publish these by name and never import this module.
"""

from celery import shared_task

from . import notices, services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_task(delivery_id: int) -> None:
    """Send one delivery; schedule its retry if the send failed transiently."""
    retry_in = services.deliver(delivery_id=delivery_id)
    services.schedule_retry(delivery_id=delivery_id, retry_in=retry_in)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_notice_task(notice_id: int) -> None:
    """Send one e-mail to people; schedule its retry if the send failed temporarily."""
    retry_in = notices.send_notice(notice_id=notice_id)
    notices.schedule_retry(notice_id=notice_id, retry_in=retry_in)


@shared_task(acks_late=True, ignore_result=True)
def sweep_deliveries_task() -> None:
    """Re-enqueue overdue deliveries and notices, free those of dead workers (beat task)."""
    services.sweep_deliveries()
    notices.sweep_notices()


@shared_task(acks_late=True, ignore_result=True)
def purge_sent_notices_task() -> int:
    """Beat: delete e-mails to people sent longer than NOTICE_RETENTION_DAYS ago."""
    return notices.purge_sent_notices()
