from pathlib import Path

import pytest
from sqlmodel import Session

from governance.config import ConfigError, Settings
from governance.db import init_db, make_engine, unit_of_work
from governance.log.services import translog


def test_settings_from_env():
    s = Settings.from_env({"GOVERNANCE_DAILY_QUOTA": "5", "GOVERNANCE_DATA_DIR": "/tmp/x",
                           "GOVERNANCE_SECRET_KEY": "hunter2"})
    assert s.daily_quota == 5 and s.data_dir == Path("/tmp/x")
    assert "hunter2" not in repr(s)
    with pytest.raises(ConfigError):
        Settings.from_env({"GOVERNANCE_PORT": "eighty"})
    with pytest.raises(ConfigError):
        Settings(daily_quota=-1)
    with pytest.raises(ConfigError):
        Settings().with_overrides({"colour": "red"})
    assert Settings.from_env({"GOVERNANCE_SCAN_THOROUGH_EVERY_S": "4"}).scan_thorough_every_s == 4.0
    with pytest.raises(ConfigError, match="needs generator_dir"):
        Settings(generator="diffusers")
    with pytest.raises(ConfigError, match="'procedural' or 'diffusers'"):
        Settings(generator="sora")
    with pytest.raises(ConfigError, match="scan_thorough_every_s"):
        Settings(scan_thorough_every_s=-1.0)


def test_translog_chain_detects_edits():
    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        for i in range(5):
            translog.append(s, f"gen{i}", f"{i:016x}", "aa" * 32, "bb" * 32)
    with Session(engine) as s:
        entries = list(translog.all_entries(s))
        assert [e.index for e in entries] == list(range(5))
        assert translog.verify_chain(entries)
        entries[2].content_id = "ffffffffffffffff"
        assert not translog.verify_chain(entries)
        assert not translog.verify_chain(entries[:2] + entries[3:])


def test_translog_merkle_tree_gives_proofs_anyone_can_check():
    from provenance import merkle

    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        assert translog.head(s).to_dict() == {"tree_size": 0, "root_hash": merkle.EMPTY_ROOT.hex()}
        for i in range(11):  # several in one transaction: each append sees the nodes the previous one added
            translog.append(s, f"gen{i}", f"{i:016x}", "aa" * 32, "bb" * 32)
    with unit_of_work(engine) as s:
        for i in range(11, 23):
            translog.append(s, f"gen{i}", f"{i:016x}", "aa" * 32, "bb" * 32)
    with Session(engine) as s:
        leaves = [translog.leaf_hash(e) for e in translog.all_entries(s)]
        head = translog.head(s)
        assert head.size == 23 and head.root_hash == merkle.root_of(leaves).hex() and translog.verify_tree(s)
        for index in (0, 7, 16, 22):
            p = translog.inclusion(s, index)
            assert p["tree_size"] == 23 and p["root_hash"] == head.root_hash and p["index"] == index
            proof = [bytes.fromhex(h) for h in p["inclusion_proof"]]
            root = bytes.fromhex(head.root_hash)
            assert merkle.verify_inclusion(bytes.fromhex(p["leaf_hash"]), index, 23, proof, root)
        older = translog.inclusion(s, 3, tree_size=9)  # against a head a verifier saw earlier
        assert older["root_hash"] == merkle.root_of(leaves[:9]).hex()
        c = translog.consistency(s, 9)
        assert merkle.verify_consistency(9, 23, bytes.fromhex(c["old_root_hash"]), bytes.fromhex(c["root_hash"]),
                                         [bytes.fromhex(h) for h in c["consistency_proof"]])
        from governance.errors import InvalidInput, NotFound

        with pytest.raises(NotFound):
            translog.inclusion(s, 23)
        with pytest.raises(InvalidInput, match="tree_size must be between 1 and the log's size 23"):
            translog.inclusion(s, 3, tree_size=24)
        with pytest.raises(InvalidInput, match="not in the first 3"):
            translog.inclusion(s, 5, tree_size=3)
        with pytest.raises(InvalidInput, match="old size"):
            translog.consistency(s, 0)
        # an entry edited in place no longer matches the tree built when it was appended
        s.get(translog.LogEntry, 5).entry_hash = "ff" * 32
        assert not translog.verify_tree(s)


def test_rate_limiter_refills():
    from governance.ratelimit import RateLimiter

    now = [0.0]
    rl = RateLimiter(60, clock=lambda: now[0])  # one a second, burst 60
    assert all(rl.acquire("a") == 0.0 for _ in range(60))
    assert rl.acquire("a") == pytest.approx(1.0)
    assert rl.acquire("b") == 0.0
    now[0] += 2.0
    assert rl.acquire("a") == 0.0
    assert RateLimiter(0).acquire("a") == 0.0  # 0: unlimited


def test_enrollment_settings():
    assert Settings.from_env({"GOVERNANCE_CHALLENGE_TTL_S": "60"}).challenge_ttl_s == 60.0
    for bad in (5, 7200):
        with pytest.raises(ConfigError, match="challenge_ttl_s"):
            Settings(challenge_ttl_s=bad)
    for bad in ("no_colon", " mod:factory"):
        with pytest.raises(ConfigError, match="identity_proof"):
            Settings(identity_proof=bad)


@pytest.mark.parametrize("module", ["policies.consent", "governance.identity"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_a_found_face_defers_only_to_likenesses_on_every_track_it_matched():
    from governance.likenesses.services.likenesses import found_alongside

    faces = [{"likeness": "lk_a", "track": 1}, {"likeness": "lk_b", "track": 1},
             {"likeness": "lk_b", "track": 2}, {"likeness": "lk_c", "track": 2}, {"likeness": "lk_a", "track": 3}]
    assert found_alongside(faces, named=["lk_a"]) == {"lk_b": set(), "lk_c": {"lk_b"}}
    assert found_alongside(faces[:2], named=[]) == {"lk_a": {"lk_b"}, "lk_b": {"lk_a"}}
