"""``db.serialize_consent``: the lock consent changes and the release take (docs/security.md). The races it
settles are driven end to end in tests/functional/test_consent_races.py; here, what it holds on each database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from governance.db import _CONSENT_LOCK_CLASS, _consent_lock_key, init_db, make_engine, serialize_consent
from governance.models import Counter


def test_on_sqlite_it_takes_the_write_lock_before_any_write_and_leaves_readers_alone(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with Session(engine) as s:
            s.exec(select(Counter)).all()  # a read first: the sqlite3 module begins nothing for it
            serialize_consent(s, ["acc_a"])
            assert other.execute("SELECT count(*) FROM counter").fetchone() == (2,)  # readers go on (WAL)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # writers wait
            serialize_consent(s, ["acc_b"])  # again in the same transaction: already held
            s.commit()
        other.execute("BEGIN IMMEDIATE")  # released by the commit
        other.execute("ROLLBACK")
        with Session(engine) as s:
            s.execute(sa.update(Counter).values(value=Counter.value))  # type: ignore[arg-type]  # writes first
            serialize_consent(s, [])  # holds the lock since that write: nothing to begin
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            s.rollback()
    finally:
        other.close()
        engine.dispose()


def test_on_postgres_it_locks_each_account_to_the_end_of_the_transaction(pg_url: str) -> None:
    engine = make_engine(pg_url)
    init_db(engine)

    def free(conn: sa.Connection, account_id: str) -> bool:
        return bool(conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:c, :k)"),
                                 {"c": _CONSENT_LOCK_CLASS, "k": _consent_lock_key(account_id)}).scalar())

    try:
        with engine.connect() as other:
            with Session(engine) as s:
                serialize_consent(s, ["acc_bob", "acc_alice", "acc_bob"])
                assert not free(other, "acc_alice") and not free(other, "acc_bob")
                assert free(other, "acc_carol")  # other accounts' consent is not held up
                other.rollback()
                s.commit()
            assert free(other, "acc_alice") and free(other, "acc_bob")
            other.rollback()
    finally:
        engine.dispose()
