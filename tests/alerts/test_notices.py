"""E-mails to people go through an outbox: written with their change, sent by a worker, never lost."""

import smtplib
from datetime import timedelta

import pytest
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection, transaction
from django.utils import timezone

from portal.alerts import notices
from portal.alerts.models import Notice, NoticeStatus
from portal.audit.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.notice_queue]

ADDRESS = "reporter@acme.example"


@pytest.fixture
def queued(monkeypatch):
    """What was handed to the broker: (notice ids, countdown) per call."""
    calls: list[tuple[list[int], float | None]] = []

    def enqueue(*, notice_ids, countdown=None):
        calls.append((list(notice_ids), countdown))
        return len(notice_ids)

    monkeypatch.setattr(notices, "enqueue_notices", enqueue)
    return calls


@pytest.fixture
def mail_server(monkeypatch):
    """The test mail backend; each exception put in the returned list fails one send."""
    failures: list[Exception] = []
    deliver = EmailBackend.send_messages

    def send_messages(self, messages):
        if failures:
            raise failures.pop(0)
        return deliver(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
    return failures


def _message(subject: str = "INC-2026-0001: status changed") -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(subject=subject, body="Your incident is under review.", to=[ADDRESS])
    message.attach_alternative("<p>Your incident is under review.</p>", "text/html")
    return message


def _queue(operator=None) -> Notice:
    return notices.queue_email(_message(), template="incidents/status_changed", operator=operator)


def _due_now(notice: Notice) -> None:
    Notice.objects.filter(pk=notice.pk).update(next_attempt_at=timezone.now())


def test_a_notice_is_written_with_its_change_and_queued_by_id_when_it_commits(
    operator, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        notice = _queue(operator)
        assert queued == []  # nothing leaves before the commit
    assert queued == [([notice.pk], None)]
    notice.refresh_from_db()
    assert (notice.status, notice.operator, notice.to) == (NoticeStatus.PENDING, operator, [ADDRESS])


def test_a_message_with_parts_a_notice_cannot_keep_is_refused():
    message = _message()
    message.attach("report.pdf", b"%PDF-1.7", "application/pdf")
    with pytest.raises(ValueError, match="only"):
        notices.queue_email(message, template="incidents/status_changed")
    assert not Notice.objects.exists()


def test_a_rolled_back_change_leaves_no_notice_and_queues_nothing(queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        _queue()
        raise RuntimeError("the change failed")
    assert not Notice.objects.exists()
    assert queued == []


def test_the_worker_sends_it_once_with_its_text_and_html(mailoutbox):
    notice = _queue()
    assert notices.send_notice(notice_id=notice.pk) is None
    assert notices.send_notice(notice_id=notice.pk) is None  # a duplicate task sends nothing
    [mail] = mailoutbox
    assert (mail.to, mail.subject, mail.body) == ([ADDRESS], _message().subject, _message().body)
    assert mail.alternatives[0] == ("<p>Your incident is under review.</p>", "text/html")
    notice.refresh_from_db()
    assert (notice.status, notice.attempt_count, notice.last_error) == (NoticeStatus.SENT, 1, "")
    assert notice.sent_at is not None


def test_a_mail_server_that_is_down_only_delays_the_notice(mail_server, mailoutbox, queued):
    mail_server.append(ConnectionRefusedError())
    notice = _queue()
    retry_in = notices.send_notice(notice_id=notice.pk)
    notices.schedule_retry(notice_id=notice.pk, retry_in=retry_in)
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.PENDING and notice.attempt_count == 1
    assert notice.last_error == "sending failed: ConnectionRefusedError"
    assert notice.next_attempt_at > timezone.now() and mailoutbox == []
    assert queued[-1] == ([notice.pk], retry_in)  # the retry is queued with its backoff
    assert notices.send_notice(notice_id=notice.pk) is None  # not due yet: left alone
    _due_now(notice)
    notices.send_notice(notice_id=notice.pk)
    assert [m.to for m in mailoutbox] == [[ADDRESS]]
    notice.refresh_from_db()
    assert (notice.status, notice.attempt_count) == (NoticeStatus.SENT, 2)


def test_a_temporary_refusal_is_retried_and_a_permanent_one_fails_without_naming_the_address(mail_server):
    mail_server.append(smtplib.SMTPResponseException(451, b"try again later"))
    notice = _queue()
    notices.send_notice(notice_id=notice.pk)
    notice.refresh_from_db()
    assert (notice.status, notice.last_error) == (NoticeStatus.PENDING, "SMTP 451")
    mail_server.append(smtplib.SMTPRecipientsRefused({ADDRESS: (550, b"no such user here")}))
    _due_now(notice)
    assert notices.send_notice(notice_id=notice.pk) is None
    notice.refresh_from_db()
    assert (notice.status, notice.last_error) == (NoticeStatus.DEAD, "SMTP 550: recipients refused")


def test_the_last_attempt_marks_it_failed(mail_server, settings):
    settings.ALERTS_MAX_ATTEMPTS = 2
    mail_server.extend([TimeoutError(), TimeoutError()])
    notice = _queue()
    assert notices.send_notice(notice_id=notice.pk) is not None
    _due_now(notice)
    assert notices.send_notice(notice_id=notice.pk) is None
    notice.refresh_from_db()
    assert (notice.status, notice.attempt_count) == (NoticeStatus.DEAD, 2)


def test_the_sweeper_queues_notices_left_pending_and_frees_those_stuck_sending(queued, settings):
    long_ago = timezone.now() - timedelta(hours=1)
    lost = _queue()  # its task never reached the broker
    stuck = _queue()  # its worker died mid-send
    fresh = _queue()  # its task is still on its way
    Notice.objects.filter(pk=lost.pk).update(next_attempt_at=long_ago)
    Notice.objects.filter(pk=stuck.pk).update(status=NoticeStatus.SENDING, claimed_at=long_ago)
    assert notices.sweep_notices() == 2
    assert sorted(queued[-1][0]) == sorted([lost.pk, stuck.pk])
    assert Notice.objects.get(pk=stuck.pk).status == NoticeStatus.PENDING
    assert Notice.objects.get(pk=fresh.pk).status == NoticeStatus.PENDING
    assert notices.sweep_notices() == 0  # queued again: left alone for another grace period


def test_recipients_and_text_are_encrypted_at_rest():
    notice = _queue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT recipients, subject, text, html FROM alerts_notice WHERE id = %s", [notice.pk])
        raw = " ".join(str(bytes(v) if isinstance(v, memoryview) else v) for v in cursor.fetchone())
    for plain in (ADDRESS, "INC-2026-0001", "under review"):
        assert plain not in raw


def test_a_failed_notice_is_listed_for_bssn_and_its_retry_sends_it(
    staff_client, analyst, queued, operator, django_capture_on_commit_callbacks
):
    failed, sent = _queue(operator), _queue(operator)
    Notice.objects.filter(pk=failed.pk).update(
        status=NoticeStatus.DEAD, attempt_count=15, last_error="SMTP 550"
    )
    Notice.objects.filter(pk=sent.pk).update(status=NoticeStatus.SENT)
    client = staff_client(analyst)
    listing = client.get("/admin/alerts/notice/?status__exact=dead")
    assert [n.pk for n in listing.context["cl"].result_list] == [failed.pk]
    assert ADDRESS.encode() not in listing.content  # the list shows no addresses
    assert client.get(f"/admin/alerts/notice/{failed.pk}/change/").status_code == 200
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/alerts/notice/", {"action": "retry", "_selected_action": [failed.pk]})
    assert response.status_code == 302 and queued == [([failed.pk], None)]
    failed.refresh_from_db()
    assert (failed.status, failed.last_error) == (NoticeStatus.PENDING, "")
    assert AuditEvent.objects.filter(action="alerts.notice_retry", actor=analyst).count() == 1


def test_sent_notices_are_deleted_after_the_retention_period_and_the_rest_kept(settings):
    settings.NOTICE_RETENTION_DAYS = 30
    now = timezone.now()
    old_sent, recent_sent, old_failed, old_pending = (_queue() for _ in range(4))
    Notice.objects.filter(pk=old_sent.pk).update(status=NoticeStatus.SENT, sent_at=now - timedelta(days=31))
    Notice.objects.filter(pk=recent_sent.pk).update(
        status=NoticeStatus.SENT, sent_at=now - timedelta(days=29)
    )
    Notice.objects.filter(pk__in=[old_failed.pk, old_pending.pk]).update(created_at=now - timedelta(days=90))
    Notice.objects.filter(pk=old_failed.pk).update(status=NoticeStatus.DEAD)
    assert notices.purge_sent_notices(now=now) == 1
    assert sorted(Notice.objects.values_list("pk", flat=True)) == sorted(
        [recent_sent.pk, old_failed.pk, old_pending.pk]
    )
    [event] = AuditEvent.objects.filter(action="alerts.notice_purge")
    assert event.changes == {"deleted": 1, "retention_days": 30}
    assert notices.purge_sent_notices(now=now) == 0  # a doubled run deletes nothing more
    assert AuditEvent.objects.filter(action="alerts.notice_purge").count() == 1
