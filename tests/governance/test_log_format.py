"""Frozen test vectors for the transparency log's formats: fixed inputs, fixed hex. Verifiers outside the
service recompute these; a change here is a change of format (a new entry-hash version), never a fix."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

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


# version 3: what happened to a release afterwards (revision 0014)
V3_BODY = ('[3,9,"takedown","gen_0123456789abcdef","00112233445566ff","' + "aa" * 32 + '","' + "bb" * 32 + '","'
           + "cc" * 32 + '","2026-11-29T09:26:07.123456+00:00",7,null,"owner"]')
V3_HASH = "d95b9ecc58d902f28ca60e4c5fecccc1f1ceac4639eb224f7e43ac35917d8c4c"
V3_LEAF = "3bf8f2511f3fa135676a70560d9a60287c81627b524f7da407c66398a0eddf21"
V3_LINEAGE_HASH = "93362fd821a7387868923623adc3ed80805e5dd72ac2dd2ece25e85678e44091"
V3_FIELDS = (9, "gen_0123456789abcdef", "00112233445566ff", "aa" * 32, "bb" * 32, "cc" * 32)


def test_entry_hash_version_3_covers_kind_release_origin_and_cause():
    assert hashlib.sha256(V3_BODY.encode()).hexdigest() == V3_HASH
    assert translog.entry_hash(3, *V3_FIELDS, WHEN, kind="takedown", release_index=7, cause="owner") == V3_HASH
    assert merkle.leaf_hash(bytes.fromhex(V3_HASH)).hex() == V3_LEAF
    # a lineage withdrawal names the ancestor's release entry (origin_index), chained after the entry above
    assert translog.entry_hash(3, 10, "gen_fedcba9876543210", "0011223344556677", "dd" * 32, "ee" * 32, V3_HASH,
                               WHEN, kind="ancestor_withdrawn", release_index=8, origin_index=7,
                               cause="lineage") == V3_LINEAGE_HASH
    for changed in ({"kind": "restore"}, {"release_index": 6}, {"cause": "admin"}):
        fields = {"kind": "takedown", "release_index": 7, "cause": "owner", **changed}
        assert translog.entry_hash(3, *V3_FIELDS, WHEN, **fields) != V3_HASH


@pytest.mark.parametrize(("version", "fields", "error"), [
    (1, {"kind": "takedown", "release_index": 7, "cause": "owner"}, "releases only"),
    (2, {"cause": "owner"}, "releases only"),
    (3, {}, "a version 3 entry"),  # a release is not written in version 3
    (3, {"kind": "deleted", "release_index": 7, "cause": "owner"}, "a version 3 entry"),
    (3, {"kind": "takedown", "release_index": 7, "cause": "because I said so"}, "a version 3 entry"),
    (3, {"kind": "takedown", "cause": "owner"}, "a version 3 entry"),  # no release named
    (3, {"kind": "takedown", "release_index": 7, "cause": "lineage"}, "a version 3 entry"),  # no origin
    (3, {"kind": "takedown", "release_index": 7, "origin_index": 2, "cause": "owner"}, "a version 3 entry"),
    (4, {}, "unknown entry hash version 4"),
])
def test_an_entry_hash_refuses_fields_its_version_cannot_hold(version, fields, error):
    with pytest.raises(ValueError, match=error):
        translog.entry_hash(version, *V3_FIELDS, WHEN, **fields)


def test_a_takedown_entry_names_its_release_and_repeats_its_hashes():
    """What an auditor checks from the log alone: the event's view is every field its hash covers, it names
    the release entry's index and repeats its content id and hashes, and both have inclusion proofs under one
    root. A generation never released gets no entry; an unknown kind or cause adds nothing."""
    import json

    from governance.db import init_db, make_engine, unit_of_work

    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        translog.append(s, "gen_a", "00112233445566ff", "aa" * 32, "bb" * 32)
        translog.append(s, "gen_b", "0011223344556677", "dd" * 32, "ee" * 32)
        assert translog.append_event(s, "gen_never", "takedown", "owner") is None
        for kind, cause in (("deleted", "owner"), ("takedown", "a free-text reason"), ("takedown", "lineage")):
            with pytest.raises(ValueError):
                translog.append_event(s, "gen_a", kind, cause)
        translog.append_event(s, "gen_a", "takedown", "admin")
        translog.append_event(s, "gen_b", "ancestor_withdrawn", "lineage", origin_generation_id="gen_a")
    with unit_of_work(engine) as s:
        assert translog.size(s) == 4 and translog.verify_chain(translog.all_entries(s)) and translog.verify_tree(s)
        release = translog.release_entry(s, "gen_a")
        assert translog.find(s, "00112233445566ff").index == release.index == 0  # the release, not the event
        (event,) = translog.events_of(s, release)
        view = translog.entry_view(event)
        assert (view["kind"], view["release_index"], view["origin_index"], view["cause"]) == ("takedown", 0, None,
                                                                                               "admin")
        body = [3, 2, "takedown", "gen_a", "00112233445566ff", "aa" * 32, "bb" * 32, view["prev_hash"],
                view["created_at"], 0, None, "admin"]
        assert hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest() == view["entry_hash"]
        lineage = translog.entry_view(translog.events_of(s, translog.release_entry(s, "gen_b"))[0])
        assert (lineage["origin_index"], lineage["cause"], lineage["video_sha256"]) == (0, "lineage", "dd" * 32)
        assert "cause" not in translog.entry_view(release)  # versions 1 and 2 show what they hash
        head = translog.head(s)
        for index in (0, 2):
            proof = translog.inclusion(s, index)
            assert merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), index, head.size,
                                           [bytes.fromhex(h) for h in proof["inclusion_proof"]],
                                           bytes.fromhex(head.root_hash))
