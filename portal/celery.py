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
    not); this keeps connections for CONN_MAX_AGE and health-checks them once per task.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
