"""Standard Webhooks v1 signatures: sign outgoing requests, verify incoming ones.

signature = base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), where key is the
base64-decoded part of the `whsec_…` secret. The `webhook-signature` header holds one
or more space-separated `v1,<signature>` entries (two while a rotated secret overlaps).
"""

import base64
import hashlib
import hmac
import time

from .models import SECRET_PREFIX

TOLERANCE_SECONDS = 5 * 60


class SignatureError(ValueError):
    """The request's signature or timestamp does not verify."""


def secret_key(secret: str) -> bytes:
    """Return the HMAC key bytes of a `whsec_…` secret."""
    if secret.startswith(SECRET_PREFIX):
        secret = secret[len(SECRET_PREFIX) :]
    return base64.b64decode(secret)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one `v1,<base64>` signature of `body` under `secret`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value: one signature per active secret."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def webhook_headers(secrets: list[str], msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secret: str, headers: dict, body: bytes, *, now: float | None = None) -> None:
    """Raise SignatureError unless `headers` carry a fresh, valid signature of `body`.

    `headers` keys are compared case-insensitively.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    raw_timestamp = lowered.get("webhook-timestamp")
    header = lowered.get("webhook-signature")
    if not msg_id or not raw_timestamp or not header:
        raise SignatureError("missing webhook headers")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a number") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("timestamp outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for entry in header.split(" "):
        if entry.startswith("v1,") and hmac.compare_digest(entry.encode(), expected):
            return
    raise SignatureError("no matching signature")
