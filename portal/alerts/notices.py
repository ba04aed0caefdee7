"""E-mails to people, through an outbox: written with the change they announce, sent by a worker.

    queue_email(message, template="incidents/status_changed", operator=incident.operator)

- Call it inside the transaction of the change it announces. The Notice row is part of
  that transaction; its task is enqueued when the transaction commits, with the notice
  id only (no address or text in the broker). Roll back and nothing is sent.
- A worker sends it through Django's e-mail backend (SMTP in production). A temporary
  failure (connection refused, timeout, an SMTP 4xx) is retried with the alerts'
  backoff; a permanent one (an SMTP 5xx) or the last attempt marks it failed, listed in
  the admin with a retry action. The sweeper re-enqueues notices left pending (broker
  down at commit) or whose worker stopped renewing its lease (killed mid-send).
- At least once: a worker killed between the mail server's acceptance and the record
  sends that e-mail again once the sweeper frees it.
- Errors are recorded as codes and exception names, never with an address.
"""

import json
import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal.audit.services import record

from . import lease, outbox
from .models import Notice, NoticeStatus
from .outbox import EMAIL_QUEUE, backoff_seconds, publish

logger = logging.getLogger(__name__)

# Published by name: tasks.py is the layer above this module, which never imports it.
SEND_NOTICE_TASK = "portal.alerts.tasks.send_notice_task"


def queue_email(message: EmailMultiAlternatives, *, template: str, operator=None) -> Notice:
    """Write `message` into the outbox in the caller's transaction; it is sent after commit.

    A notice keeps the recipients, subject, text and HTML part; anything else would be
    lost on the way, so it is refused.
    """
    if message.cc or message.bcc or message.reply_to or message.attachments or message.extra_headers:
        raise ValueError("a notice carries recipients, subject, text and an HTML part only")
    html = next((content for content, mimetype in message.alternatives if mimetype == "text/html"), "")
    notice = Notice.objects.create(
        template=template,
        operator=operator,
        recipients=json.dumps(list(message.to)),
        subject=message.subject,
        text=message.body,
        html=html,
    )
    transaction.on_commit(lambda: enqueue_notices(notice_ids=[notice.pk]), robust=True)
    return notice


def enqueue_notices(*, notice_ids: list[int], countdown: float | None = None) -> int:
    """Publish one send task per notice, on the e-mail queue; return how many were published."""
    return publish(SEND_NOTICE_TASK, notice_ids, countdown=countdown, queue=EMAIL_QUEUE, what="notice")


def _failure(exc: Exception) -> tuple[str, bool]:
    """Return (error without addresses, whether retrying could never help)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _message in exc.recipients.values()})
        return f"SMTP {'/'.join(map(str, codes))}: recipients refused", all(500 <= c < 600 for c in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}", 500 <= exc.smtp_code < 600
    return f"sending failed: {type(exc).__name__}", False


def send_notice(*, notice_id: int) -> float | None:
    """Claim a pending, due notice, send it, record the outcome; return seconds to the next try, or None."""
    now = timezone.now()
    claimed = Notice.objects.filter(
        pk=notice_id, status=NoticeStatus.PENDING, next_attempt_at__lte=now
    ).update(
        status=NoticeStatus.SENDING,
        claimed_at=now,
        leased_until=lease.expiry(now),
        attempt_count=F("attempt_count") + 1,
    )
    if not claimed:
        return None
    notice = Notice.objects.get(pk=notice_id)
    message = EmailMultiAlternatives(subject=notice.subject, body=notice.text, to=notice.to)
    if notice.html:
        message.attach_alternative(notice.html, "text/html")
    retry_in: float | None = None
    try:
        with lease.held(notices=[notice.pk]):
            message.send()
    except Exception as exc:  # whatever the backend raises is recorded, never lost
        error, permanent = _failure(exc)
        if permanent or notice.attempt_count >= settings.ALERTS_MAX_ATTEMPTS:
            fields = {"status": NoticeStatus.DEAD, "last_error": error}
        else:
            retry_in = backoff_seconds(attempt=notice.attempt_count)
            fields = {
                "status": NoticeStatus.PENDING,
                "last_error": error,
                "next_attempt_at": timezone.now() + timedelta(seconds=retry_in),
            }
        logger.info("notice %s attempt %s failed: %s", notice.pk, notice.attempt_count, error)
    else:
        fields = {"status": NoticeStatus.SENT, "sent_at": timezone.now(), "last_error": ""}
    # Only this claim may record: if the sweeper freed the notice meanwhile, the newer claim decides.
    still_ours = Notice.objects.filter(
        pk=notice.pk, status=NoticeStatus.SENDING, claimed_at=notice.claimed_at
    ).update(**fields)
    return retry_in if still_ours else None


def schedule_retry(*, notice_id: int, retry_in: float | None) -> None:
    """Enqueue the notice's next try (see `outbox.schedule_retry`)."""
    outbox.schedule_retry(_enqueue, notice_id, retry_in)


def _enqueue(ids: list[int], countdown: float | None) -> int:
    return enqueue_notices(notice_ids=ids, countdown=countdown)


def sweep_notices(*, limit: int = 1000) -> int:
    """Re-enqueue overdue notices and free stuck ones (see `outbox.sweep`); return the count."""
    return outbox.sweep(Notice, _enqueue, limit=limit, what="notices")


def purge_sent_notices(*, now=None) -> int:
    """Delete notices sent more than NOTICE_RETENTION_DAYS ago (recipients and text are personal data).

    Failed and pending ones stay: they are still work for a worker or for BSSN. One audit
    event per run that deleted something.
    """
    now = now or timezone.now()
    days = settings.NOTICE_RETENTION_DAYS
    with transaction.atomic():
        deleted, _per_model = Notice.objects.filter(
            status=NoticeStatus.SENT, sent_at__lte=now - timedelta(days=days)
        ).delete()
        if deleted:
            record(action="alerts.notice_purge", changes={"deleted": deleted, "retention_days": days})
    if deleted:
        logger.info("purged %d e-mails to people sent more than %d days ago", deleted, days)
    return deleted


def retry_notice(*, notice: Notice, actor=None, request=None) -> bool:
    """Put a failed notice back in the queue (admin action); return whether it had failed."""
    return outbox.retry_dead(
        notice, _enqueue, action="alerts.notice_retry", actor=actor, request=request, operator=notice.operator
    )
