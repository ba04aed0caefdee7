"""The batch Fernet encryption of the importer produces standard Fernet tokens."""

import pytest
from cryptography.fernet import Fernet, MultiFernet
from hypothesis import given
from hypothesis import strategies as st

from consent.fernet_batch import encrypt_many
from consent.models import ConsentEvent


@given(st.lists(st.binary(max_size=70), max_size=40))
def test_tokens_decrypt_with_the_fernet_library(values):
    key = Fernet.generate_key()
    tokens = encrypt_many(key, values)
    assert [Fernet(key).decrypt(t) for t in tokens] == values


def test_tokens_are_random_and_authenticated():
    key = Fernet.generate_key()
    first, second = encrypt_many(key, [b"customer-1", b"customer-1"])
    assert first != second
    tampered = first[:-5] + (b"A" if first[-5:-4] != b"A" else b"B") + first[-4:]
    with pytest.raises(Exception):  # noqa: B017  InvalidToken
        Fernet(key).decrypt(tampered)
    with pytest.raises(Exception):  # noqa: B017  wrong key
        Fernet(Fernet.generate_key()).decrypt(first)


def test_the_ledger_field_decrypts_them_with_its_own_keys():
    field = ConsentEvent._meta.get_field("subject_identifier")
    token = encrypt_many(field.fernet_keys[0], ["pelanggan-ü-0042".encode()])[0]
    fernet = field.fernet
    assert isinstance(fernet, Fernet | MultiFernet)
    assert fernet.decrypt(token).decode() == "pelanggan-ü-0042"
