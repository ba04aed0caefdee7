"""Celery tasks for incidents: thin wrappers around services."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def send_deadline_reminders_task() -> dict[str, int]:
    """Beat: send every deadline reminder and overdue notice that is due and not yet sent."""
    return services.send_due_reminders()
