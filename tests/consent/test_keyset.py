"""The importer's compact key set is exact: no key is taken for another."""

import secrets

from consent.keyset import REST_BYTES, KeySet


def _key(bucket: int, rest: bytes) -> int:
    return (bucket << (8 * REST_BYTES)) | int.from_bytes(rest)


def test_it_answers_like_a_set_for_random_keys():
    keys = [int.from_bytes(secrets.token_bytes(16)) for _ in range(20_000)]
    found = KeySet(keys[:10_000])
    assert len(found) == 10_000
    assert all(key in found for key in keys[:10_000])
    assert not any(key in found for key in keys[10_000:])
    assert [found.add(key) for key in (keys[0], keys[10_000], keys[10_000])] == [False, True, False]
    assert len(found) == 10_001


def test_a_key_made_of_the_end_of_one_key_and_the_start_of_the_next_is_not_found():
    first = bytes(REST_BYTES - 1) + b"\x01"
    second = b"\x02" + bytes(REST_BYTES - 1)
    found = KeySet([_key(7, first), _key(7, second)])
    straddling = b"\x01\x02" + bytes(REST_BYTES - 2)  # bytes 13..26 of the bucket
    assert straddling in bytes(REST_BYTES - 1) + b"\x01\x02" + bytes(REST_BYTES - 1)
    assert _key(7, straddling) not in found
    assert found.add(_key(7, straddling)) is True
    assert _key(7, straddling) in found and _key(8, first) not in found
