"""A Celery worker keeps its database connection from one task to the next.

Celery's Django fix-up closes every connection around every task unless told
otherwise; on PostgreSQL that is a new server process per delivered alert. (SQLite's
in-memory test database is never closed, so these tests need PostgreSQL.)
"""

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from portal.alerts.tasks import deliver_task
from portal.celery import _close_old_connections, app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _run_task_lifecycle(fixup: DjangoWorkerFixup) -> None:
    """Fire what a worker fires around one task: the fix-up's handlers and the portal's."""
    fixup.on_task_prerun(sender=deliver_task)
    _close_old_connections(sender=deliver_task)
    connection.ensure_connection()  # the task's own queries
    fixup.on_task_postrun(sender=deliver_task)
    _close_old_connections(sender=deliver_task)


def test_the_connection_survives_a_task(settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):
        _run_task_lifecycle(DjangoWorkerFixup(app))
    assert connection.connection is opened


def test_a_connection_past_its_age_is_closed_after_a_task(settings):
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = 0  # as if CONN_MAX_AGE had passed
    fixup = DjangoWorkerFixup(app)
    fixup.on_task_postrun(sender=deliver_task)
    _close_old_connections(sender=deliver_task)
    assert connection.connection is None
