"""Project-wide request and response rules: refuse unreadable input, mark private pages."""

import json
import logging
from collections.abc import Callable, Iterable

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.db import DataError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# Browser features no page of the portal uses; a page that is ever injected into still
# cannot reach them.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "sync-xhr",
        "usb",
        "xr-spatial-tracking",
    )
)


def _bad_request(request: HttpRequest) -> HttpResponse:
    """Return the 400: RFC 9457 problem details for the machine API, plain text elsewhere.

    Plain text: this answers before sessions and users exist, so no page template
    (which needs both) can be rendered here. The API documents every error as
    `application/problem+json`, so its clients get that even from this layer.
    """
    detail = _("The request could not be read. Go back, check what you entered and try again.")
    if request.path_info.startswith("/api/"):
        body = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": str(detail)}
        return HttpResponseBadRequest(json.dumps(body), content_type="application/problem+json")
    return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")


# Query keys that filter by year (the admin's date hierarchy and date filters use them).
YEAR_LOOKUPS = ("__year", "__iso_year")


def _is_calendar_year(value: str) -> bool:
    # A year Python's calendar cannot hold fails while the query is built, long after
    # the admin's own parameter checks.
    # len first: int() refuses a string of over 4,300 digits (and no year has five).
    return len(value) <= 4 and value.isascii() and value.isdigit() and 1 <= int(value) <= 9999


def _has_nul(values: Iterable[str]) -> bool:
    return any("\x00" in value for value in values)


class BadInputMiddleware:
    """Answer 400 to a request whose input no view can use, before any view sees it.

    - A form body Django cannot decode (a charset other than UTF-8, a broken multipart
      body) used to fail inside the CSRF check and again inside the error page, which
      answered an empty 500.
    - NUL characters in the path, a query or form key or value, a file name or a cookie:
      PostgreSQL refuses them in any text, so they reached the database as a DataError.
    - A year lookup (`created_at__year=99999`) outside Python's calendar.
    - As a last line, a DataError or OverflowError a view lets escape is a value the
      database or the calendar cannot hold: 400, logged with the path only.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            unreadable = self._unreadable(request)
        except (BadRequest, SuspiciousOperation, MultiPartParserError, UnicodeError, LookupError, ValueError):
            unreadable = True
        if unreadable:
            # Nothing further may read the body again (the error page would fail on it).
            request._mark_post_parse_error()
            return _bad_request(request)
        return self.get_response(request)

    @staticmethod
    def _unreadable(request: HttpRequest) -> bool:
        if "\x00" in request.path_info:
            return True
        for data in (request.GET, request.POST):
            if _has_nul(data.keys()) or _has_nul(v for _key, values in data.lists() for v in values):
                return True
        if _has_nul(request.COOKIES.keys()) or _has_nul(request.COOKIES.values()):
            return True
        if any(
            not _is_calendar_year(value) for key, value in request.GET.items() if key.endswith(YEAR_LOOKUPS)
        ):
            return True
        files = request.FILES
        return _has_nul(files.keys()) or _has_nul(f.name or "" for f in files.values())

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DataError | OverflowError):
            logger.warning(
                "Refused input the database could not hold on %s: %s", request.path, type(exception).__name__
            )
            return _bad_request(request)
        return None


class PrivateCacheMiddleware:
    """Keep signed-in pages out of every cache, and deny unused browser features everywhere.

    Any response to a signed-in user may hold that user's organisation's data (the
    dashboard, JSON exports, a consent receipt with the decrypted subject id), so it
    is `private, no-store` whatever the view set.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True, no_store=True)  # drops any "public"
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
