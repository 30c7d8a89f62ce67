"""A skeptical pass over what changed since c0ee595 (review s24): the asynchronous commit of generation requests
(ADR 0018), the SQLite write turns (``governance.db._begin_immediate``) and the servers' ``RequireHost``. Each
finding's test reproduces it as the service meets it; the attacks that held are kept below them as tests too."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from governance import db
from governance.accounts.models import Account, Role
from governance.accounts.services import create_account
from governance.app import create_app
from governance.db import make_engine, serialize_consent, serialize_quota, unit_of_work
from governance.likenesses.models import Likeness, Verification
from tests.servers import start, stop


# -- what each committed transaction ran, and at which durability --------------------------------------------------
@dataclass
class Commit:
    """One committed transaction on one connection: whether it waited for the disk (SQLite ``synchronous=FULL``,
    PostgreSQL ``synchronous_commit`` on) and its statements, upper-cased."""

    durable: bool
    statements: list[str] = field(default_factory=list)

    def wrote(self, table: str) -> bool:
        return any(q.startswith(f"INSERT INTO {table.upper()} ") for q in self.statements)


def _watch_commits(app: Flask) -> list[Commit]:
    """Every transaction the app's engine commits from now on, in order (every connection is made anew).

    SQLite: the statements SQLite itself runs (its trace callback: the sqlite3 module's implicit ``BEGIN`` and
    ``COMMIT`` and the raw ``PRAGMA synchronous`` included), the level of each connection followed from its
    ``PRAGMA synchronous=`` statements outside transactions (SQLite refuses them inside). PostgreSQL: the statements
    SQLAlchemy sends, a transaction being asynchronous when it ran ``SET LOCAL synchronous_commit TO off``."""
    engine: sa.Engine = app.extensions["consentgate"].engine
    commits: list[Commit] = []
    guard = threading.Lock()
    if engine.dialect.name == "sqlite":
        def trace(dbapi: sqlite3.Connection, _record: Any) -> None:
            state = {"level": "FULL", "open": False, "statements": []}

            def seen(q: str) -> None:
                q = " ".join(q.split()).upper()
                with guard:
                    if q.startswith("PRAGMA SYNCHRONOUS=") and not state["open"]:
                        state["level"] = q.split("=", 1)[1]
                    elif q.startswith(("BEGIN", "SAVEPOINT")) and not state["open"]:
                        state["open"], state["statements"] = True, [q]
                    elif q == "COMMIT" and state["open"]:
                        commits.append(Commit(state["level"] == "FULL", [*state["statements"], q]))
                        state["open"] = False
                    elif q == "ROLLBACK" and state["open"]:
                        state["open"] = False
                    elif state["open"]:
                        state["statements"].append(q)

            dbapi.set_trace_callback(seen)

        sa.event.listen(engine, "connect", trace)
    else:
        open_: dict[int, list[str]] = {}

        def before(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
            with guard:
                open_.setdefault(id(conn.connection.dbapi_connection), []).append(" ".join(statement.split()).upper())

        def commit(conn: sa.Connection) -> None:
            with guard:
                statements = open_.pop(id(conn.connection.dbapi_connection), [])
                commits.append(Commit("SET LOCAL SYNCHRONOUS_COMMIT TO OFF" not in statements, statements))

        def rollback(conn: sa.Connection) -> None:
            with guard:
                open_.pop(id(conn.connection.dbapi_connection), None)

        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "commit", commit)
        sa.event.listen(engine, "rollback", rollback)
    engine.pool.dispose()
    return commits


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.needs("PostgreSQL"))])
def database_url(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = create_app({"data_dir": tmp_path / "var", "worker": "none", "database_url": database_url,
                      "request_commit": "asynchronous"})
    try:
        yield app
    finally:
        app.extensions["consentgate"].close()


def _account(app: Flask, name: str) -> tuple[str, str]:
    with unit_of_work(app.extensions["consentgate"].engine) as s:
        account, token = create_account(s, name, "creator")
        return account.id, token


def _likeness_of(app: Flask, owner_id: str) -> str:
    """A live likeness of ``owner_id`` whose template is a random face embedding (no face of the tests' media)."""
    import numpy as np

    from detectors.enroll import Template

    emb = np.random.default_rng(7).normal(size=(2, 128)).astype(np.float32)
    template = Template(emb / np.linalg.norm(emb, axis=1, keepdims=True), "dlib-resnet-v1",
                        np.zeros((8, 8, 3), np.uint8)).to_bytes()
    with unit_of_work(app.extensions["consentgate"].engine) as s:
        lk = Likeness(owner_id=owner_id, backend="dlib-resnet-v1", template=template, embeddings=2,
                      verification=Verification.LIVE)
        s.add(lk)
        s.flush()
        return lk.id


def _request(app: Flask, token: str, **body: Any) -> dict[str, Any]:
    r = app.test_client().post("/v1/generations", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.get_json()
    answer: dict[str, Any] = r.get_json()
    return answer


# -- Finding 1 (medium): a refusal's notice to the likeness's owner (and guardian) could vanish in a power cut ------
# ADR 0018 lets a generation request's transaction commit without waiting for the disk because "if a power cut loses
# it, the request is simply gone ... nothing was generated, released or granted on its strength". But a request
# refused at the precheck also tells the owners of the likenesses it named ("likeness:use:blocked", copied to a
# minor's guardian: docs/guardians.md "the guardian is told of every use ... blocked"), and a request held for an
# owner's approval asks them: those notifications, written to another person, were committed asynchronously too
# (SQLite: INSERT INTO notification under synchronous=NORMAL; PostgreSQL: synchronous_commit off), so a power cut
# could take back a warning the owner may already have been shown, or never let them see it. Fixed: a request whose
# transaction tells anyone but its requester commits synchronously; one that tells nobody else keeps the trade.
def test_a_request_that_notifies_a_likeness_owner_waits_for_the_disk(app: Flask) -> None:
    owner_id, _ = _account(app, "owner")
    _, token = _account(app, "prober")
    lk = _likeness_of(app, owner_id)
    commits = _watch_commits(app)
    refused = _request(app, token, prompt="a walk on the beach", likenesses=[lk])
    assert refused["state"] == "blocked"
    told = [c for c in commits if c.wrote("notification")]
    assert len(told) == 1 and told[0].wrote("generation")
    assert told[0].durable, "the owner's notice of a refused use committed without waiting for the disk"
    plain = _request(app, token, prompt="a lighthouse at dawn")  # tells nobody: still asynchronous (ADR 0018)
    assert plain["state"] == "prechecked"
    mine = [c for c in commits if c.wrote("generation") and not c.wrote("notification")]
    assert len(mine) == 1 and not mine[0].durable


# -- Finding 2 (low): waitress sent a body after RequireHost's 400 to a HEAD, desynchronising the connection ---------
# Request (consentgate serve, one waitress process), on one keep-alive connection:
#   HEAD /healthz HTTP/1.1            (no Host: RequireHost's 400)
#   GET /healthz HTTP/1.1, Host: t
# The 400 to the HEAD came with its problem+json body (waitress passes on what the app returns; werkzeug leaves it
# out for the app's own answers, RequireHost stands before werkzeug), so a client read that body as the start of the
# next answer: http.client raised BadStatusLine on the GET. gunicorn drops the body itself (and logs "WSGI app sent
# body bytes on a no-body response"). A HEAD's answer has no content (RFC 9110 section 9.3.2). Fixed: RequireHost
# answers a HEAD with the headers alone.
@pytest.fixture(scope="module", params=["one process", "two workers"])
def server_port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if request.param == "two workers":
        pytest.importorskip("gunicorn")
    args = ("--workers", "2") if request.param == "two workers" else ()
    proc, port, _ = start(tmp_path_factory.mktemp("serve"), *args)
    try:
        yield port
    finally:
        stop(proc)


def test_a_head_without_host_gets_a_400_without_a_body_and_the_connection_goes_on(server_port: int) -> None:
    """Read as a client reads a keep-alive connection: the answer to a HEAD ends with its header section, whatever
    its ``Content-Length`` says, and the next answer starts right after it."""
    raw = b"HEAD /healthz HTTP/1.1\r\n\r\n" b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server_port), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while got := sock.recv(65536):
            data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in head, data
    assert rest.startswith(b"HTTP/1.1 200 "), f"bytes after the HEAD's answer: {rest[:120]!r}"


# -- Attacks on ADR 0018 that held: no transaction but a request's commits without waiting for the disk -------------
_REQUEST_TABLES = ("GENERATION", "GENERATIONLIKENESS", "GENERATIONCHARACTER", "AUDITEVENT", "GENERATIONEDGE")


def _only_requests_are_asynchronous(commits: list[Commit]) -> None:
    """Every transaction that did not wait for the disk inserted a generation request and wrote nothing but the
    request's own rows (no notification, grant, likeness, log entry, release...)."""
    for c in commits:
        if c.durable:
            continue
        writes = [q for q in c.statements if q.startswith(("INSERT", "UPDATE", "DELETE"))]
        assert c.wrote("generation"), f"an asynchronous commit that is no request: {writes}"
        others = [q for q in writes if q.split()[2 if q.startswith(("INSERT", "DELETE")) else 1].strip('"')
                  not in _REQUEST_TABLES]
        assert others == [], f"an asynchronous request wrote more than the request: {others}"


def test_the_pipeline_consent_changes_and_refusals_after_requests_all_wait_for_the_disk(tmp_path: Path) -> None:
    """A request, its whole way through the in-process pipeline (worker thread) to the release, a grant and its
    revocation, a request refused for a bad field (the level lowered, then rolled back), a request over the quota:
    on the same pool, every transaction but the requests' commits synchronously."""
    import time

    app = create_app({"data_dir": tmp_path / "var", "worker": "thread", "request_commit": "asynchronous",
                      "daily_quota": 3})
    try:
        owner_id, owner = _account(app, "owner")
        _, requester = _account(app, "requester")
        lk = _likeness_of(app, owner_id)
        commits = _watch_commits(app)
        client = app.test_client()

        def call(method: str, path: str, token: str, **kw: Any) -> Any:
            return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, **kw)

        gen = _request(app, requester, prompt="a lighthouse at dawn")
        assert call("PUT", f"/v1/likenesses/{lk}/grants/requester", owner).status_code == 201
        assert call("POST", "/v1/generations", requester, json={"prompt": "x", "seed": "nope"}).status_code == 422
        assert call("DELETE", f"/v1/likenesses/{lk}/grants/requester", owner).status_code == 204
        _request(app, requester, prompt="a harbour at night")
        _request(app, requester, prompt="a comet over the sea")
        assert call("POST", "/v1/generations", requester, json={"prompt": "one too many"}).status_code == 429
        deadline = time.monotonic() + 300
        state = ""
        while time.monotonic() < deadline and state not in ("released", "blocked"):
            time.sleep(0.2)
            state = call("GET", f"/v1/generations/{gen['id']}", requester).get_json()["state"]
        assert state == "released", state
        app.extensions["consentgate"].pipeline.stop()
        assert sum(not c.durable for c in commits) == 3  # the three requests
        assert any(c.durable and c.wrote("logentry") for c in commits)  # the release
        assert any(c.durable and c.wrote("grant") for c in commits)
        _only_requests_are_asynchronous(commits)
    finally:
        app.extensions["consentgate"].close()


# -- Attacks on the write turns that held: no turn outlives its transaction, whatever the session is bound to -------
@pytest.fixture
def engine(sqlite_file_engine: sa.Engine) -> sa.Engine:
    return sqlite_file_engine


def _turn_free(engine: sa.Engine) -> bool:
    lock = db._turns.get(str(engine.url.database))
    return lock is None or not lock.locked()


def _another_thread_writes(engine: sa.Engine, account_id: str) -> None:
    """A writer of another thread that must get its turn at once (a turn never given back would hold it for
    the busy timeout): it waits for the turn with no patience at all."""
    failures: list[BaseException] = []

    def write() -> None:
        try:
            lock = db._turns[str(engine.url.database)]
            assert lock.acquire(blocking=False), "the turn is still held"
            lock.release()
            with Session(engine) as s:
                serialize_consent(s, [account_id])
                s.add(Account(id=account_id, name=account_id, role=Role.CREATOR, token_hash=account_id))
                s.commit()
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    t = threading.Thread(target=write)
    t.start()
    t.join(60)
    assert failures == []


def test_a_session_joined_to_an_outer_transaction_gives_its_turn_back(engine: sa.Engine) -> None:
    """``Session(bind=conn)`` inside the connection's own transaction, as tests and scripts do: the session's end
    gives the turn back; a session dropped without ending keeps it only until its connection begins another
    transaction or returns to the pool (nothing in the service binds a session to a connection: an idle connection
    of a script holding a turn would make the process's other writers wait up to their busy timeout)."""
    with engine.connect() as conn:
        conn.begin()
        with Session(bind=conn) as s:
            serialize_quota(s, "acc_1")
            s.add(Account(id="acc_1", name="one", role=Role.CREATOR, token_hash="h1"))
            s.commit()  # the outer transaction goes on
        assert _turn_free(engine)
        conn.commit()
    for end in ("next transaction", "return to the pool"):
        with engine.connect() as conn:
            conn.begin()
            s = Session(bind=conn)
            serialize_quota(s, "acc_2")  # the session is dropped, never closed
            conn.rollback()
            if end == "next transaction":
                conn.begin()
                assert _turn_free(engine)
                conn.rollback()
        assert _turn_free(engine)
    _another_thread_writes(engine, "acc_3")
    with Session(engine) as s:
        assert sorted(a.id for a in s.exec(select(Account)).all()) == ["acc_1", "acc_3"]


def test_an_invalidated_connection_gives_its_turn_back(engine: sa.Engine) -> None:
    with Session(engine) as s:
        serialize_quota(s, "acc_1")
        s.connection().invalidate()  # the connection is thrown away (a disconnect, an I/O error)
        s.rollback()
    assert _turn_free(engine)
    _another_thread_writes(engine, "acc_2")


def test_a_lowered_connection_thrown_away_comes_back_synchronous(engine: sa.Engine) -> None:
    from governance.db import commit_asynchronously

    engine.pool.dispose()
    with Session(engine) as s:
        commit_asynchronously(s)
        assert s.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        s.connection().invalidate()
        s.rollback()
    with Session(engine) as s:
        assert s.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


# -- Finding 3 (low, fixed): a writer could wait twice the busy timeout before "database is locked": first up to 30 s
# for its process's turn, then up to its connection's busy timeout again in BEGIN IMMEDIATE. The turn's wait now counts
# against the busy timeout. Here a connection with a 200 ms busy timeout, behind a transaction of the same process that
# holds the turn for 3 s, is refused after its 200 ms, as it would be behind another process's writer.
def test_a_writer_behind_its_own_process_waits_no_longer_than_its_busy_timeout(engine: sa.Engine,
                                                                              tmp_path: Path) -> None:
    impatient = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    sa.event.listen(impatient, "connect", lambda dbapi, _r: dbapi.execute("PRAGMA busy_timeout=200"))
    outcome: list[str] = []

    def write() -> None:
        try:
            with Session(impatient) as s:
                serialize_quota(s, "acc_2")
                s.rollback()
            outcome.append("went on")
        except sa.exc.OperationalError as e:
            outcome.append(str(e.orig))

    try:
        with Session(engine) as s:
            serialize_quota(s, "acc_1")  # this thread's turn and the write lock, held until the other gives up
            t = threading.Thread(target=write)
            t.start()
            t.join(3)  # (it gives up after its 200 ms busy timeout, or waits here for the turn)
            s.rollback()
        t.join(60)
        assert outcome == ["database is locked"]
    finally:
        impatient.dispose()
