"""The verify page's reading of a report (governance/pages/reading.py): the verdict's order of precedence, and the
inclusion proof checked again on the page (a proof that does not lead to its root is said not to check)."""

from __future__ import annotations

import hashlib

import pytest

from governance.pages.reading import inclusion_checked, verdict
from provenance.merkle import inclusion_proof_of, leaf_hash, root_of


def _entry(index: int = 2, size: int = 5) -> dict[str, object]:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(size)]
    leaves = [leaf_hash(h) for h in hashes]
    return {"index": index, "tree_size": size, "entry_hash": hashes[index].hex(), "leaf_hash": leaves[index].hex(),
            "root_hash": root_of(leaves).hex(), "inclusion_proof": [p.hex() for p in inclusion_proof_of(leaves, index)]}


def test_a_true_proof_checks() -> None:
    assert inclusion_checked(_entry()) is True
    assert inclusion_checked(None) is None


@pytest.mark.parametrize("spoil", [
    lambda e: e.update(root_hash="00" * 32),
    lambda e: e.update(index=3),
    lambda e: e.update(inclusion_proof=e["inclusion_proof"][:-1]),
    lambda e: e.update(entry_hash="11" * 32),  # the leaf no longer follows from the entry
    lambda e: e.update(leaf_hash="zz"),
    lambda e: e.pop("inclusion_proof"),
])
def test_a_spoiled_proof_does_not_check(spoil) -> None:
    entry = _entry()
    spoil(entry)
    assert inclusion_checked(entry) is False


@pytest.mark.parametrize("report, key", [
    ({"c2pa": {"state": "Invalid"}, "record": {"state": "released", "taken_down": False}}, "tampered"),
    ({"c2pa": {"state": "Trusted"}, "record": {"state": "released", "taken_down": True}}, "taken_down"),
    ({"c2pa": {"state": "absent"}, "record": {"state": "released", "taken_down": False}}, "released"),
    ({"c2pa": {"state": "Trusted"}, "record": {"state": "blocked", "taken_down": False}}, "not_released"),
    ({"c2pa": {"state": "Valid"}, "record": None, "origin": "declared_ai"}, "declared_ai"),
    ({"c2pa": {"state": "absent"}, "record": None, "origin": "unknown"}, "unknown"),
    # another signer's credential is described as such (the review's findings: never "no credential", never
    # "ConsentGate-style" or "changed after it was signed" for one the reader could not process)
    ({"c2pa": {"state": "Valid", "issuer": "C2PA Test Signing Cert"}, "record": None, "origin": "unknown"},
     "untrusted"),
    ({"c2pa": {"state": "remote"}, "record": None, "origin": "unknown"}, "remote"),
    ({"c2pa": {"state": "Invalid", "failures": ["manifest.unreadable"]}, "record": None, "origin": "unknown"},
     "unreadable"),
    ({"c2pa": {"state": "Invalid", "failures": ["manifest.unreadable"]}, "record": {"state": "released"}},
     "tampered"),  # made here: its credential no longer reads
    ({"c2pa": {"state": "Invalid", "failures": ["assertion.dataHash.mismatch"]}, "record": None}, "tampered"),
])
def test_the_verdict_puts_tampering_first_then_the_record(report, key) -> None:
    assert verdict(report).key == key
