"""Believe X-Forwarded-* headers only from the reverse proxies the deployment names.

A client can send any header it likes. `X-Forwarded-Proto` and `X-Forwarded-For` mean
something only when the connection comes from one of `TRUSTED_PROXY_NETWORKS`; from
anyone else they are removed before Django or django-axes read them. The client's
address is then taken `TRUSTED_PROXY_COUNT` entries from the right of
`X-Forwarded-For`: each proxy appends the address it was connected from, so entries
further left were written by the client and prove nothing.
"""

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST")


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def is_trusted_proxy(address: str | None) -> bool:
    """Return whether `address` (a peer's REMOTE_ADDR) is one of the configured proxies."""
    parsed = _parse(address or "")
    if parsed is None:
        return False
    return any(parsed in network for network in _networks(tuple(settings.TRUSTED_PROXY_NETWORKS)))


def client_address(request: HttpRequest) -> str | None:
    """Return the address of the client that sent `request`.

    With no proxy configured (TRUSTED_PROXY_COUNT = 0) that is REMOTE_ADDR. Behind N
    proxies it is the Nth address from the right of X-Forwarded-For; a request that
    did not pass through all of them (a shorter header) is taken at REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0 or not is_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return remote
    chosen = _parse(hops[-count])
    return str(chosen) if chosen is not None else remote


def axes_client_address(request: HttpRequest) -> str | None:
    """Give django-axes the same client address as everything else (AXES_CLIENT_IP_CALLABLE)."""
    return client_address(request)


class ForwardedHeadersMiddleware:
    """Drop X-Forwarded-* headers that did not come from a configured proxy.

    Runs first, so SecurityMiddleware's HTTPS redirect and HSTS (which trust
    SECURE_PROXY_SSL_HEADER) only ever see a header the proxy set.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)
