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


# IPv6 ranges that carry an IPv4 address a translator or tunnel may deliver to.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
SIIT_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 ::ffff:0:a.b.c.d
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, /48 layout of RFC 6052


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Return the IPv4 addresses an IPv6 address embeds (mapped, translated, NAT64, 6to4, Teredo).

    A NAT64 gateway, a 6to4 relay or a Teredo relay would carry the request on to
    that IPv4 address, so each must pass the same policy as the IPv4 address itself.
    """
    found: list[ipaddress.IPv4Address] = []
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    # :: and ::1 are IPv4-compatible in form only; they are refused as themselves.
    translated = address in SIIT_TRANSLATED or address in NAT64_WELL_KNOWN
    if translated or (address in IPV4_COMPATIBLE and value > 1):
        found.append(low32)
    elif address in NAT64_LOCAL_USE:
        # /48 prefix: IPv4 octets 1-2 in bits 48-63, bits 64-71 are zero, octets 3-4 in bits 72-87.
        high = (value >> 64) & 0xFFFF
        low = (value >> 40) & 0xFFFF
        found.append(ipaddress.IPv4Address((high << 16) | low))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client); the client's bits are de-obfuscated
    return found


def check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Raise UnsafeURL for a private, loopback, link-local or metadata address not allowed by settings.

    An IPv6 address that embeds IPv4 addresses is refused if any of them is.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        for inner in embedded:
            check_address(inner)
        if address.ipv4_mapped is not None:
            return  # the mapped IPv4 address is the destination, and it passed
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
