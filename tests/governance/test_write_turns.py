"""SQLite writers of one process take turns at the write lock (``governance.db._begin_immediate``, issue 12): a turn
is taken by ``serialize_quota``/``serialize_consent`` and given back however the transaction ends, so no thread
ever waits for a turn nobody holds."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from governance import db
from governance.accounts.models import Account, Role
from governance.db import make_engine, serialize_consent, serialize_quota


@pytest.fixture
def engine(sqlite_file_engine: sa.Engine) -> sa.Engine:
    return sqlite_file_engine


def _turn(engine: sa.Engine) -> threading.Lock:
    return db._turns[str(engine.url.database)]


def _account(i: int) -> Account:
    return Account(id=f"acc_{i}", name=f"a{i}", role=Role.CREATOR, token_hash=f"h{i}")


def test_the_turn_is_held_to_the_end_of_the_transaction_however_it_ends(engine: sa.Engine) -> None:
    with Session(engine) as s:  # committed
        serialize_quota(s, "acc_1")
        assert _turn(engine).locked()
        serialize_consent(s, ["acc_1"])  # the same transaction: no second turn (it would wait for itself)
        s.add(_account(1))
        s.commit()
        assert not _turn(engine).locked()
    with Session(engine) as s:  # rolled back
        serialize_consent(s, ["acc_2"])
        s.add(_account(2))
        s.flush()
        s.rollback()
        assert not _turn(engine).locked()
    with Session(engine) as s:  # abandoned: the session closes with the transaction open
        serialize_quota(s, "acc_3")
        s.add(_account(3))
        s.flush()
    assert not _turn(engine).locked()
    with Session(engine) as s:
        assert [a.id for a in s.exec(select(Account)).all()] == ["acc_1"]


def test_a_begin_that_fails_gives_the_turn_back(engine: sa.Engine, tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, as SQLite sees it
    impatient = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    sa.event.listen(impatient, "connect", lambda dbapi, _r: dbapi.execute("PRAGMA busy_timeout=50"))
    try:
        with Session(impatient) as s, pytest.raises(sa.exc.OperationalError, match="database is locked"):
            serialize_quota(s, "acc_1")
        assert not _turn(impatient).locked()
    finally:
        holder.rollback()
        holder.close()
        impatient.dispose()


def test_threads_take_turns_and_every_request_commits(engine: sa.Engine) -> None:
    errors: list[BaseException] = []

    def requests(t: int) -> None:
        try:
            for i in range(25):
                with Session(engine) as s:
                    s.exec(select(Account).where(Account.id == "nobody")).first()  # reads before the lock
                    serialize_quota(s, f"acc_{t}")
                    s.add(_account(t * 100 + i))
                    s.commit()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=requests, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert not _turn(engine).locked()
    with Session(engine) as s:
        assert len(s.exec(select(Account)).all()) == 200


def test_a_forked_process_starts_with_turns_of_its_own(engine: sa.Engine) -> None:
    with Session(engine) as s:
        serialize_quota(s, "acc_1")  # held by this thread while the process forks
        pid = os.fork()
        if pid == 0:  # the child: the parent's held turn must not be its own
            ok = not db._turns and not db._turns_guard.locked()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        s.rollback()
    assert os.waitstatus_to_exitcode(status) == 0


_HOLDER = """
import sys
from sqlmodel import Session
from governance.db import make_engine, serialize_quota
engine = make_engine(sys.argv[1])
with Session(engine) as s:
    serialize_quota(s, "acc_other")  # its turn, the turn file's lock and SQLite's write lock
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    s.rollback()
engine.dispose()
"""


def test_writers_of_two_processes_take_turns_through_the_turn_file(engine: sa.Engine, tmp_path: Path) -> None:
    import stat
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'g.db'}"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        impatient = make_engine(url)
        sa.event.listen(impatient, "connect", lambda dbapi, _r: dbapi.execute("PRAGMA busy_timeout=300"))
        try:
            with Session(impatient) as s, pytest.raises(sa.exc.OperationalError, match="database is locked"):
                serialize_quota(s, "acc_1")  # behind the other process for its whole budget: refused
            assert not _turn(impatient).locked()  # and its own process's turn given back
        finally:
            impatient.dispose()
        assert holder.stdin is not None
        holder.stdin.close()  # the other process ends its transaction
        assert holder.wait(60) == 0
        with Session(engine) as s:  # now this one's turn comes at once
            serialize_quota(s, "acc_1")
            s.add(_account(1))
            s.commit()
    finally:
        holder.kill()
        holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()
    mode = stat.S_IMODE(os.stat(tmp_path / "g.db-turns").st_mode)
    assert mode == 0o600 and os.path.getsize(tmp_path / "g.db-turns") == 0
