"""provenance.merkle: RFC 9162 tree hashes (checked against Certificate Transparency's published test
vectors), and inclusion and consistency proofs that verify, and that fail when anything is changed."""

from __future__ import annotations

import hashlib

import pytest

from provenance.merkle import (
    EMPTY_ROOT,
    MerkleError,
    consistency_proof_of,
    inclusion_proof,
    inclusion_proof_of,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The leaves and roots of the reference tests of Certificate Transparency (RFC 6962 hashing, as RFC 9162).
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
             bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(n)]


def test_roots_match_the_certificate_transparency_vectors() -> None:
    hashed = [leaf_hash(d) for d in CT_LEAVES]
    assert [root_of(hashed[:n]).hex() for n in range(1, 9)] == CT_ROOTS
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 33])
def test_every_inclusion_proof_verifies_and_nothing_else_does(n: int) -> None:
    tree = leaves(n)
    root = root_of(tree)
    for m in range(n):
        proof = inclusion_proof_of(tree, m)
        assert len(proof) <= max(1, (n - 1).bit_length())
        assert verify_inclusion(tree[m], m, n, proof, root)
        assert not verify_inclusion(tree[m], m, n, proof, root_of(tree[:-1]) if n > 1 else b"x" * 32)
        assert not verify_inclusion(leaf_hash(b"forged"), m, n, proof, root)
        assert not verify_inclusion(tree[m], m, 2 * n + 2, proof, root)  # a tree with another shape
        if n > 1:
            assert not verify_inclusion(tree[m], (m + 1) % n, n, proof, root)
            bent = [bytes(32)] + proof[1:]
            assert not verify_inclusion(tree[m], m, n, bent, root)
            assert not verify_inclusion(tree[m], m, n, proof[:-1], root)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 21])
def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not(n: int) -> None:
    tree = leaves(n)
    for m in range(1, n + 1):
        proof = consistency_proof_of(tree, m)
        old_root, new_root = root_of(tree[:m]), root_of(tree)
        assert verify_consistency(m, n, old_root, new_root, proof)
        if m < n:
            rewritten = root_of([leaf_hash(b"edited")] + tree[1:m])  # a log that changed its past
            assert not verify_consistency(m, n, rewritten, new_root, proof)
            assert not verify_consistency(m, n, old_root, root_of(tree[:-1] + [leaf_hash(b"x")]), proof)
            assert not verify_consistency(m, n, old_root, new_root, [])


def test_proofs_outside_the_tree_are_refused() -> None:
    tree = leaves(4)
    with pytest.raises(MerkleError, match="not in a tree of 4"):
        inclusion_proof_of(tree, 4)
    with pytest.raises(MerkleError, match="old size <= new size"):
        consistency_proof_of(tree, 5)
    with pytest.raises(MerkleError, match="old size <= new size"):
        consistency_proof_of(tree, 0)
    with pytest.raises(MerkleError):
        inclusion_proof(lambda a, b: b"", 0, 0)
    assert not verify_inclusion(tree[0], 4, 4, [], root_of(tree))
    assert not verify_consistency(3, 2, root_of(tree[:3]), root_of(tree[:2]), [])
