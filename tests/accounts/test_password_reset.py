"""Password reset: the page does the same work for any address; a worker sends the link."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.accounts import tasks
from portal.accounts.models import PasswordResetRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch) -> list[tuple]:
    """Record what the reset page publishes to the broker (the boundary), instead of publishing."""
    jobs: list[tuple] = []
    monkeypatch.setattr(
        tasks.send_password_reset_task,
        "apply_async",
        lambda args=(), kwargs=None, **options: jobs.append(tuple(args)),
    )
    return jobs


def _shape(sql: str) -> str:
    # Values differ (the encrypted address, the id, the time); the statements must not.
    return re.sub(r"'[^']*'|\b\d+\b|\bs\d+_x\d+\b", "?", sql)


def _request_reset(client, email: str, django_capture_on_commit_callbacks) -> list[str]:
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:password_reset"), {"email": email})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password_reset_done")
    return [_shape(q["sql"]) for q in queries.captured_queries]


def test_known_and_unknown_addresses_do_the_same_work(
    client, reporter, published, mailoutbox, django_capture_on_commit_callbacks
):
    known = _request_reset(client, reporter.email, django_capture_on_commit_callbacks)
    unknown = _request_reset(client, "nobody@nowhere.example", django_capture_on_commit_callbacks)
    assert known == unknown and len(known) >= 1
    assert not any("accounts_user" in sql for sql in known)  # no account lookup in the request
    assert len(published) == 2  # one queued job each, carrying an id and no address
    assert all(len(args) == 1 and isinstance(args[0], int) for args in published)
    assert mailoutbox == []  # nothing is sent by the request itself


def test_the_worker_sends_a_working_link_to_a_known_address(
    client, reporter, published, mailoutbox, django_capture_on_commit_callbacks
):
    _request_reset(client, reporter.email.upper(), django_capture_on_commit_callbacks)
    [(request_id,)] = published
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_password_reset_task(request_id)  # what the worker runs
    [mail] = mailoutbox
    assert mail.to == [reporter.email]
    assert not PasswordResetRequest.objects.exists()  # the typed address is not kept
    link = next(line for line in mail.body.splitlines() if "/password-reset/" in line)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    response = client.get(path, follow=True)
    new = "a-much-longer-new-passphrase-7"
    client.post(response.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    reporter.refresh_from_db()
    assert reporter.check_password(new)


def test_the_worker_sends_nothing_for_an_unknown_address_or_twice(
    client, reporter, published, mailoutbox, django_capture_on_commit_callbacks
):
    _request_reset(client, "nobody@nowhere.example", django_capture_on_commit_callbacks)
    _request_reset(client, reporter.email, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        for (request_id,) in published + published:  # a redelivered task sends nothing more
            tasks.send_password_reset_task(request_id)
    assert [mail.to for mail in mailoutbox] == [[reporter.email]]


def test_the_link_comes_in_the_language_the_reset_was_asked_in(
    client, reporter, published, mailoutbox, django_capture_on_commit_callbacks
):
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    _request_reset(client, reporter.email, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_password_reset_task(published[0][0])
    assert "Reset your password" in mailoutbox[0].subject
