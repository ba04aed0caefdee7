"""portal.transparency: the Merkle tree, proofs and signatures agree with RFC 9162's definitions."""

import hashlib

import pytest

from portal import transparency as t


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162's recursive definition, written out as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


LEAVES = [hashlib.sha256(str(i).encode()).digest() for i in range(40)]


@pytest.mark.parametrize("n", range(41))
def test_the_streamed_root_equals_the_recursive_definition(n):
    assert t.merkle_root(LEAVES[:n]) == mth(LEAVES[:n])


def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not():
    for n in range(1, 24):
        hashes = [t.leaf_hash(x) for x in LEAVES[:n]]
        root = mth(LEAVES[:n])
        for i in range(n):
            proof = t.inclusion_proof(hashes, i)
            assert t.verify_inclusion(leaf=LEAVES[i], index=i, size=n, proof=proof, root=root)
            assert not t.verify_inclusion(leaf=LEAVES[i - 1] if n > 1 else b"x", index=i, size=n,
                                          proof=proof, root=root)  # fmt: skip


def test_every_consistency_proof_verifies_and_a_rewritten_prefix_does_not():
    for n in range(1, 24):
        hashes = [t.leaf_hash(x) for x in LEAVES[:n]]
        for m in range(1, n + 1):
            proof = t.consistency_proof(hashes, m)
            assert t.verify_consistency(
                old_size=m, new_size=n, old_root=mth(LEAVES[:m]), new_root=mth(LEAVES[:n]), proof=proof
            ), (m, n)
            forged = [b"forged", *LEAVES[1:m]]
            assert not t.verify_consistency(
                old_size=m, new_size=n, old_root=mth(forged), new_root=mth(LEAVES[:n]), proof=proof
            )


def test_a_frontier_resumes_where_it_stopped():
    first = t.Frontier()
    first.extend(LEAVES[:13])
    resumed = t.Frontier.from_json(13, first.to_json())
    resumed.extend(LEAVES[13:])
    assert resumed.root() == mth(LEAVES)


def test_a_signature_verifies_with_its_key_only():
    key = t.load_signing_key(t.generate_signing_key())
    other = t.load_signing_key(t.generate_signing_key())
    cp = t.sign_checkpoint(key=key, stream="audit/main", number=1, size=3, root_hash="ab" * 32,
                           timestamp="2026-11-30T00:00:00+00:00")  # fmt: skip
    assert cp.signature_valid({cp.key_id: key.public_key()})
    assert not cp.signature_valid({cp.key_id: other.public_key()})
    changed = t.SignedCheckpoint.from_json({**cp.to_json(), "size": 4})
    assert not changed.signature_valid({cp.key_id: key.public_key()})


def test_a_consistency_proof_from_the_old_frontier_and_spilled_new_leaves_equals_the_full_one():
    for n in range(2, 30):
        hashes = [t.leaf_hash(x) for x in LEAVES[:n]]
        for m in range(1, n):
            old = t.Frontier()
            old.extend(LEAVES[:m])
            with t.SpilledLeaves() as new:
                assert list(new.record(LEAVES[m:n])) == LEAVES[m:n]
                proof = t.consistency_proof_from(old, new.subtree_root, n - m)
                assert proof == t.consistency_proof(hashes, m), (m, n)
                assert list(new.read()) == LEAVES[m:n]
                assert list(new.read(1, 3)) == LEAVES[m + 1 : min(m + 3, n)]
