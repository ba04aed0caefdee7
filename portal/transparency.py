"""Merkle trees, signed checkpoints and the checkpoint store (RFC 9162 style).

Pure functions, no models: the consent ledger and the audit log both build on them
(`consent/ledger.py`, `portal/audit/checkpoints.py`), and `verify_receipt` uses them
without a database.

- A stream (one operator's consent ledger, one audit stream) is a Merkle tree over
  its events in order. A leaf is the event's 32-byte chain hash, so the tree covers
  every field the chain covers. Leaf hash = SHA-256(0x00 || leaf), interior node =
  SHA-256(0x01 || left || right), as in RFC 9162 section 2.1.
- A checkpoint (stream, size, root hash, time) is signed with Ed25519. The signing key
  comes from the environment (`CHECKPOINT_SIGNING_KEY`), never from the database;
  older public keys stay in `CHECKPOINT_VERIFY_KEYS` so old checkpoints still verify.
- The checkpoint store is a directory outside the database (`CHECKPOINT_STORE_DIR`):
  one JSON file per checkpoint and, per stream, the witnessed leaves (32 bytes each,
  append-only), so verification can name the first event that differs.
"""

import base64
import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

FORMAT = "portal-checkpoint/v1"
LEAF_SIZE = 32

_sha256 = hashlib.sha256


# --- Merkle tree (RFC 9162, section 2.1) --------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two smaller than `n` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The roots of the perfect subtrees of a growing tree (largest first): its compact state.

    Appending is amortised one node hash per leaf and the root costs log2(size) more,
    so a root over a million leaves is computed in one pass without holding them.
    """

    __slots__ = ("size", "nodes")

    def __init__(self, size: int = 0, nodes: list[bytes] | None = None):
        self.size = size
        self.nodes = list(nodes or [])

    def append(self, data: bytes) -> None:
        self.append_hash(_sha256(b"\x00" + data).digest())

    def append_hash(self, value: bytes) -> None:
        n, nodes = self.size, self.nodes
        while n & 1:
            value = _sha256(b"\x01" + nodes.pop() + value).digest()
            n >>= 1
        nodes.append(value)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        # The loop of `append`, inlined: this is what verification time is made of.
        n, nodes, sha = self.size, self.nodes, _sha256
        for data in leaves:
            value = sha(b"\x00" + data).digest()
            k = n
            while k & 1:
                value = sha(b"\x01" + nodes.pop() + value).digest()
                k >>= 1
            nodes.append(value)
            n += 1
        self.size = n

    def root(self) -> bytes:
        if not self.nodes:
            return _sha256(b"").digest()  # RFC 9162: the hash of the empty tree
        value = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            value = node_hash(left, value)
        return value

    def to_json(self) -> list[str]:
        return [n.hex() for n in self.nodes]

    @classmethod
    def from_json(cls, size: int, nodes: list[str]) -> "Frontier":
        frontier = cls(size, [bytes.fromhex(n) for n in nodes])
        if len(frontier.nodes) != size.bit_count():
            raise ValueError("frontier does not match its size")
        return frontier


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """Return the root hash over leaf data `leaves` (raw leaves, not leaf hashes)."""
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


def _subtree(hashes: list[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return hashes[lo]
    k = _split(hi - lo)
    return node_hash(_subtree(hashes, lo, lo + k), _subtree(hashes, lo + k, hi))


def inclusion_proof(hashes: list[bytes], index: int) -> list[bytes]:
    """Return the audit path of leaf `index` in the tree of leaf hashes `hashes`."""
    proof: list[bytes] = []
    lo, hi = 0, len(hashes)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(_subtree(hashes, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_subtree(hashes, lo, lo + k))
            lo += k
    return proof[::-1]


def verify_inclusion(*, leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """Return True when `proof` shows leaf data `leaf` at `index` in the tree of `size` with `root`."""
    if index >= size or index < 0:
        return False
    fn, sn, value = index, size - 1, leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            value = node_hash(p, value)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            value = node_hash(value, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and value == root


def _consistency(subtree, old_size: int, new_size: int) -> list[bytes]:
    def sub(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [subtree(lo, hi)]
        k = _split(n)
        if m <= k:
            return sub(m, lo, lo + k, complete) + [subtree(lo + k, hi)]
        return sub(m - k, lo + k, hi, False) + [subtree(lo, lo + k)]

    if old_size <= 0 or old_size >= new_size:
        return []
    return sub(old_size, 0, new_size, True)


def consistency_proof(hashes: list[bytes], old_size: int) -> list[bytes]:
    """Return the proof that the tree of the first `old_size` leaf hashes is a prefix of `hashes`."""
    return _consistency(lambda lo, hi: _subtree(hashes, lo, hi), old_size, len(hashes))


def consistency_proof_from(
    old: "Frontier", new_subtree: Callable[[int, int], bytes], new_size: int
) -> list[bytes]:
    """Return the consistency proof from the tree `old` to it extended by `new_size` leaves.

    `new_subtree(lo, hi)` gives the root of the new leaves lo..hi (counted from the
    first new leaf). Every node such a proof needs inside the old tree is one of the
    old frontier's subtrees, so the old leaves are not needed.
    """
    m = old.size
    starts, lo = {}, 0
    for bit, node in zip(_bits_high_first(m), old.nodes, strict=True):
        starts[(lo, lo + bit)] = node
        lo += bit

    def subtree(lo: int, hi: int) -> bytes:
        if lo >= m:
            return new_subtree(lo - m, hi - m)
        return starts[(lo, hi)]

    return _consistency(subtree, m, m + new_size)


class SpilledLeaves:
    """New leaves of a checkpoint, kept in a temporary file instead of in memory.

    A checkpoint reads each new leaf once from the database but needs it three
    times: for the tree's root, for the consistency proof's subtrees and for the
    witness's copy. Held in lists, a million leaves and their hashes cost about
    130 MB of memory; here they cost 32 bytes each on disk.
    """

    def __init__(self):
        self._file = tempfile.TemporaryFile()  # noqa: SIM115  closed by __exit__

    def __enter__(self) -> "SpilledLeaves":
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def record(self, leaves: Iterable[bytes]) -> Iterator[bytes]:
        """Yield `leaves`, writing each to the file on the way."""
        write = self._file.write
        for leaf in leaves:
            write(leaf)
            yield leaf

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the recorded leaves start..end (0-based, end excluded; None: to the last)."""
        self._file.flush()
        position = start * LEAF_SIZE
        stop = None if end is None else end * LEAF_SIZE
        while stop is None or position < stop:
            self._file.seek(position)
            want = 65536 * LEAF_SIZE if stop is None else min(65536 * LEAF_SIZE, stop - position)
            block = self._file.read(want)
            if not block:
                return
            position += len(block)
            for i in range(0, len(block) - LEAF_SIZE + 1, LEAF_SIZE):
                yield block[i : i + LEAF_SIZE]

    def subtree_root(self, lo: int, hi: int) -> bytes:
        """Return the root of the tree over recorded leaves lo..hi (end excluded)."""
        return merkle_root(self.read(lo, hi))


def _bits_high_first(n: int) -> list[int]:
    return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """Return True when `proof` shows the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if old_size == 0:
        return not proof  # every tree extends the empty one
    if old_size > new_size or not proof:
        return False
    if old_size & (old_size - 1) == 0:
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# --- Signed checkpoints --------------------------------------------------------------


def checkpoint_body(*, stream: str, size: int, root_hash: str, timestamp: str) -> bytes:
    """Return the exact bytes a checkpoint's signature covers."""
    return f"{FORMAT}\n{stream}\n{size}\n{root_hash}\n{timestamp}\n".encode()


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return a short, stable name of a public key: 16 hex digits of its SHA-256."""
    return _sha256(public_raw(public_key)).hexdigest()[:16]


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def generate_signing_key() -> str:
    """Return a new private key as the environment holds it (URL-safe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def load_signing_key(value: str) -> Ed25519PrivateKey:
    raw = _b64decode(value.strip())
    if len(raw) != 32:
        raise ValueError("CHECKPOINT_SIGNING_KEY must be 32 bytes in URL-safe base64")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(value: str) -> Ed25519PublicKey:
    raw = _b64decode(value.strip())
    if len(raw) != 32:
        raise ValueError("a checkpoint verification key must be 32 bytes in URL-safe base64")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class SignedCheckpoint:
    stream: str
    number: int
    size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str
    # Consistency proof from the previous checkpoint of the stream (hex hashes).
    previous_size: int = 0
    previous_root: str = ""
    consistency: tuple[str, ...] = ()

    def body(self) -> bytes:
        return checkpoint_body(
            stream=self.stream, size=self.size, root_hash=self.root_hash, timestamp=self.timestamp
        )

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "stream": self.stream,
            "number": self.number,
            "size": self.size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": self.signature,
            "previous_size": self.previous_size,
            "previous_root": self.previous_root,
            "consistency": list(self.consistency),
        }

    @classmethod
    def from_json(cls, doc: dict) -> "SignedCheckpoint":
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a checkpoint")
        try:
            return cls(
                stream=str(doc["stream"]),
                number=int(doc.get("number", 0)),
                size=int(doc["size"]),
                root_hash=str(doc["root_hash"]),
                timestamp=str(doc["timestamp"]),
                key_id=str(doc["key_id"]),
                signature=str(doc["signature"]),
                previous_size=int(doc.get("previous_size", 0)),
                previous_root=str(doc.get("previous_root", "")),
                consistency=tuple(str(h) for h in doc.get("consistency", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("not a checkpoint") from exc

    def signature_valid(self, keys: dict[str, Ed25519PublicKey]) -> bool:
        """Return True when one of `keys` (by key id) signed this checkpoint."""
        key = keys.get(self.key_id)
        if key is None:
            return False
        try:
            key.verify(_b64decode(self.signature), self.body())
        except (InvalidSignature, ValueError):
            return False
        return True

    def extends_previous(self) -> bool:
        """Return True when the consistency proof shows this tree extends the previous one."""
        try:
            return verify_consistency(
                old_size=self.previous_size,
                new_size=self.size,
                old_root=bytes.fromhex(self.previous_root) if self.previous_size else b"",
                new_root=bytes.fromhex(self.root_hash),
                proof=[bytes.fromhex(h) for h in self.consistency],
            )
        except ValueError:
            return False


def sign_checkpoint(
    *,
    key: Ed25519PrivateKey,
    stream: str,
    number: int,
    size: int,
    root_hash: str,
    timestamp: str,
    previous_size: int = 0,
    previous_root: str = "",
    consistency: Iterable[str] = (),
) -> SignedCheckpoint:
    body = checkpoint_body(stream=stream, size=size, root_hash=root_hash, timestamp=timestamp)
    signature = base64.urlsafe_b64encode(key.sign(body)).decode().rstrip("=")
    return SignedCheckpoint(
        stream=stream,
        number=number,
        size=size,
        root_hash=root_hash,
        timestamp=timestamp,
        key_id=key_id(key.public_key()),
        signature=signature,
        previous_size=previous_size,
        previous_root=previous_root,
        consistency=tuple(consistency),
    )


# --- The checkpoint store (a directory outside the database) -------------------------


class CheckpointStore:
    """Checkpoints and witnessed leaves of every stream, as plain files under `root`.

    Layout: `<root>/<stream>/checkpoint-<number>.json` and `<root>/<stream>/leaves`
    (the streams' names contain only letters, digits, "-", "_" and "/").
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, stream: str) -> Path:
        if not stream or ".." in stream or not all(c.isalnum() or c in "-_/" for c in stream):
            raise ValueError(f"bad stream name {stream!r}")
        return self.root / stream

    def streams(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(str(p.parent.relative_to(self.root)) for p in self.root.rglob("checkpoint-*.json"))

    def checkpoints(self, stream: str) -> list[SignedCheckpoint]:
        """Return the stream's stored checkpoints, oldest first (unreadable files are skipped)."""
        folder = self._dir(stream)
        found = []
        for path in sorted(folder.glob("checkpoint-*.json")) if folder.exists() else []:
            try:
                found.append(SignedCheckpoint.from_json(json.loads(path.read_text())))
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda c: (c.size, c.number))

    def latest(self, stream: str) -> SignedCheckpoint | None:
        """Return the stream's highest-numbered readable checkpoint (reads one file, not all)."""
        folder = self._dir(stream)
        for path in sorted(folder.glob("checkpoint-*.json"), reverse=True) if folder.exists() else []:
            try:
                return SignedCheckpoint.from_json(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return None

    def write(self, checkpoint: SignedCheckpoint) -> None:
        folder = self._dir(checkpoint.stream)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"checkpoint-{checkpoint.number:010d}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(checkpoint.to_json(), indent=2))
        os.replace(tmp, path)

    def leaf_count(self, stream: str) -> int:
        path = self._dir(stream) / "leaves"
        return path.stat().st_size // LEAF_SIZE if path.exists() else 0

    def write_leaves(self, stream: str, start: int, leaves: Iterable[bytes]) -> None:
        """Write leaves from position `start` (0-based), dropping whatever followed it."""
        folder = self._dir(stream)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "leaves"
        with open(path, "r+b" if path.exists() else "w+b") as fh:
            fh.truncate(start * LEAF_SIZE)
            fh.seek(start * LEAF_SIZE)
            for leaf in leaves:
                fh.write(leaf)
            fh.flush()
            os.fsync(fh.fileno())

    def read_leaf(self, stream: str, index: int) -> bytes | None:
        """Return witnessed leaf `index` (0-based), or None when the store has none there."""
        path = self._dir(stream) / "leaves"
        try:
            with open(path, "rb") as fh:
                fh.seek(index * LEAF_SIZE)
                leaf = fh.read(LEAF_SIZE)
        except OSError:
            return None
        return leaf if len(leaf) == LEAF_SIZE else None

    def read_leaves(self, stream: str, count: int) -> Iterator[bytes]:
        """Yield the first `count` witnessed leaves (fewer if the file is shorter)."""
        path = self._dir(stream) / "leaves"
        if not path.exists():
            return
        with open(path, "rb") as fh:
            remaining = count
            while remaining > 0:
                chunk = fh.read(min(remaining, 65536) * LEAF_SIZE)
                if not chunk:
                    return
                for i in range(0, len(chunk) - LEAF_SIZE + 1, LEAF_SIZE):
                    yield chunk[i : i + LEAF_SIZE]
                remaining -= len(chunk) // LEAF_SIZE


# --- Keys and the store, from the settings ---------------------------------------------


def signing_key() -> Ed25519PrivateKey | None:
    """Return the checkpoint signing key from the settings (None when none is configured)."""
    from django.conf import settings

    value = getattr(settings, "CHECKPOINT_SIGNING_KEY", "")
    return load_signing_key(value) if value else None


def verification_keys() -> dict[str, Ed25519PublicKey]:
    """Return every public key a checkpoint may be signed with, by key id (current one included)."""
    from django.conf import settings

    keys = [load_public_key(v) for v in getattr(settings, "CHECKPOINT_VERIFY_KEYS", []) if v.strip()]
    current = signing_key()
    if current is not None:
        keys.insert(0, current.public_key())
    return {key_id(k): k for k in keys}


def public_keys_document() -> dict:
    """Return the published key set: every verification key, the current one marked."""
    current = signing_key()
    current_id = key_id(current.public_key()) if current is not None else None
    return {
        "format": FORMAT,
        "algorithm": "Ed25519",
        "keys": [
            {
                "key_id": kid,
                "public_key": base64.urlsafe_b64encode(public_raw(key)).decode().rstrip("="),
                "current": kid == current_id,
            }
            for kid, key in verification_keys().items()
        ],
    }


def head_mac(stream: str, seq: int, last_hash: str) -> str:
    """Return the keyed MAC of a chain head, or "" without a signing key.

    The key is derived from the signing key, so someone with only the database can
    move a head (append a forged event, roll it back) but cannot authenticate it.
    """
    key = signing_key()
    if key is None:
        return ""
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    mac_key = _sha256(b"portal-head-mac:" + raw).digest()
    return hmac.new(mac_key, f"{stream}\n{seq}\n{last_hash}".encode(), _sha256).hexdigest()


def default_store() -> CheckpointStore:
    from django.conf import settings

    return CheckpointStore(settings.CHECKPOINT_STORE_DIR)
