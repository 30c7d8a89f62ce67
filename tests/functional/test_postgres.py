"""The scale path: the same service on a real PostgreSQL server (127.0.0.1:5432, trust auth), never mocked."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

psycopg = pytest.importorskip("psycopg")
ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"cg_test_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_gate_on_postgres(pg_url, make_api, faces_dir):  # pg_url first: dropped after the app is closed
    api = make_api(database_url=pg_url)
    assert api.rt.engine.dialect.name == "postgresql"
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll(alice, faces_dir / "biden2.jpg")
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
