"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error has `type`, `title`, `status` and `detail`; validation errors add
`errors`, a map of field name to messages (the web forms' messages, in the
caller's language), with `non_field_errors` for what concerns the whole request.
"""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from incidents.services import TransitionRefused

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/api/docs/#problem-"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource has changed since you read it (If-Match does not match its ETag)."
    default_code = "precondition_failed"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


def problem(
    *, status_code: int, detail: str, code: str, errors: dict | None = None, headers=None
) -> Response:
    """Return a problem+json response."""
    body = {
        "type": f"{PROBLEM_BASE}{code}",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _as_lists(detail, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail to {"field": [...], "events.3.state": [...]}."""
    if isinstance(detail, dict):
        items = detail.items()
    elif isinstance(detail, list) and any(isinstance(d, dict | list) for d in detail):
        items = ((str(i), d) for i, d in enumerate(detail) if d)
    else:
        messages = [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]
        return {prefix or "non_field_errors": messages}
    flat: dict[str, list[str]] = {}
    for key, value in items:
        name = str(key) if not prefix else prefix if key == "non_field_errors" else f"{prefix}.{key}"
        flat.update(_as_lists(value, name))
    return flat


def problem_exception_handler(exc, context):
    """Turn DRF's and the services' exceptions into problem details; anything else stays a 500."""
    if isinstance(exc, TransitionRefused):
        return problem(status_code=409, detail=" ".join(exc.messages), code="conflict")
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return problem(
            status_code=400, detail=_("The request is not valid; see errors."), code="invalid", errors=errors
        )
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            status_code=response.status_code,
            detail=_("The request is not valid; see errors."),
            code="invalid",
            errors=_as_lists(exc.detail),
            headers=headers,
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code
    return problem(status_code=response.status_code, detail=str(detail), code=code, headers=headers)
