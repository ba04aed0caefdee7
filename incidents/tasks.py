"""Celery tasks for incidents: thin wrappers around services."""

from celery import shared_task

from . import services, summaries


@shared_task(acks_late=True, ignore_result=True)
def send_deadline_reminders_task() -> dict[str, int]:
    """Beat: send every deadline reminder and overdue notice that is due and not yet sent."""
    return services.send_due_reminders()


@shared_task(acks_late=True, ignore_result=True)
def purge_expired_evidence_task() -> int:
    """Beat: delete evidence files past the retention period after closing."""
    return services.purge_expired_evidence()


@shared_task(acks_late=True, ignore_result=True)
def refresh_dashboard_task() -> float | None:
    """Beat: recompute the dashboard's summary tables; return the seconds taken (None: one was running)."""
    state = summaries.refresh()
    return state.seconds if state else None
