"""Observables (indicators of compromise): their kinds, and how a pasted value is checked and normalised.

One value has one spelling here, so that the same indicator reported by two operators
correlates: IPs in `ipaddress`'s compressed form, domains and URL hosts in punycode
(IDNA 2008 with UTS #46 mapping), URLs in a canonical form, hashes in lower case.
"""

import ipaddress
import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import idna
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


class ObservableKind(models.TextChoices):
    IPV4 = "ipv4", gettext_lazy("IPv4 address")
    IPV6 = "ipv6", gettext_lazy("IPv6 address")
    DOMAIN = "domain", gettext_lazy("Domain name")
    URL = "url", gettext_lazy("URL")
    EMAIL = "email", gettext_lazy("E-mail address")
    MD5 = "md5", "MD5"
    SHA1 = "sha1", "SHA-1"
    SHA256 = "sha256", "SHA-256"


HASH_LENGTHS = {ObservableKind.MD5: 32, ObservableKind.SHA1: 40, ObservableKind.SHA256: 64}
MAX_VALUE_LENGTH = 2048
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Characters left as they are in a canonical URL path or query (RFC 3986 unreserved + sub-delims + ":@/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def guess_kind(value: str) -> str:
    """Return the kind a pasted value most likely is (the form lets the user force one)."""
    value = value.strip()
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        pass
    else:
        return ObservableKind.IPV4 if address.version == 4 else ObservableKind.IPV6
    if _HEX.match(value):
        for kind, length in HASH_LENGTHS.items():
            if len(value) == length:
                return kind
    if "://" in value:
        return ObservableKind.URL
    if "@" in value:
        return ObservableKind.EMAIL
    return ObservableKind.DOMAIN


def normalise_domain(value: str) -> str:
    """Return `value` as a lower-case punycode host name, or raise ValidationError."""
    host = value.strip().rstrip(".")
    if not host or " " in host:
        raise ValidationError(_("“%(value)s” is not a domain name.") % {"value": value[:100]})
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise ValidationError(_("“%(value)s” is not a domain name.") % {"value": value[:100]}) from None
    labels = ascii_host.split(".")
    if len(labels) < 2 or len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(_("“%(value)s” is not a domain name.") % {"value": value[:100]})
    if labels[-1].isdigit():
        raise ValidationError(_("“%(value)s” is not a domain name.") % {"value": value[:100]})
    return ascii_host


def _normalise_ip(value: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        address = None
    if address is None or address.version != version:
        message = (
            _("“%(value)s” is not an IPv4 address.")
            if version == 4
            else _("“%(value)s” is not an IPv6 address.")
        )
        raise ValidationError(message % {"value": value[:100]})
    return address.compressed


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4: "/a/./b/../c" and "/a/c" name one resource.
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.endswith(("/.", "/..")):
        output.append("")
    return "/" + "/".join(output)


def _requote(text: str, safe: str) -> str:
    # Decode then encode again, so "%7e", "~" and "%7E" all end up as one spelling.
    return quote(unquote(text), safe=safe)


def normalise_url(value: str) -> str:
    """Return `value` in canonical form: scheme and host lower-case, punycode host, no default port
    nor fragment, path and query percent-encoded one way; raise ValidationError if it is no URL."""
    invalid = ValidationError(_("“%(value)s” is not a URL.") % {"value": value[:100]})
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise invalid from None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname or not re.match(r"^[a-z][a-z0-9+.-]*$", scheme):
        raise invalid
    hostname = parts.hostname
    try:
        host = f"[{ipaddress.IPv6Address(hostname).compressed}]"
    except ValueError:
        try:
            host = ipaddress.IPv4Address(hostname).compressed
        except ValueError:
            try:
                host = normalise_domain(hostname)
            except ValidationError:
                raise invalid from None
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    userinfo = ""
    if parts.username:
        userinfo = quote(unquote(parts.username), safe="") + "@"
    path = _requote(_remove_dot_segments(parts.path or "/"), _PATH_SAFE)
    query = _requote(parts.query, _QUERY_SAFE)
    return urlunsplit((scheme, userinfo + host, path, query, ""))


def normalise_email(value: str) -> str:
    """Return the address with a lower-case punycode domain (the local part is kept as written)."""
    value = value.strip()
    local, _at, domain = value.rpartition("@")
    invalid = ValidationError(_("“%(value)s” is not an e-mail address.") % {"value": value[:100]})
    if not local or not domain:
        raise invalid
    try:
        address = f"{local}@{normalise_domain(domain)}"
    except ValidationError:
        raise invalid from None
    try:
        EmailValidator()(address)
    except ValidationError:
        raise invalid from None
    return address


def normalise_hash(value: str, kind: str) -> str:
    value = value.strip()
    if not _HEX.match(value) or len(value) != HASH_LENGTHS[kind]:
        raise ValidationError(
            _("“%(value)s” is not a %(kind)s hash (%(length)d hexadecimal digits).")
            % {"value": value[:100], "kind": ObservableKind(kind).label, "length": HASH_LENGTHS[kind]}
        )
    return value.lower()


def normalise(kind: str, value: str) -> str:
    """Return the one spelling of `value` as an observable of `kind`; raise ValidationError if invalid."""
    result = _normalise(kind, value) if len(value) <= MAX_VALUE_LENGTH else value
    if len(result) > MAX_VALUE_LENGTH:
        raise ValidationError(_("The value is longer than %(max)d characters.") % {"max": MAX_VALUE_LENGTH})
    return result


def _normalise(kind: str, value: str) -> str:
    if kind == ObservableKind.IPV4:
        return _normalise_ip(value, 4)
    if kind == ObservableKind.IPV6:
        return _normalise_ip(value, 6)
    if kind == ObservableKind.DOMAIN:
        return normalise_domain(value)
    if kind == ObservableKind.URL:
        return normalise_url(value)
    if kind == ObservableKind.EMAIL:
        return normalise_email(value)
    if kind in HASH_LENGTHS:
        return normalise_hash(value, kind)
    raise ValidationError(_("Unknown kind of observable."))


def parse_lines(text: str, *, kind: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """Parse a bulk paste, one value per line; return (kind, normalised value) pairs and per-line errors.

    Blank lines and lines starting with "#" are skipped; duplicates within the paste are kept once.
    """
    entries: list[tuple[str, str]] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line_kind = kind or guess_kind(line)
        try:
            value = normalise(line_kind, line)
        except ValidationError as exc:
            errors.append(
                _("Line %(number)d: %(error)s") % {"number": number, "error": " ".join(exc.messages)}
            )
            continue
        if (line_kind, value) not in seen:
            seen.add((line_kind, value))
            entries.append((line_kind, value))
    return entries, errors
