"""What the two outboxes (alert deliveries, e-mails to people) share.

Each outbox row is pending, then sending under a claim, then done or dead
(`models.OutboxQuerySet`). Here: publishing a row's task, the retry backoff, the
sweeper's pass, and the admin's "retry a dead row". Each row's task is published with
its id only; `enqueue(ids, countdown)` is the outbox's own publishing function.
"""

import logging
import random
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from portal.audit.services import record

from .models import OutboxQuerySet

logger = logging.getLogger(__name__)

Enqueue = Callable[[list[int], float | None], int]

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


def backoff_seconds(*, attempt: int, retry_after: float | None = None) -> float:
    """Return the wait before retry `attempt`: exponential, capped, jittered; honours Retry-After."""
    base = settings.ALERTS_BACKOFF_BASE * (2 ** max(0, attempt - 1))
    wait = min(settings.ALERTS_BACKOFF_CAP, base)
    # Jitter, not security: the standard generator is right here.
    wait = wait / 2 + random.uniform(0, wait / 2)  # noqa: S311 # nosec B311
    if retry_after is not None:
        wait = max(wait, min(retry_after, settings.ALERTS_RETRY_AFTER_CAP))
    return wait


def schedule_retry(enqueue: Enqueue, row_id: int, retry_in: float | None) -> None:
    """Enqueue a row's next try, unless there is none or it is too far off for a countdown.

    Long waits are left to the sweeper: a countdown held by a worker for hours would
    outlive the broker's visibility timeout and come back as a duplicate message.
    """
    if retry_in is not None and retry_in <= settings.ALERTS_MAX_COUNTDOWN:
        enqueue([row_id], retry_in)


def sweep(model: type[models.Model], enqueue: Enqueue, *, limit: int, what: str, **release) -> int:
    """Re-enqueue rows pending past their time, and free those stuck in sending. Return the count.

    Pending past the grace period means the task was lost (broker down at commit
    time, message dropped); sending past the stuck limit means the worker died mid-send.
    `release` are the fields a freed row also gets (a claim token to clear). Each swept
    row's `next_attempt_at` moves to now, so the next sweep leaves it alone for another
    grace period while its task is queued.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.ALERTS_PENDING_GRACE)
    freed = model.objects.stuck(now, after=timedelta(seconds=settings.ALERTS_STUCK_AFTER)).update(
        status=OutboxQuerySet.PENDING, next_attempt_at=now - grace, **release
    )
    if freed:
        logger.warning("freed %s %s stuck in sending", freed, what)
    ids = list(
        model.objects.due(now, grace=grace).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    model.objects.filter(pk__in=ids, status=OutboxQuerySet.PENDING).update(next_attempt_at=now)
    published = enqueue(ids, None)
    logger.info("sweeper re-enqueued %s of %s overdue %s", published, len(ids), what)
    return published


def retry_dead(row: models.Model, enqueue: Enqueue, *, action: str, actor, request, operator=None) -> bool:
    """Put a dead row back in the queue (admin action), audited; return whether it was dead."""
    dead, pending = OutboxQuerySet.DEAD, OutboxQuerySet.PENDING
    with transaction.atomic():
        updated = (
            type(row)
            .objects.filter(pk=row.pk, status=dead)
            .update(status=pending, next_attempt_at=timezone.now(), last_error="")
        )
        if updated:
            record(
                action=action,
                actor=actor,
                operator=operator,
                target=row,
                changes={"status": {"old": dead, "new": pending}},
                request=request,
            )
            transaction.on_commit(lambda: enqueue([row.pk], None), robust=True)
    return bool(updated)
