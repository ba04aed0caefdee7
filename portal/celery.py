"""The Celery application: configured from Django settings with the CELERY prefix."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """Treat each task as Django treats a request: close connections that are too old or broken.

    Celery's fix-up would close them all (CELERY_DB_REUSE_MAX is set so that it does
    not); this keeps them for CONN_MAX_AGE, and drops one that saw an error and no
    longer answers, so the next task reconnects.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
def _no_health_check_before_each_task(**kwargs) -> None:
    """In a worker, do not ping the database before every task (CONN_HEALTH_CHECKS).

    For a web request the ping is cheap next to the page; for a webhook delivery it is
    one round trip in four. Without it, a task that meets a dead connection (say, after
    a database restart) fails, the connection is dropped after that task, and the next
    one reconnects; the sweeper sends again any alert such a task left behind.
    """
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_HEALTH_CHECKS"] = False
