"""cg-commit-v1: frozen vectors (the format must never drift silently), hiding, binding and parsing."""

from __future__ import annotations

import doctest

import pytest

import provenance.commitments
from provenance.commitments import SCHEME, CommitmentError, Opening, commit, new_salt, opens

SALT = bytes(range(32))

# Fixed inputs -> fixed outputs. Computed once and cross-checked with `openssl dgst -sha256 -mac HMAC`
# over the framed message. If one of these changes, the format changed: publish it as cg-commit-v2.
VECTORS = [
    ("likeness", "lk_0123456789abcdef", SALT, "5854015d70d343f68f6a8489feb32471f0ce6d202c0c14b1ba6cfb6948d45abd"),
    ("requester", "acc_0123456789abcdef", SALT, "6d62ce6086d7cf02bdad5bb93b87ef14582301b2b3b6ff4a915d4e3a2c2860c7"),
    ("prompt", "a walk on the beach", bytes(32), "329f8a91724672697a35b672720bc0a02ae1a41d483d7e044ad7e01b0cb88ed6"),
]


@pytest.mark.parametrize(("kind", "value", "salt", "expected"), VECTORS)
def test_frozen_vectors(kind, value, salt, expected):
    assert SCHEME == "cg-commit-v1"
    assert commit(kind, value, salt) == expected
    assert opens(expected, kind, value, salt) and opens(expected.upper(), kind, value, salt)
    assert Opening(kind, value, salt.hex()).commitment == expected


def test_the_framing_is_the_documented_one():
    import hashlib
    import hmac

    msg = b"".join(len(p).to_bytes(4, "big") + p for p in (b"cg-commit-v1", b"owner", "Zoë".encode()))
    assert commit("owner", "Zoë", SALT) == hmac.new(SALT, msg, hashlib.sha256).hexdigest()


def test_domain_separation_and_binding():
    c = commit("likeness", "lk_1", SALT)
    assert not opens(c, "owner", "lk_1", SALT)  # another kind
    assert not opens(c, "likeness", "lk_2", SALT)  # another value
    assert not opens(c, "likeness", "lk_1", bytes(32))  # another salt
    assert commit("owner", "", SALT) != commit("grant", "", SALT)  # even an empty value is domain-separated
    assert not opens("not hex", "likeness", "lk_1", SALT)


def test_hiding_needs_a_fresh_salt_per_commitment():
    a, b = new_salt(), new_salt()
    assert len(a) == 32 and a != b
    assert commit("owner", "acc_1", a) != commit("owner", "acc_1", b)  # the same person, unlinkable


def test_openings_parse_and_refuse():
    o = Opening.from_dict({"scheme": SCHEME, "kind": "grant", "value": "gr_1", "salt": SALT.hex()})
    assert o.to_dict() == {"scheme": SCHEME, "kind": "grant", "value": "gr_1", "salt": SALT.hex(),
                           "commitment": commit("grant", "gr_1", SALT)}
    assert Opening.from_dict(o.to_dict() | {"commitment": "0" * 64}) == o  # the commitment is recomputed
    for bad, words in [
        ({"kind": "name", "value": "x", "salt": SALT.hex()}, "kind must be one of"),
        ({"kind": "grant", "value": 7, "salt": SALT.hex()}, "must be a string"),
        ({"kind": "grant", "value": "x", "salt": "00"}, "64 lowercase hex"),
        ({"kind": "grant", "value": "x", "salt": SALT.hex().upper()}, "64 lowercase hex"),
        ({"kind": "grant", "value": "x"}, "'salt' is missing"),
        ({"scheme": "cg-commit-v2", "kind": "grant", "value": "x", "salt": SALT.hex()}, "cg-commit-v1"),
    ]:
        with pytest.raises(CommitmentError, match=words):
            Opening.from_dict(bad)
    with pytest.raises(CommitmentError, match="32 bytes"):
        commit("grant", "x", b"short")


def test_docstring_example_runs():
    result = doctest.testmod(provenance.commitments)
    assert result.attempted > 0 and result.failed == 0
