"""``governance.db.commit_asynchronously`` (issue 12, docs/adr/0018): a generation request's transaction commits
without waiting for the disk; every other transaction, including the next one on the same connection, waits as
configured. On SQLite (``PRAGMA synchronous`` of the transaction) and PostgreSQL (``synchronous_commit``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from governance.accounts.models import Account, Role
from governance.accounts.services import create_account
from governance.app import create_app
from governance.config import Settings
from governance.db import commit_asynchronously, init_db, make_engine, unit_of_work
from governance.errors import ConfigError


def _level(session: Session) -> Any:
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        return {0: "OFF", 1: "NORMAL", 2: "FULL"}[conn.exec_driver_sql("PRAGMA synchronous").scalar()]
    return conn.exec_driver_sql("SHOW synchronous_commit").scalar()


@pytest.fixture
def sqlite_engine(sqlite_file_engine: sa.Engine) -> sa.Engine:
    return sqlite_file_engine


def test_sqlite_the_transaction_commits_at_normal_and_the_next_one_at_full_again(sqlite_engine: sa.Engine) -> None:
    sqlite_engine.pool.dispose()  # one connection, reused: the next transaction runs where the last one ran
    with Session(sqlite_engine) as s:
        s.exec(select(Account)).all()  # reads first, as a request does (no transaction on SQLite yet)
        commit_asynchronously(s)
        assert _level(s) == "NORMAL"
        s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h"))
        s.commit()
        assert _level(s) == "FULL"  # a new transaction, the same pooled connection
        s.add(Account(id="acc_b", name="b", role=Role.CREATOR, token_hash="i"))
        s.commit()
    with Session(sqlite_engine) as s:
        assert _level(s) == "FULL"
        assert len(s.exec(select(Account)).all()) == 2  # both committed


def test_sqlite_a_rollback_puts_the_level_back_too(sqlite_engine: sa.Engine) -> None:
    with Session(sqlite_engine) as s:
        commit_asynchronously(s)
        s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h"))
        s.flush()
        s.rollback()
        assert _level(s) == "FULL"
        assert s.exec(select(Account)).all() == []


def test_sqlite_too_late_in_a_transaction_that_wrote_it_stays_synchronous(sqlite_engine: sa.Engine) -> None:
    with Session(sqlite_engine) as s:
        s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h"))
        s.flush()  # the write lock is held: SQLite would refuse to change the level now
        commit_asynchronously(s)
        assert _level(s) == "FULL"
        s.commit()


def test_sqlite_already_normal_or_in_memory_nothing_changes(tmp_path: Path) -> None:
    for engine in (make_engine(f"sqlite:///{tmp_path / 'n.db'}", sqlite_synchronous="normal"),
                   make_engine("sqlite://")):
        init_db(engine)
        seen: list[str] = []
        sa.event.listen(engine, "connect", lambda dbapi, _r, seen=seen: dbapi.set_trace_callback(seen.append))
        engine.pool.dispose()
        with Session(engine) as s:
            before = _level(s)
            commit_asynchronously(s)
            assert _level(s) == before
            s.commit()
        assert not [q for q in seen if q.upper().startswith("PRAGMA SYNCHRONOUS=")]
        engine.dispose()


def test_postgresql_synchronous_commit_is_off_for_the_transaction_only(pg_url: str) -> None:
    engine = make_engine(pg_url)
    init_db(engine)
    try:
        with Session(engine) as s:
            assert _level(s) == "on"
            commit_asynchronously(s)
            assert _level(s) == "off"
            s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h"))
            s.commit()
            assert _level(s) == "on"  # SET LOCAL: gone with the transaction
            assert s.get(Account, "acc_a") is not None
    finally:
        engine.dispose()


def test_the_setting_refuses_anything_else() -> None:
    assert Settings().request_commit == "asynchronous"
    assert Settings.from_env({"GOVERNANCE_REQUEST_COMMIT": "synchronous"}).request_commit == "synchronous"
    with pytest.raises(ConfigError, match="request_commit must be 'asynchronous' or 'synchronous', got 'off'"):
        Settings(request_commit="off")


def _traced(app: Any) -> list[tuple[int, str]]:
    """Every statement SQLite runs on the app's connections, with the connection's id, from now on."""
    seen: list[tuple[int, str]] = []
    engine = app.extensions["consentgate"].engine

    def trace(dbapi: sqlite3.Connection, _record: Any) -> None:
        dbapi.set_trace_callback(lambda q: seen.append((id(dbapi), " ".join(q.split()).upper())))

    sa.event.listen(engine, "connect", trace)
    engine.pool.dispose()
    return seen


@pytest.mark.parametrize("setting", ["asynchronous", "synchronous"])
def test_a_generation_request_commits_as_set_and_the_next_transaction_waits_for_the_disk(
        tmp_path: Path, setting: str) -> None:
    app = create_app({"data_dir": tmp_path / "var", "worker": "none", "request_commit": setting})
    try:
        engine = app.extensions["consentgate"].engine
        with unit_of_work(engine) as s:
            _, token = create_account(s, "requester", "creator")
        seen = _traced(app)
        r = app.test_client().post("/v1/generations", json={"prompt": "a lighthouse at dawn"},
                                   headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 202, r.get_json()
        with unit_of_work(engine) as s:  # a consent change would commit like this: synchronously
            create_account(s, "someone", "creator")
        gen_conn = next(c for c, q in seen if q.startswith("INSERT INTO GENERATION "))
        on_it = [q for c, q in seen if c == gen_conn]
        begin = on_it.index("BEGIN IMMEDIATE")
        commit = on_it.index("COMMIT", begin)
        lowered = [i for i, q in enumerate(on_it) if q == "PRAGMA SYNCHRONOUS=NORMAL"]
        if setting == "asynchronous":
            assert lowered and lowered[0] < begin  # set before the transaction's first write
        else:
            assert lowered == []
        account_conn = next(c for c, q in seen if q.startswith("INSERT INTO ACCOUNT "))
        on_that = [q for c, q in seen if c == account_conn]
        insert = next(i for i, q in enumerate(on_that) if q.startswith("INSERT INTO ACCOUNT "))
        levels = [q for q in on_that[:insert] if q.startswith("PRAGMA SYNCHRONOUS=")]
        if account_conn == gen_conn and setting == "asynchronous":
            assert levels[-1] == "PRAGMA SYNCHRONOUS=FULL"  # put back after the request's commit
            assert on_that.index("PRAGMA SYNCHRONOUS=FULL", commit) < insert
        else:
            assert "PRAGMA SYNCHRONOUS=NORMAL" not in levels
    finally:
        app.extensions["consentgate"].close()
