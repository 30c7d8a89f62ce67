"""provenance.treehead: a signed tree head verifies under the signer's chain and trust anchor, and any
change to what it states, or a chain under another root, is refused with the reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from provenance.errors import SigningError
from provenance.keys import callback_signer_from_key, ensure_dev_ca
from provenance.treehead import CONTEXT, SignedTreeHead

ROOT = "ab" * 32


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SignedTreeHead, bytes, bytes]:
    d = tmp_path_factory.mktemp("keys")
    material = ensure_dev_ca(Path(d))
    other = ensure_dev_ca(Path(d) / "other")
    head = SignedTreeHead.sign(7, ROOT, callback_signer_from_key(material), material.alg, material.cert_chain_pem,
                               now=dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC))
    return head, material.root_pem, other.root_pem


def test_a_signed_head_verifies_under_its_root(signed) -> None:
    head, root, _ = signed
    assert head.timestamp == "2026-11-22T06:00:00+00:00" and head.alg == "es256"
    head.verify(root)
    again = SignedTreeHead.from_dict(head.to_dict())  # through JSON and back
    again.verify(root)
    assert SignedTreeHead.message(7, ROOT, head.timestamp).startswith(CONTEXT)


@pytest.mark.parametrize("change", [{"tree_size": 8}, {"root_hash": "cd" * 32},
                                    {"timestamp": "2026-11-23T06:00:00+00:00"}])
def test_any_changed_statement_fails(signed, change: dict) -> None:
    head, root, _ = signed
    with pytest.raises(SigningError, match="does not verify"):
        dataclasses.replace(head, **change).verify(root)


def test_a_chain_under_another_root_or_a_broken_signature_fails(signed) -> None:
    head, _, other_root = signed
    with pytest.raises(SigningError, match="is not issued by"):
        head.verify(other_root)
    with pytest.raises(SigningError, match="not base64"):
        dataclasses.replace(head, signature="not base64!").verify()
    with pytest.raises(SigningError, match="does not verify"):
        dataclasses.replace(head, signature="AAAA").verify()


def test_malformed_heads_are_named(signed) -> None:
    head, _, _ = signed
    with pytest.raises(SigningError, match="lacks or mistypes: tree_size"):
        SignedTreeHead.from_dict({**head.to_dict(), "tree_size": "7"})
    with pytest.raises(SigningError, match="JSON object"):
        SignedTreeHead.from_dict([1, 2])
    with pytest.raises(SigningError, match="hex SHA-256 root"):
        SignedTreeHead.sign(1, "abc", lambda b: b"", "es256", b"")

    def down(data: bytes) -> bytes:
        raise TimeoutError("kms timed out")

    with pytest.raises(SigningError, match="could not sign the log's tree head: TimeoutError: kms timed out"):
        SignedTreeHead.sign(1, ROOT, down, "es256", b"")
