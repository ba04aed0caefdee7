"""Blind indexes: keyed HMAC-SHA256 of normalised values, for exact lookups on encrypted columns.

A plain or unkeyed hash of a NIK or phone number is guessable by enumeration; a keyed
HMAC is not without the key, which lives only in the environment (BLIND_INDEX_KEY).
"""

import hashlib
import hmac
import re
import unicodedata
from enum import StrEnum

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from fernet_fields.hkdf import derive_fernet_key


class Kind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    NIK = "nik"
    IDENTIFIER = "identifier"


class NormalisationError(ValueError):
    """The value cannot be normalised for its kind (for example, a phone with no digits)."""


def normalise(kind: Kind, value: str) -> str:
    """Return the canonical form of `value` so equal values index equally."""
    value = unicodedata.normalize("NFKC", str(value)).strip()
    if kind is Kind.EMAIL:
        return value.lower()
    if kind is Kind.PHONE:
        digits = re.sub(r"\D", "", value)
        if not digits:
            raise NormalisationError("no digits in phone number")
        # Indonesian numbers: 08xx..., +62 8xx..., 62 8xx... are the same number.
        if digits.startswith("0"):
            digits = "62" + digits[1:]
        return digits
    if kind is Kind.NIK:
        digits = re.sub(r"[\s.\-]", "", value)
        if not digits.isdigit():
            raise NormalisationError("a NIK has digits only")
        return digits
    return value


def blind_index(kind: Kind, value: str, *, key: str | None = None) -> str:
    """Return the hex HMAC-SHA256 blind index of `value`, keyed per kind."""
    secret = (key if key is not None else settings.BLIND_INDEX_KEY).encode()
    message = f"{kind.value}:{normalise(kind, value)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def file_fernet() -> MultiFernet:
    """Return the cipher for encrypted files: the first of FERNET_KEYS encrypts, every key decrypts.

    Keys are derived as fernet_fields derives them for encrypted columns, so a file and
    a column under the same FERNET_KEYS use the same key. Read the settings on each
    call: a file staged before a key rotation still opens while its key is listed.
    """
    return MultiFernet([Fernet(derive_fernet_key(key)) for key in settings.FERNET_KEYS])
