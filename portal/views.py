"""Project-level views that belong to no domain app."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any driver error means "down"
        logger.warning("healthz: database check failed", exc_info=True)
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.HEALTHZ_BROKER_TIMEOUT)
        return True
    except Exception:  # kombu raises transport-specific errors
        logger.warning("healthz: broker check failed", exc_info=False)
        return False


@never_cache
@require_GET
def healthz(request):
    """Return the state of the database and of the broker; 503 when either is down."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "degraded",
        **{name: ("ok" if ok else "down") for name, ok in checks.items()},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def favicon(request):
    """Send browsers that ask for /favicon.ico (the admin, downloads, error pages) to the SVG icon."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


def checkpoint_keys(request):
    """Publish the public keys that sign checkpoints (current and earlier ones), for anyone."""
    from portal.transparency import public_keys_document

    response = JsonResponse(public_keys_document())
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response
