"""A Celery worker keeps its database connection from one task to the next.

Celery's Django fix-up closes every connection around every task unless told
otherwise; on PostgreSQL that is a new server process per delivered alert. (SQLite's
in-memory test database is never closed, so these tests need PostgreSQL.)
"""

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.alerts.tasks import deliver_task
from portal.celery import _close_old_connections, _no_health_check_before_each_task, app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def database_settings(settings, monkeypatch):
    """The default database's settings, put back as they were after each test."""
    database = settings.DATABASES["default"]
    monkeypatch.setitem(database, "CONN_MAX_AGE", 60)
    monkeypatch.setitem(database, "CONN_HEALTH_CHECKS", True)
    yield database
    connection.close()


def _run_task_lifecycle(fixup: DjangoWorkerFixup) -> None:
    """Fire what a worker fires around one task: the fix-up's handlers and the portal's."""
    fixup.on_task_prerun(sender=deliver_task)
    _close_old_connections(sender=deliver_task)
    connection.ensure_connection()  # the task's own queries
    fixup.on_task_postrun(sender=deliver_task)
    _close_old_connections(sender=deliver_task)


def test_the_connection_survives_a_task():
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):
        _run_task_lifecycle(DjangoWorkerFixup(app))
    assert connection.connection is opened


def test_a_connection_past_its_age_is_closed_after_a_task():
    connection.ensure_connection()
    connection.close_at = 0  # as if CONN_MAX_AGE had passed
    fixup = DjangoWorkerFixup(app)
    fixup.on_task_postrun(sender=deliver_task)
    _close_old_connections(sender=deliver_task)
    assert connection.connection is None


def test_a_worker_does_not_ping_the_database_before_each_task():
    _no_health_check_before_each_task()
    connection.close()
    connection.ensure_connection()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            _run_task_lifecycle(DjangoWorkerFixup(app))
            connection.cursor().execute("SELECT 2")  # the task's own query
    assert [q["sql"] for q in queries] == ["SELECT 2"] * 3


def test_a_dead_connection_is_dropped_after_the_task_that_met_it():
    _no_health_check_before_each_task()
    connection.close()
    connection.ensure_connection()
    connection.connection.close()  # as if the database had restarted
    with pytest.raises(Exception):  # noqa: B017, PT011 (whatever the driver raises)
        connection.cursor().execute("SELECT 1")
    _close_old_connections(sender=deliver_task)
    connection.cursor().execute("SELECT 1")  # the next task reconnects
