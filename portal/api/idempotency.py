"""`Idempotency-Key` on POST: a retry gets the first response, never a second object.

The key's row is inserted in the same transaction as the request's own writes,
before they run. A concurrent retry's insert waits on the unique index until the
first request commits, then finds the row and replays its response; if the first
rolled back, the retry runs afresh. Errors are not stored (the request changed
nothing, so a corrected retry with the same key may run).
"""

import hashlib
from datetime import datetime, timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .models import IdempotentRequest
from .problems import IdempotencyKeyReused

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Location", "ETag")


def request_fingerprint(request) -> str:
    """Hash what makes two requests "the same": method, path and body bytes."""
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0" + request.path.encode() + b"\0")
    if request.content_type.startswith("multipart/"):
        # Uploads may exceed what Django keeps in memory as `body`: hash the parsed parts.
        for name in sorted(request.data.keys()):
            for value in request.data.getlist(name):
                digest.update(name.encode() + b"=")
                if hasattr(value, "chunks"):
                    for chunk in value.chunks():
                        digest.update(chunk)
                    value.seek(0)
                else:
                    digest.update(str(value).encode())
                digest.update(b"\0")
    else:
        digest.update(request._request.body)
    return digest.hexdigest()


def purge_idempotent_requests(*, now: datetime | None = None) -> int:
    """Delete stored responses older than API_IDEMPOTENCY_HOURS; a later retry runs afresh."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _by_model = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _replay(stored: IdempotentRequest) -> Response:
    response = Response(stored.response_body, status=stored.status_code)
    for name, value in stored.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def idempotent(handler):
    """Decorate a view's `post`: honour the Idempotency-Key header when sent."""

    @wraps(handler)
    def wrapped(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key.strip() or len(key) > 255:
            raise ValidationError({HEADER: [_("Send an Idempotency-Key of 1 to 255 characters.")]})
        operator = request.auth.operator
        fingerprint = request_fingerprint(request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotentRequest.objects.create(
                        operator=operator, key=key, request_hash=fingerprint
                    )
            except IntegrityError:
                stored = IdempotentRequest.objects.get(operator=operator, key=key)
                if stored.request_hash != fingerprint:
                    raise IdempotencyKeyReused(
                        _("This Idempotency-Key was already used with a different request.")
                    ) from None
                return _replay(stored)
            response = handler(view, request, *args, **kwargs)
            if response.status_code >= status.HTTP_400_BAD_REQUEST:
                transaction.set_rollback(True)
                return response
            record.status_code = response.status_code
            record.response_body = response.data
            record.response_headers = {h: response[h] for h in KEPT_HEADERS if h in response}
            record.save(update_fields=["status_code", "response_body", "response_headers"])
        return response

    return wrapped
