"""Publishing the tasks of outbox rows (alert deliveries, e-mails to people)."""

import logging

logger = logging.getLogger(__name__)

# One quick retry, then give up: the row stays pending and the sweeper publishes it later,
# rather than holding a web request while the broker is down.
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def publish(task, ids: list[int], *, countdown: float | None = None, what: str) -> int:
    """Publish `task(id)` for each id; return how many were published.

    A broker that is down is logged, not raised: the rows stay pending and the sweeper
    publishes them once the broker is back.
    """
    published = 0
    for row_id in ids:
        try:
            task.apply_async((row_id,), countdown=countdown, retry=True, retry_policy=RETRY_POLICY)
        except Exception as exc:  # any broker error: the sweeper is the safety net
            logger.warning(
                "could not enqueue %s %s (%s); the sweeper will retry", what, row_id, type(exc).__name__
            )
            break
        published += 1
    return published
