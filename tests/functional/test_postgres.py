"""The scale path: the same service on a real PostgreSQL server (127.0.0.1:5432, trust auth), never mocked."""

from __future__ import annotations

import pytest

psycopg = pytest.importorskip("psycopg")  # pg_url (conftest.py) makes a database per test


def test_gate_on_postgres(pg_url, make_api, faces_dir):  # pg_url first: dropped after the app is closed
    api = make_api(database_url=pg_url)
    assert api.rt.engine.dialect.name == "postgresql"
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_live(alice, faces_dir / "biden2.jpg")
    assert api.generate(bob, "night city", [lk["id"]])["state"] == "blocked"
    api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice)
    done = api.wait(bob, api.generate(bob, "night city", [lk["id"]])["id"])
    assert done["state"] == "released", done["reasons"]
    assert done["created_at"].endswith("+00:00")
    report = api.verify(api.download(bob, done["id"])).get_json()
    assert report["c2pa"]["state"] == "Trusted"
    assert report["record"]["generation_id"] == done["id"]
    # a wrong revoke is a clean 404 and changes nothing; a right one takes effect for the next request
    assert api.call("DELETE", f"/v1/likenesses/{lk['id']}/grants/alice", alice).status_code == 404
    assert api.call("DELETE", f"/v1/likenesses/{lk['id']}/grants/bob", alice).status_code == 204
    assert api.generate(bob, "night city", [lk["id"]])["state"] == "blocked"
    assert len(api.notifications(alice)) == 3


def test_releases_on_several_workers_append_to_the_log_one_at_a_time(pg_url):
    """Workers releasing at the same moment each get the next log index and a consistent Merkle tree: an
    advisory lock orders the appends (without it, two would take the same index and one release fail)."""
    import threading
    import time

    from sqlmodel import Session

    from governance.db import init_db, make_engine, unit_of_work
    from governance.log.services import translog

    engine = make_engine(pg_url)
    init_db(engine)
    start, errors = threading.Barrier(4), []

    def worker(w: int) -> None:
        try:
            start.wait()
            for i in range(4):
                with unit_of_work(engine) as s:
                    translog.append(s, f"gen{w}-{i}", f"{w:08x}{i:08x}", "aa" * 32, "bb" * 32)
                    time.sleep(0.01)  # the rest of the release transaction
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with Session(engine) as s:
            entries = list(translog.all_entries(s))
            assert len(entries) == 16 and translog.verify_chain(entries) and translog.verify_tree(s)
    finally:
        engine.dispose()


def test_attribution_characters_on_postgres(pg_url, make_api):
    """The 'attribution' rule is a value migration 0004 adds to PostgreSQL's native enum type."""
    api = make_api(database_url=pg_url)
    studio, bob = api.account("studio", "rights_holder"), api.account("bob")
    ch = api.call("POST", "/v1/characters", studio,
                  json={"name": "Captain Comet", "rule": "attribution", "attribution": "(c) Studio"}).get_json()
    assert ch["rule"] == "attribution"
    gen = api.generate(bob, "captain comet at dawn")
    assert gen["state"] == "prechecked" and api.wait(bob, gen["id"])["state"] == "released"
    from governance.generations.models import GenerationCharacter

    with api.rt.session() as s:
        assert s.get(GenerationCharacter, (gen["id"], ch["id"])).allowed
    usage = api.call("GET", f"/v1/characters/{ch['id']}/usage", studio).get_json()
    assert usage["rule"] == "attribution" and usage["requests"] == 0  # one requester, today: not counted
