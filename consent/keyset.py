"""A compact exact set of 128-bit import keys: what a consent import remembers of its rows.

A million-row import must recognise a row repeated anywhere in the file (and, on a
re-import, the rows the ledger already holds). A Python `set` of the keys as ints
costs about 80 bytes a key (the int object and the table slot); this one costs about
25: keys are spread over 65,536 buckets by their top 16 bits, and each bucket is one
bytearray of the remaining 14 bytes of its keys, searched with `bytearray.find` (the
keys are keyed hashes, so buckets fill evenly: about 15 keys each per million).
"""

from collections.abc import Iterable

BUCKET_BITS = 16
REST_BYTES = 14  # 128 - BUCKET_BITS bits
REST_MASK = (1 << (8 * REST_BYTES)) - 1


class KeySet:
    __slots__ = ("_buckets", "_size")

    def __init__(self, keys: Iterable[int] = ()):
        # Empty buckets share one empty bytes (a small import allocates no buckets).
        self._buckets: list[bytes | bytearray] = [b""] * (1 << BUCKET_BITS)
        self._size = 0
        self.update(keys)

    def _locate(self, key: int) -> tuple[int, bytes, int]:
        index = key >> (8 * REST_BYTES)
        bucket = self._buckets[index]
        rest = (key & REST_MASK).to_bytes(REST_BYTES)
        at = bucket.find(rest)
        while at > 0 and at % REST_BYTES:  # matched across two keys: look further on
            at = bucket.find(rest, at + 1)
        return index, rest, at

    def add(self, key: int) -> bool:
        """Add `key`; return False when it was already in the set."""
        index, rest, at = self._locate(key)
        if at >= 0:
            return False
        bucket = self._buckets[index]
        if bucket:
            bucket += rest
        else:
            self._buckets[index] = bytearray(rest)
        self._size += 1
        return True

    def update(self, keys: Iterable[int]) -> None:
        for key in keys:
            self.add(key)

    def __contains__(self, key: int) -> bool:
        return self._locate(key)[2] >= 0

    def __len__(self) -> int:
        return self._size
