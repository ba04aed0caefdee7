"""The SSRF guard: where a webhook may point, checked when it is saved and when it is sent."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

# Cloud metadata services, refused even if an allowed private network contains them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class UnsafeURL(ValueError):
    """The URL's scheme or address is not allowed for a webhook."""


def _allowed_networks() -> list:
    return [ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS]


def check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Raise UnsafeURL for a private, loopback, link-local or metadata address not allowed by settings."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        raise UnsafeURL(_("The address %(address)s is a cloud metadata service.") % {"address": address})
    if address.is_global and not address.is_multicast:
        return
    if any(address in network for network in _allowed_networks()):
        return
    raise UnsafeURL(
        _("The address %(address)s is private, loopback, link-local or reserved.") % {"address": address}
    )


def resolve(url: str) -> tuple[str, int, list[str]]:
    """Check the scheme, resolve the host and check every address; return (host, port, addresses).

    Every address the name resolves to must be allowed, so a name that resolves to a
    public and a private address is refused.
    """
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if settings.WEBHOOK_ALLOW_HTTP else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeURL(_("Webhook URLs must use HTTPS."))
    if not parts.hostname:
        raise UnsafeURL(_("The URL has no host."))
    if parts.username or parts.password:
        raise UnsafeURL(_("The URL must not contain a user name or password."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL(_("The URL has an invalid port.")) from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(_("The host %(host)s does not resolve.") % {"host": parts.hostname}) from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        check_address(address)
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UnsafeURL(_("The host %(host)s does not resolve.") % {"host": parts.hostname})
    return parts.hostname, port, addresses
