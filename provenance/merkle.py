"""Merkle tree hashing, inclusion and consistency proofs for the transparency log (RFC 9162, section 2.1).

Pure functions: the service builds proofs from the subtree hashes it stores, and anyone verifies them
with nothing but this module (or any other RFC 9162 implementation)::

    >>> from provenance.merkle import leaf_hash, root_of, inclusion_proof_of, verify_inclusion
    >>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
    >>> root = root_of(leaves)
    >>> proof = inclusion_proof_of(leaves, 3)
    >>> verify_inclusion(leaves[3], 3, 5, proof, root)
    True
    >>> verify_inclusion(leaves[2], 3, 5, proof, root)
    False

Hashes are SHA-256 with the RFC's domain separation: a leaf is ``H(0x00 || data)``, an interior node
``H(0x01 || left || right)``, the empty tree ``H()``. Proof construction takes a ``subtree(start, end)``
callable returning the hash of leaves ``[start, end)``; the recursion only ever asks it for subtrees
that are either complete and aligned (``end - start`` a power of two, ``start`` a multiple of it), which
a log can store once, or that it splits further: O(log n) lookups per proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from provenance.errors import ProvenanceError

__all__ = [
    "EMPTY_ROOT",
    "MerkleError",
    "consistency_proof",
    "consistency_proof_of",
    "inclusion_proof",
    "inclusion_proof_of",
    "leaf_hash",
    "node_hash",
    "root",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

Subtree = Callable[[int, int], bytes]
"""``subtree(start, end)``: the Merkle tree hash of leaves ``[start, end)``, for complete aligned ranges."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleError(ProvenanceError):
    """A proof was asked for an index or size outside the tree."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(subtree: Subtree, size: int) -> bytes:
    """The tree hash of the first ``size`` leaves."""
    if size < 0:
        raise MerkleError(f"a tree size is >= 0, got {size}")
    return EMPTY_ROOT if size == 0 else _mth(subtree, 0, size)


def _mth(subtree: Subtree, start: int, end: int) -> bytes:
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return subtree(start, end)  # complete and aligned: stored
    k = _split(n)
    return node_hash(_mth(subtree, start, start + k), _mth(subtree, start + k, end))


def inclusion_proof(subtree: Subtree, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise MerkleError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(_mth(subtree, start + k, end))
            end = start + k
        else:
            path.append(_mth(subtree, start, start + k))
            start += k
    return path[::-1]  # from the leaf up


def consistency_proof(subtree: Subtree, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size`` (RFC 9162 2.1.4.1)."""
    if not 0 < old_size <= new_size:
        raise MerkleError(f"a consistency proof needs 0 < old size <= new size, got {old_size} and {new_size}")
    proof: list[bytes] = []
    start, end = 0, new_size
    while old_size != end:  # SUBPROOF(old_size - start, D[start:end], start == 0)
        k = _split(end - start)
        if old_size - start <= k:
            proof.append(_mth(subtree, start + k, end))
            end = start + k
        else:
            proof.append(_mth(subtree, start, start + k))
            start += k
    if start != 0:  # the old tree's root is not one of the proof's nodes
        proof.append(_mth(subtree, start, end))
    return proof[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` leaves with root
    ``expected_root`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves (``old_root``) is a prefix of the tree of
    ``new_size`` leaves (``new_root``) (RFC 9162 2.1.4.2)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# -- over a list of leaf hashes in memory (a verifier's reference, and the tests') ------------------------


def _memory(leaves: Sequence[bytes]) -> Subtree:
    def subtree(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaves[start]
        k = _split(end - start)
        return node_hash(subtree(start, start + k), subtree(start + k, end))

    return subtree


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The tree hash of ``leaves`` (leaf hashes, as :func:`leaf_hash` makes them)."""
    return root(_memory(leaves), len(leaves))


def inclusion_proof_of(leaves: Sequence[bytes], index: int) -> list[bytes]:
    return inclusion_proof(_memory(leaves), index, len(leaves))


def consistency_proof_of(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    return consistency_proof(_memory(leaves), old_size, len(leaves))
