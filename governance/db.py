"""Engine creation and the unit of work. Services take a ``Session`` and never commit; callers do."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.bookkeeping import Counter, IndexChange
from governance.columns import utcnow
from governance.log.models import LogEntry

T = TypeVar("T")


def get_or_404(session: Session, model: type[T], key: Any, noun: str) -> T:
    """The row with primary key ``key``, or :class:`~governance.errors.NotFound` naming it."""
    from governance.errors import NotFound

    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {noun} {key!r}")
    return row


def make_engine(url: str, *, sqlite_synchronous: str = "full") -> sa.Engine:
    """An engine for ``url``. SQLite: WAL journal (readers never wait for the writer), foreign keys on, a writer
    waits up to 30 s for the write lock (busy timeout) rather than failing, and ``sqlite_synchronous``
    (``GOVERNANCE_SQLITE_SYNCHRONOUS``): ``"full"`` (the default) syncs the WAL at every commit, so a committed
    decision survives a power cut; ``"normal"`` syncs only at checkpoints: a commit is still atomic and survives
    a crash of the process, but a power cut or an OS crash may lose the last transactions (docs/performance.md,
    section 1: ~0.6-9 ms of a commit, depending on the disk's load). ``ValueError`` for any other value."""
    from governance.config import SQLITE_SYNCHRONOUS, sqlite_file

    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"sqlite_synchronous must be 'full' or 'normal', got {sqlite_synchronous!r}")
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        path = sqlite_file(url)  # the file, whichever form the URL names it in (None: in memory)
        database = str(path) if path is not None else str(engine.url.database or "")

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, record):  # type: ignore[no-untyped-def]
            _private_if_new(path)
            record.info[_DATABASE] = database
            cur = dbapi_conn.cursor()
            if path is not None:  # a file (in memory or temporary: no WAL, the default synchronous)
                journal = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                cur.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
                if str(journal).lower() == "wal":  # (NORMAL outside WAL risks corruption, not only loss: never lowered)
                    record.info[_SYNCHRONOUS] = sqlite_synchronous.upper()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _synchronous_again(conn):  # type: ignore[no-untyped-def]
            _give_back_turn(conn.info)
            _restore_synchronous(conn.info, conn.connection.driver_connection)

        @sa.event.listens_for(engine, "checkin")
        def _synchronous_again_in_pool(dbapi_conn, record):  # type: ignore[no-untyped-def]
            _give_back_turn(record.info)
            if dbapi_conn is not None:
                _restore_synchronous(record.info, dbapi_conn)

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


#: Keys of a SQLite connection's ``info``: the ``PRAGMA synchronous`` it was configured with, and whether
#: :func:`commit_asynchronously` lowered it for the transaction under way.
_SYNCHRONOUS = "sqlite_synchronous"
_LOWERED = "sqlite_synchronous_lowered"


def _restore_synchronous(info: dict[Any, Any], dbapi_conn: Any) -> None:
    """Put back the configured ``PRAGMA synchronous`` of a connection whose last transaction committed
    asynchronously, before its next transaction (or as it returns to the pool)."""
    if info.get(_LOWERED) and not dbapi_conn.in_transaction:  # (in one, SQLite refuses: the next call restores it)
        dbapi_conn.execute(f"PRAGMA synchronous={info[_SYNCHRONOUS]}")
        del info[_LOWERED]


def commit_asynchronously(session: Session) -> None:
    """Let the caller's transaction commit without waiting for its write-ahead log to reach the disk: PostgreSQL's
    *asynchronous commit* (``SET LOCAL synchronous_commit TO off``, for this transaction only); on SQLite, in WAL
    mode, ``PRAGMA synchronous=NORMAL`` for this transaction, and the configured level again for the connection's
    next one.

    What it trades (docs/adr/0018): the commit is atomic and survives a crash of the process either way; a power cut
    or an OS crash may lose it if no synchronous commit followed it. Both databases write their log in order, so
    the next synchronous commit (any consent change, release or log entry) makes every earlier one durable too: a
    transaction that depends on this one (it reads its rows) can never survive one that it lost.

    Call it before the transaction's first write: SQLite cannot change the level of a transaction under way (it
    then stays synchronous, which is always safe). SQLite at ``synchronous=normal`` already commits this way, and
    an in-memory database has no log: nothing to do for either."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        dbapi: Any = conn.connection.driver_connection
        if conn.info.get(_SYNCHRONOUS) == "FULL" and not conn.info.get(_LOWERED) and not dbapi.in_transaction:
            dbapi.execute("PRAGMA synchronous=NORMAL")
            conn.info[_LOWERED] = True
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO off")


def _private_if_new(path: Path | None) -> None:
    """A SQLite file just made (still empty) gets mode 0600 whatever the umask, before anything is written:
    it holds face templates (biometric data). Its -wal and -shm files take the same mode from it (SQLite gives them
    the database's). ``path`` is the file whichever form its URL took (:func:`governance.config.sqlite_file`: a path
    or a ``file:`` URI); None (in memory): nothing to do."""
    if path is None:
        return
    try:
        if os.stat(path).st_size == 0:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass


#: Not a count but a time (whole seconds since the epoch, UTC): from when this database's transparency log records
#: every takedown (revision 0014; ``log audit`` asks each takedown since for its entry). :func:`init_db` sets it
#: once, when it first finds it missing: then, or the first takedown/withdrawal entry's time if the log has an
#: earlier one (a database migrated to 0014 before the marker existed). Never bumped.
LOG_EVENTS_SINCE = "log_events_since"
COUNTERS = ("likenesses", "fingerprints", "characters", "figures", LOG_EVENTS_SINCE)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The revision whose schema ``SQLModel.metadata.create_all`` made before migrations existed.
BASELINE = "0001"
_MIGRATION_LOCK = 0x436F6E73  # a PostgreSQL advisory lock key: one process migrates at a time


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _migrating(engine: sa.Engine) -> Iterator[tuple[sa.Connection, Any]]:
    """One transaction for a migration step, and its Alembic config, holding a lock so processes
    starting together migrate one after the other: on PostgreSQL an advisory lock; on SQLite the
    database's write lock, taken up front (``BEGIN IMMEDIATE``) so the check for existing tables and the
    DDL are one transaction (the sqlite3 module would otherwise leave DDL outside any transaction)."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            yield conn, _alembic_config(conn)
        return
    with engine.connect() as conn:
        dbapi: Any = conn.connection.driver_connection  # the sqlite3.Connection
        managed = dbapi.isolation_level
        dbapi.isolation_level = None  # we say BEGIN; the commit or rollback of conn.begin() still ends it
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits for the write lock up to the busy timeout
                yield conn, _alembic_config(conn)
        finally:
            dbapi.isolation_level = managed


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the Alembic migrations in ``governance/migrations``.

    A database whose tables were made by ``create_all`` before migrations existed (no
    ``alembic_version`` table) is stamped as :data:`BASELINE` first. On PostgreSQL an advisory lock
    makes concurrent starts migrate one after the other. To add a migration after changing
    a domain's ``models.py``: ``python -m governance.db revision "what changed"``."""
    from alembic import command

    with _migrating(engine) as (conn, cfg):
        tables = set(sa.inspect(conn).get_table_names())
        if "alembic_version" not in tables and "likeness" in tables:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (``"base"``: no tables). For operators rolling back a release:
    ``consentgate db downgrade REVISION --yes``."""
    from alembic import command

    with _migrating(engine) as (_, cfg):
        command.downgrade(cfg, revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The migration the database is at (None: never migrated): ``consentgate db revision``."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_REVISION = re.compile(r"^(down_revision|revision) = ['\"]?([^'\"\s]+)['\"]?", re.M)


def head_revision() -> str:
    """The migration no other migration revises (the chain's head), read from the files' ``revision`` and
    ``down_revision`` lines without loading Alembic (a command that only reads the database starts ~0.5 s sooner:
    ``python -m bench verify``). Raises ``RuntimeError`` unless there is exactly one head."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text()))
        revisions.add(found["revision"])
        revised.add(found.get("down_revision", "None"))
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must form one chain; heads: {sorted(heads)}")
    return heads.pop()


def is_current(engine: sa.Engine) -> bool:
    """Whether the database is migrated to :func:`head_revision` and has its counters (then :func:`init_db`
    would change nothing)."""
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            counters = conn.execute(sa.select(sa.func.count()).select_from(Counter)).scalar()
    except sa.exc.DBAPIError:
        return False
    return version == head_revision() and counters == len(COUNTERS)


def init_db(engine: sa.Engine) -> None:
    migrate(engine)
    for name in COUNTERS:  # one transaction each: a process starting alongside may create any of them first
        with Session(engine) as session:
            if session.get(Counter, name) is not None:
                continue
            session.add(Counter(name=name, value=_first_value(session, name)))
            try:
                session.commit()
            except sa.exc.IntegrityError:  # it did
                session.rollback()


def _first_value(session: Session, name: str) -> int:
    """A new counter's value: 0, or for :data:`LOG_EVENTS_SINCE` the time its docstring says."""
    if name != LOG_EVENTS_SINCE:
        return 0
    first = session.exec(select(sa.func.min(LogEntry.created_at))
                         .where(LogEntry.kind != "release")).one()  # type: ignore[call-overload]
    since = utcnow()
    if isinstance(first, datetime):
        since = min(since, first if first.tzinfo else first.replace(tzinfo=UTC))
    return int(since.timestamp())


def logging_events_since(session: Session) -> datetime | None:
    """When the transparency log began recording every takedown here (:data:`LOG_EVENTS_SINCE`), or None when the
    database has no such marker (made without :func:`init_db`)."""
    value = counter(session, LOG_EVENTS_SINCE)
    return datetime.fromtimestamp(value, UTC) if value >= 0 else None


def bump(session: Session, name: str) -> None:
    """Increment a counter atomically, inside the caller's transaction."""
    session.execute(sa.update(Counter).where(Counter.name == name)  # type: ignore[arg-type]
                    .values(value=Counter.value + 1))


#: What the change feed follows: the counter (``kind``) and the name and key column of the tables it watches
#: (:class:`~governance.likenesses.models.Likeness`, :class:`~governance.likenesses.models.Figure`,
#: :class:`~governance.verification.models.ContentFingerprint`). By name, so that this module, which every service
#: imports, does not import those domains' models (a verification needs none of the likenesses' tables).
FEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "likenesses": (("likeness", "id"), ("figure", "id")),  # the face index holds figures too
    "fingerprints": (("contentfingerprint", "generation_id"),),
}
#: Table name -> (feed, key column).
_WATCHED = {table: (kind, key) for kind, watched in FEEDS.items() for table, key in watched}


def _watched(obj: Any) -> tuple[str, str] | None:
    """(feed, key column) of a row of a table the change feed watches, else None."""
    table = getattr(type(obj), "__table__", None)
    return None if table is None else _WATCHED.get(table.name)


def _feed_changes(session: Session, _ctx: Any) -> None:
    """After every flush, note each likeness, figure or fingerprint added, deleted or given a new template in the change
    feed (:class:`~governance.bookkeeping.IndexChange`), in the same transaction. The versions come from the feed's
    counter, bumped with ``UPDATE ... RETURNING`` whose row lock holds until the commit: transactions that change
    the same feed get versions in the order they commit, so a reader that has applied version N misses nothing
    by reading ``version > N`` (:func:`changes_since`). A bulk ``DELETE`` that bypasses the ORM is not seen."""
    found: dict[str, list[str]] = {}
    for o in (*session.new, *session.deleted):
        watched = _watched(o)
        if watched is not None:
            found.setdefault(watched[0], []).append(getattr(o, watched[1]))
    for o in session.dirty:  # a likeness or figure given a new template
        watched = _watched(o)
        if watched is not None and hasattr(type(o), "template") and sa.inspect(o).attrs.template.history.has_changes():
            found.setdefault(watched[0], []).append(getattr(o, watched[1]))
    changed = {kind: list(dict.fromkeys(found[kind])) for kind in FEEDS if kind in found}
    if not changed:
        return
    conn = session.connection()
    for kind, keys in changed.items():
        top = conn.execute(sa.update(Counter).where(col(Counter.name) == kind)
                           .values(value=col(Counter.value) + len(keys))
                           .returning(col(Counter.value))).scalar()
        if top is None:  # a database made before the counters (init_db makes them): nothing follows it yet
            continue
        first = int(top) - len(keys) + 1
        conn.execute(sa.insert(IndexChange), [  # type: ignore[arg-type]
            {"kind": kind, "version": first + i, "key": k, "created_at": utcnow()} for i, k in enumerate(keys)])


sa.event.listen(Session, "after_flush", _feed_changes)


def changes_since(session: Session, kind: str, after: int, upto: int) -> list[str]:
    """The keys the feed ``kind`` changed at versions ``after < v <= upto``, oldest first, each once (at its
    last change)."""
    version = col(IndexChange.version)
    rows = session.exec(select(IndexChange.key).where(
        col(IndexChange.kind) == kind, version > after, version <= upto).order_by(version)).all()
    return list(reversed(dict.fromkeys(reversed(rows))))


_COUNTER = Counter.__table__.c  # type: ignore[attr-defined]
#: Built once: constructing a statement and running it through the ORM cost ~5x the query itself (issue 12).
_READ_COUNTER = sa.select(_COUNTER.value).where(_COUNTER.name == sa.bindparam("name"))


def counter(session: Session, name: str) -> int:
    """The counter's value as the database holds it now (-1: no such counter), in the session's transaction. One
    column, read past the ORM (Core, on the session's connection): every decision reads two of these (issue 12:
    ~10x cheaper than loading the row, and ~5x cheaper again than building the select and running it through the
    ORM). Nothing is flushed first: counters change only by ``UPDATE`` statements that run at once (:func:`bump`,
    the change feed), never by pending objects."""
    value = session.connection().execute(_READ_COUNTER, {"name": name}).scalar()
    return -1 if value is None else int(value)


#: The first half of the two-int PostgreSQL advisory lock keys that :func:`serialize_consent` takes (two-int
#: keys never collide with one-int ones such as the migration and log-append locks).
_CONSENT_LOCK_CLASS = 0x436F6E43


_TURN = "sqlite_write_turn"  # the key, in a connection's and a session's ``info``, of the turn its transaction holds
#: The key, in a SQLite connection's ``info``, of its database: the file's absolute path (whichever form the URL named
#: it in), or the URL's name of a database in memory. Writers of one file share its turns.
_DATABASE = "sqlite_database"
_turns: dict[str, threading.Lock] = {}  # database path -> the lock this process's writers queue on
_turn_files: dict[str, int] = {}  # database path -> this process's descriptor of its turn file (-1: none)
_turns_guard = threading.Lock()
#: The longest pause between two tries at the turn file's lock, in seconds (the first is 0.1 ms).
_TURN_FILE_POLL_S = 0.0005


class _Turn:
    """One transaction's turn at a database's write lock, given back once (by whichever of the session's end of
    transaction, the connection's next transaction or its return to the pool comes first): the process's lock,
    and the turn file's lock where there is one."""

    __slots__ = ("_fd", "_lock")

    def __init__(self, lock: threading.Lock, fd: int | None) -> None:
        self._lock: threading.Lock | None = lock
        self._fd = fd

    def give_back(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            lock.release()


def _give_back_turn(info: dict[Any, Any]) -> None:
    turn = info.pop(_TURN, None)
    if turn is not None:
        turn.give_back()


def _forget_turns_in_child() -> None:
    """A forked process (gunicorn's workers) starts with turns of its own: a lock held by a thread of the parent
    would never be released in the child, and a descriptor shared with the parent shares its file lock."""
    global _turns_guard
    _turns_guard = threading.Lock()
    _turns.clear()
    for fd in _turn_files.values():
        if fd >= 0:
            os.close(fd)  # (the parent keeps its own descriptor, and its lock, if it holds one)
    _turn_files.clear()


os.register_at_fork(after_in_child=_forget_turns_in_child)


@sa.event.listens_for(Session, "after_transaction_end")
def _turn_ends_with_the_transaction(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        _give_back_turn(session.info)


def _turn_file(database: str) -> int | None:
    """This process's descriptor of ``<database>-turns`` (an empty file, made 0600 beside the database like its
    ``-wal`` and ``-shm``; only its lock is used), ``database`` being the file's absolute path (``_DATABASE``,
    whether the URL named it by path or by ``file:`` URI), or None where there is no such file to share (a database
    in memory) or it cannot be made (a read-only directory: the process's lock alone then)."""
    fd = _turn_files.get(database)
    if fd is None:
        fd = -1
        if os.path.isabs(database):
            try:
                fd = os.open(database + "-turns", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                fd = -1
        _turn_files[database] = fd
    return fd if fd >= 0 else None


def _lock_file_by(fd: int, deadline: float) -> bool:
    """The turn file's lock (``flock``), tried every 0.1-0.5 ms until ``deadline`` (``time.monotonic``)."""
    pause = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
        time.sleep(pause)
        pause = min(2 * pause, _TURN_FILE_POLL_S)


def _busy_timeout_ms(dbapi: Any) -> int:
    """The connection's busy timeout (``PRAGMA busy_timeout``), in milliseconds: a writer's whole budget."""
    return int(dbapi.execute("PRAGMA busy_timeout").fetchone()[0])


def _begin_immediate(session: Session, conn: sa.Connection) -> None:
    """``BEGIN IMMEDIATE`` on ``conn`` unless its transaction has begun (it then holds the write lock or will
    take it at its first write), in turn with the other writers that take the lock here, of this process and of
    the others serving the same database.

    Why turns (issue 12, docs/performance.md section 1, fourth pass): SQLite's busy handler, which a connection
    finding the lock taken waits in, sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, so writers waiting on each
    other left the cores idle for most of a short write (~0.5 ms) and made the p99 of ``POST /v1/generations``
    120-135 ms (2 processes, 4 threads each). A writer now queues first on a lock of its process (which wakes the
    next thread at once), then on the lock of the database's turn file (``flock``; the one thread of each process
    that holds its process's turn tries it every 0.1-0.5 ms): p99 28 ms, and 650-690 decisions/s against 550-650.
    Only transactions that never call this (the pipeline's stages) meet the busy handler. The turn is given back
    when the session's transaction ends, and at the latest when the connection begins another transaction or
    returns to the pool. (The process's lock alone, without the file, measured worse than neither: 450-500/s, one
    thread of each process left polling SQLite.)

    One budget: the wait for the turn counts against the connection's busy timeout (``PRAGMA busy_timeout``, 30 s
    from :func:`make_engine`), so a writer is refused ("database is locked") no later than it would be by SQLite."""
    dbapi: Any = conn.connection.driver_connection  # the sqlite3.Connection (deferred BEGIN before DML)
    if dbapi.in_transaction:
        return
    database = str(conn.info.get(_DATABASE) or conn.engine.url.database or "")  # set on connecting (make_engine)
    with _turns_guard:
        lock = _turns.setdefault(database, threading.Lock())
        fd = _turn_file(database)
    budget_ms: int | None = None
    started = 0.0
    if lock.acquire(blocking=False):  # the common case: nobody of this process is writing
        ours = True
    else:
        budget_ms, started = _busy_timeout_ms(dbapi), time.monotonic()
        ours = lock.acquire(timeout=budget_ms / 1000)
    if ours and fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if budget_ms is None:
                budget_ms, started = _busy_timeout_ms(dbapi), time.monotonic()
            if not _lock_file_by(fd, started + budget_ms / 1000):
                lock.release()
                ours = False
    turn = _Turn(lock, fd) if ours else None
    if budget_ms is not None:
        dbapi.execute(f"PRAGMA busy_timeout={max(0, budget_ms - int((time.monotonic() - started) * 1000))}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits for the write lock up to the busy timeout (left)
    except BaseException:
        if turn is not None:
            turn.give_back()
        raise
    finally:
        if budget_ms is not None:
            dbapi.execute(f"PRAGMA busy_timeout={budget_ms}")
    if turn is not None:
        conn.info[_TURN] = session.info[_TURN] = turn


def _consent_lock_key(account_id: str) -> int:
    """An account's consent lock key: 32 bits of a hash (accounts that share one just wait on each other)."""
    return int.from_bytes(hashlib.sha256(account_id.encode()).digest()[:4], "big", signed=True)


def serialize_consent(session: Session, account_ids: Iterable[str]) -> None:
    """Take, for the rest of the caller's transaction, the lock that orders consent changes and releases
    involving the likenesses of ``account_ids`` (docs/security.md, "Consent changes and the release serialize").

    Every consent change (grant, revoke, mode, contact, likeness deletion) calls it first, before reading what
    it decides on, and so does the release transaction, before its final consent check: of a change and a
    release, whichever comes second waits until the other has committed, then sees it.

    - SQLite: the database's write lock, taken now with ``BEGIN IMMEDIATE`` (the sqlite3 module would only
      begin at the first write, after the reads), after this process's other writers (:func:`_begin_immediate`).
      A transaction that has written already holds it. Readers are not held up (WAL).
    - PostgreSQL: a transaction-level advisory lock per account, taken in ascending key order. Call this once
      per transaction, before any row lock (``FOR UPDATE``) or other advisory lock: every transaction then
      takes its locks in one order (consent locks, likeness rows by id, the log-append lock), so none
      deadlock."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        _begin_immediate(session, conn)
    elif conn.dialect.name == "postgresql":
        for key in sorted({_consent_lock_key(a) for a in account_ids}):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:cls, :key)"), {"cls": _CONSENT_LOCK_CLASS, "key": key})


_QUOTA_LOCK_CLASS = 0x51756F74  # "Quot": the advisory lock class of an account's daily generation quota


def serialize_quota(session: Session, account_id: str) -> None:
    """Take, for the rest of the caller's transaction, the lock that orders the generation requests of
    ``account_id``: the request that counts the account's requests of the day against its quota and then inserts
    its own holds it from the count to the commit, so concurrent requests of one account are counted one after
    another and never pass the quota together (``POST /v1/generations``).

    - SQLite: the database's write lock, taken now with ``BEGIN IMMEDIATE`` (as :func:`serialize_consent`): the
      count then sees every request committed before it.
    - PostgreSQL: a transaction-level advisory lock for the account, of its own class: other accounts' requests
      do not wait. Call it before any other lock of the transaction (no generation request takes another)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        _begin_immediate(session, conn)
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:cls, :key)"),
                     {"cls": _QUOTA_LOCK_CLASS, "key": _consent_lock_key(account_id)})


#: Tables whose new rows the change feed must see (:func:`_feed_changes` reads them from a flush): never inserted
#: past the unit of work.
_FED_TABLES = frozenset(_WATCHED)


def insert_now(session: Session, rows: Iterable[Any]) -> None:
    """INSERT new ORM rows of one table now, in one Core statement on the session's connection (an ``executemany``
    for several), and keep them in the session as persistent: as if they had been added and flushed, for a fraction
    of the unit of work's cost (issue 12: a decision's three rows cost ~1 ms of CPU to flush, ~0.1 ms each this way).

    ``rows``: transient instances (never added to a session) of one table, every column set (the model's
    defaults fill them at construction); an integer primary key left None is the database's to assign (one row
    at a time then, to read it back). Whatever the session holds pending is flushed first, so rows keep the
    order they were made in (a row here may refer to one added before). Later changes to the rows are ordinary
    ORM updates; a rollback (of the transaction, or of a savepoint they were inserted in) takes them out of the
    session, transient again, as it does flushed rows. Raises ValueError for rows of several tables, for a row
    already in a session, and for the tables the change feed watches (:data:`FEEDS`): their inserts must go
    through a flush."""
    rows = list(rows)
    if not rows:
        return
    table = type(rows[0]).__table__  # type: ignore[attr-defined]
    if any(type(r).__table__ is not table for r in rows):  # type: ignore[attr-defined]
        raise ValueError("insert_now: rows of one table at a time")
    if table.name in _FED_TABLES:
        raise ValueError(f"insert_now: {table.name} rows must be flushed, the change feed reads them from the flush")
    if any(sa.inspect(r).session is not None or sa.inspect(r).key is not None for r in rows):
        raise ValueError("insert_now: a row already in a session")
    session.flush()
    conn = session.connection()
    columns = [c.key for c in table.columns]
    auto = table.autoincrement_column  # the database numbers it (SQLAlchemy's reading of the key), or None
    if auto is not None and any(getattr(r, auto.key) is None for r in rows):
        for r in rows:
            values = {k: getattr(r, k) for k in columns if not (k == auto.key and getattr(r, k) is None)}
            key = conn.execute(table.insert(), values).inserted_primary_key
            if key is None:  # never for a single-row INSERT; says so rather than index None
                raise RuntimeError(f"insert_now: {table.name}: no primary key read back")
            setattr(r, auto.key, key[list(table.primary_key.columns).index(auto)])
    else:
        conn.execute(table.insert(), [{k: getattr(r, k) for k in columns} for r in rows])
    # Pending, then made persistent the way a flush makes its rows (the session's own step, a private one): the
    # transaction (or savepoint) records them as new, so its rollback takes them out of the session again, transient,
    # as it does flushed rows; an expired leftover of a rolled-back row with the same key gives way to them.
    # ``make_transient_to_detached`` + ``add`` kept them as persistent through a rollback: ghosts of rows the
    # database never kept (review s23: on SQLite the next audit event reused the id and could not join the session).
    session.add_all(rows)
    session._register_persistent({sa.inspect(r) for r in rows})


@contextmanager
def unit_of_work(engine: sa.Engine) -> Iterator[Session]:
    """Commit on success, roll back on any error: all of it or none of it."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _make_revision(message: str) -> None:
    """Autogenerate a migration from the difference between the models and a database migrated to head
    (a scratch SQLite file), into ``governance/migrations/versions``."""
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        migrate(engine)
        with _migrating(engine) as (_, cfg):
            heads = len(list((MIGRATIONS / "versions").glob("[0-9]*.py")))
            command.revision(cfg, message=message, autogenerate=True, rev_id=f"{heads + 1:04d}")
        engine.dispose()


if __name__ == "__main__":  # python -m governance.db revision "what changed"
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        raise SystemExit('usage: python -m governance.db revision "what changed"')
    _make_revision(sys.argv[2])
