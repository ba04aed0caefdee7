"""What the two outboxes (alert deliveries, e-mails to people) share.

Each outbox row is pending, then sending under a claim (a lease its worker renews, see
`lease.py`), then done or dead (`models.OutboxQuerySet`). Here: publishing a row's task,
the retry backoff, the sweeper's pass, and the admin's "retry a dead row". Each row's task
is published by task name with its id only (this module and the services never import
`tasks.py`, the top layer); `enqueue(ids, countdown)` is the outbox's own publishing
function.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from portal.audit.services import record

from .models import OutboxQuerySet

logger = logging.getLogger(__name__)

Enqueue = Callable[[list[int], float | None], int]

# Queues: webhooks and e-mail are served by separate worker pools, so that endpoints that
# hang hold webhook slots only and e-mails never wait behind them (docs/operations.md).
WEBHOOK_QUEUE = "webhooks"
EMAIL_QUEUE = "email"

# After a failed publish, this process publishes nothing for a while: the rows stay
# pending for the sweeper, and no further web request pays a broker timeout meanwhile.
_broker_down_until = 0.0
_broker_lock = threading.Lock()


def _broker_resting() -> bool:
    return time.monotonic() < _broker_down_until


def _broker_failed() -> None:
    global _broker_down_until
    with _broker_lock:
        _broker_down_until = time.monotonic() + settings.ALERTS_PUBLISH_PAUSE


def publish(task_name: str, ids: list[int], *, countdown: float | None = None, queue: str, what: str) -> int:
    """Publish task `task_name(id)` on `queue` for each id; return how many were published.

    One try per message, bounded by the broker's socket timeouts (CELERY_BROKER_*): a
    broker that is down or frozen is logged, not raised, and not retried here; the rows
    stay pending and the sweeper publishes them once the broker is back. After a failure
    this process skips publishing for ALERTS_PUBLISH_PAUSE seconds, so that a committing
    request pays at most one timeout.
    """
    if not ids:
        return 0
    if _broker_resting():
        logger.info("broker recently unavailable: %s %s left to the sweeper", len(ids), what)
        return 0
    from celery import current_app

    published = 0
    for row_id in ids:
        try:
            # By name: a registered task keeps its own options (and eager mode); no import of tasks.py.
            current_app.signature(task_name, args=(row_id,)).apply_async(
                countdown=countdown, queue=queue, retry=False
            )
        except Exception as exc:  # any broker error: the sweeper is the safety net
            _broker_failed()
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
    """Re-enqueue rows pending past their time, and free those whose lease expired. Return the count.

    Pending past the grace period means the task was lost (broker down at commit
    time, message dropped); sending with an expired lease means the worker holding it
    died (its heartbeat stopped, `lease.py`). `release` are the fields a freed row also
    gets (a claim token to clear). Each row actually published has its `next_attempt_at`
    moved to now, so the next sweep leaves it alone for another grace period while its
    task is queued; a row that could not be published is tried again at the next sweep.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.ALERTS_PENDING_GRACE)
    freed = model.objects.stuck(now).update(
        status=OutboxQuerySet.PENDING, next_attempt_at=now - grace, **release
    )
    if freed:
        logger.warning("freed %s %s whose worker stopped renewing its lease", freed, what)
    ids = list(
        model.objects.due(now, grace=grace).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    published = enqueue(ids, None)
    if published == len(ids):
        # (After a partial failure none is moved: the published ones are only sent twice
        # to an idempotent task at the next sweep.)
        model.objects.filter(pk__in=ids, status=OutboxQuerySet.PENDING, next_attempt_at__lte=now).update(
            next_attempt_at=now
        )
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
