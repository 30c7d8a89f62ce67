"""Frozen test vectors for the transparency log's formats: fixed inputs, fixed hex. Verifiers outside the
service recompute these; a change here is a change of format (a new entry-hash version), never a fix."""

from __future__ import annotations

import datetime as dt
import hashlib

from governance.log.services import translog
from provenance import merkle
from provenance.treehead import SignedTreeHead

FIELDS = (7, "gen_0123456789abcdef", "00112233445566ff", "aa" * 32, "bb" * 32, translog.GENESIS)
WHEN = dt.datetime(2026, 11, 29, 9, 26, 7, 123456, tzinfo=dt.UTC)

V1_BODY = ('[7,"gen_0123456789abcdef","00112233445566ff","' + "aa" * 32 + '","' + "bb" * 32 + '","' + "0" * 64 + '"]')
V1_HASH = "fb317c130c22ac637ca97d1f1dc524485168437278b5cf0d7408f4b476d83da7"
V2_BODY = ('[2,7,"gen_0123456789abcdef","00112233445566ff","' + "aa" * 32 + '","' + "bb" * 32 + '","' + "0" * 64
           + '","2026-11-29T09:26:07.123456+00:00"]')
V2_HASH = "6a8026e9108b339eb66904b9fc209569dd8b667e68a275069536e2d91a2a04f3"
V2_LEAF = "8b0e68c8e38b36442b6a371287914e17866ef2c017e4ed1fc9d1ebb7d0c992ad"
NODE_V1_V2 = "e83bfc3e0409448b60f30767745f17e58435bc0ff42b83e1ad7a4d530379534c"
ROOT_OF_0_1_2 = "3b6cccd7e3e023ff393006f030315ee7ad9eb111b022b41fba7e5b7a3973f688"


def test_entry_hash_version_1():
    assert hashlib.sha256(V1_BODY.encode()).hexdigest() == V1_HASH
    assert translog._entry_hash(*FIELDS) == V1_HASH
    assert translog.entry_hash(1, *FIELDS, WHEN) == V1_HASH  # version 1 ignores the date


def test_entry_hash_version_2_covers_the_date():
    assert hashlib.sha256(V2_BODY.encode()).hexdigest() == V2_HASH
    assert translog.entry_hash(2, *FIELDS, WHEN) == V2_HASH
    assert translog.entry_hash(2, *FIELDS, WHEN + dt.timedelta(microseconds=1)) != V2_HASH
    # a naive datetime (what SQLite hands back) is UTC; another zone is the same instant
    assert translog.entry_hash(2, *FIELDS, WHEN.replace(tzinfo=None)) == V2_HASH
    assert translog.entry_hash(2, *FIELDS, WHEN.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == V2_HASH
    assert translog.timestamp(WHEN.replace(microsecond=0)) == "2026-11-29T09:26:07.000000+00:00"


def test_leaf_and_node_encoding():
    assert merkle.leaf_hash(bytes.fromhex(V2_HASH)).hex() == V2_LEAF
    assert hashlib.sha256(b"\x00" + bytes.fromhex(V2_HASH)).hexdigest() == V2_LEAF
    left = merkle.leaf_hash(bytes.fromhex(V1_HASH))
    assert merkle.node_hash(left, bytes.fromhex(V2_LEAF)).hex() == NODE_V1_V2
    assert hashlib.sha256(b"\x01" + left + bytes.fromhex(V2_LEAF)).hexdigest() == NODE_V1_V2
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(3)]
    assert merkle.root_of(leaves).hex() == ROOT_OF_0_1_2
    assert merkle.node_hash(merkle.node_hash(leaves[0], leaves[1]), leaves[2]).hex() == ROOT_OF_0_1_2
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_tree_head_message():
    assert SignedTreeHead.message(3, "cd" * 32, "2026-11-29T09:26:07+00:00") == (
        b'ConsentGate transparency log tree head v1\n{"root_hash":"' + b"cd" * 32
        + b'","timestamp":"2026-11-29T09:26:07+00:00","tree_size":3}')


def test_an_entry_made_now_is_version_2_and_shows_what_its_hash_covers():
    from governance.db import init_db, make_engine, unit_of_work

    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        translog.append(s, "gen_a", "00112233445566ff", "aa" * 32, "bb" * 32)
    with unit_of_work(engine) as s:
        (entry,) = translog.all_entries(s)
        view = translog.entry_view(entry)
    assert view["hash_version"] == 2
    body = [2, 0, "gen_a", "00112233445566ff", "aa" * 32, "bb" * 32, translog.GENESIS, view["created_at"]]
    import json

    assert hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest() == view["entry_hash"]


def test_manifest_hash_is_over_the_canonical_governance_assertion():
    """An entry's ``manifest_sha256`` is SHA-256 of the manifest's governance assertion as canonical JSON (keys
    sorted, no spaces, non-ASCII escaped): what a regulator recomputes from the assertion read out of the
    manifest (docs/security.md). Frozen: entries already released hold hashes made this way."""
    from governance.generations.gate import _canonical

    assertion = {"likenesses": [{"grant": "ab" * 32, "basis": "grant"}], "policy": "v1", "prompt_screen": "Zoë"}
    assert _canonical(assertion) == (b'{"likenesses":[{"basis":"grant","grant":"' + b"ab" * 32
                                     + b'"}],"policy":"v1","prompt_screen":"Zo\\u00eb"}')
    assert hashlib.sha256(_canonical(assertion)).hexdigest() == (
        "9bd41459b67433b63f1e589151f47a450ccb66c2592dd9992742e8aba4402c8a")
