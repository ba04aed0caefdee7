"""How a delivery leaves the building: signed webhooks and e-mail.

Each transport's `send` returns a SendResult or raises TransportError; `permanent`
says whether a retry could ever help. Nothing here touches the database.
"""

import logging
import smtplib
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.utils import timezone, translation
from requests.adapters import HTTPAdapter

from . import signing
from .emails import render_email
from .models import Channel, ChannelKind, Delivery
from .ssrf import UnsafeURL, resolve

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429})
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass
class SendResult:
    status_code: int | None = None
    webhook_timestamp: int | None = None


class TransportError(Exception):
    """A send failed; `permanent` failures are not retried, `disable` turns the channel off."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
        disable: bool = False,
        webhook_timestamp: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent or disable
        self.status_code = status_code
        self.retry_after = retry_after
        self.disable = disable
        self.webhook_timestamp = webhook_timestamp


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a `Retry-After` header asks for (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


class _PinnedAdapter(HTTPAdapter):
    """Connect to the address the SSRF guard checked, while TLS still verifies the host name."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        hostname = getattr(request, "pinned_hostname", None)
        if hostname and host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per worker thread; created lazily so forked workers get their own.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxies from the environment: we connect to the checked address
        adapter = _PinnedAdapter(pool_connections=32, pool_maxsize=8, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _local.session = session
    return session


def _pinned_url(url: str, address: str) -> tuple[str, str]:
    """Return (url with the host replaced by `address`, Host header value)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


class WebhookTransport:
    """POST the alert's envelope, signed per Standard Webhooks v1, to the endpoint.

    One instance serves one send, or one short batch to the same channel: it resolves
    and checks each address once, and connects every send of it to that checked address.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._resolved: dict[str, tuple] = {}

    def _resolve(self, url: str) -> tuple:
        if url not in self._resolved:
            with translation.override("en"):  # attempt errors are a technical log, kept in English
                self._resolved[url] = resolve(url)
        return self._resolved[url]

    def send(self, delivery: Delivery) -> SendResult:
        body = delivery.alert.body.encode()
        try:
            hostname, _port, addresses = self._resolve(delivery.address)
        except UnsafeURL as exc:
            raise TransportError(f"refused: {exc}", permanent=True) from None
        signing_secrets = self.channel.signing_secrets()
        if not signing_secrets:
            raise TransportError("the endpoint has no signing secret", permanent=True)
        headers = signing.webhook_headers(signing_secrets, delivery.alert.webhook_id, body)
        timestamp = int(headers["webhook-timestamp"])
        url, headers["host"] = _pinned_url(delivery.address, addresses[0])
        headers["user-agent"] = "portal-insiden-webhooks/1"
        session = _session()
        prepared = session.prepare_request(requests.Request("POST", url, headers=headers, data=body))
        prepared.pinned_hostname = hostname
        try:
            response = session.send(
                prepared,
                timeout=(settings.ALERTS_CONNECT_TIMEOUT, settings.ALERTS_READ_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise TransportError("timed out", webhook_timestamp=timestamp) from None
        except requests.RequestException as exc:
            raise TransportError(
                f"connection failed: {type(exc).__name__}", webhook_timestamp=timestamp
            ) from None
        try:
            self._drain(response)
        except requests.RequestException:
            raise TransportError("reading the response failed", webhook_timestamp=timestamp) from None
        code = response.status_code
        if 200 <= code < 300:
            return SendResult(status_code=code, webhook_timestamp=timestamp)
        if code == 410:
            raise TransportError(
                "gone: endpoint disabled", status_code=code, disable=True, webhook_timestamp=timestamp
            )
        if code >= 500 or code in RETRYABLE_STATUS:
            raise TransportError(
                f"HTTP {code}",
                status_code=code,
                webhook_timestamp=timestamp,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if 300 <= code < 400:
            raise TransportError(
                f"HTTP {code}: redirects are not followed",
                status_code=code,
                permanent=True,
                webhook_timestamp=timestamp,
            )
        raise TransportError(f"HTTP {code}", status_code=code, permanent=True, webhook_timestamp=timestamp)

    @staticmethod
    def _drain(response: requests.Response) -> None:
        # Read a bounded amount so the keep-alive connection returns to the pool; a
        # receiver sending more than that only gets its connection closed.
        read = 0
        for chunk in response.iter_content(8192):
            read += len(chunk)
            if read > MAX_RESPONSE_BYTES:
                break
        response.close()


def _flatten(data, prefix: str = "") -> list[tuple[str, str]]:
    """Return (dotted key, text) pairs of a JSON document (the operator's list of disclosed fields)."""
    rows: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key in sorted(data):
            rows.extend(_flatten(data[key], f"{prefix}{key}."))
    elif isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        for index, value in enumerate(data):
            rows.extend(_flatten(value, f"{prefix}{index}."))
    else:
        text = (
            ", ".join(str(v) for v in data) if isinstance(data, list) else ("" if data is None else str(data))
        )
        rows.append((prefix.rstrip("."), text))
    return rows


# --- E-mails written for people ------------------------------------------------------


class EmailTransport:
    """Send the alert e-mail through the configured mailer (SMTP, or files under the embedded default)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, delivery: Delivery) -> SendResult:
        message = render_email(delivery)
        try:
            message.send()
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise TransportError(
                f"refused by the mail server: {type(exc).__name__}", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise TransportError(f"SMTP {exc.smtp_code}", permanent=permanent) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"mail server unavailable: {type(exc).__name__}") from None
        return SendResult()


def transport_for(channel: Channel):
    return WebhookTransport(channel) if channel.kind == ChannelKind.WEBHOOK else EmailTransport(channel)
