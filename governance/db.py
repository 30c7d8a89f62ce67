"""Engine creation and the unit of work. Services take a ``Session`` and never commit; callers do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from governance import models  # noqa: F401  (registers the tables)

T = TypeVar("T")


def get_or_404(session: Session, model: type[T], key: Any, noun: str) -> T:
    """The row with primary key ``key``, or :class:`~governance.errors.NotFound` naming it."""
    from governance.errors import NotFound

    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {noun} {key!r}")
    return row


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


COUNTERS = ("likenesses", "fingerprints")


def init_db(engine: sa.Engine) -> None:
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        for name in COUNTERS:
            if session.get(models.Counter, name) is None:
                session.add(models.Counter(name=name, value=0))
        try:
            session.commit()
        except sa.exc.IntegrityError:  # another process created them first
            session.rollback()


def bump(session: Session, name: str) -> None:
    """Increment a counter atomically, inside the caller's transaction."""
    session.execute(sa.update(models.Counter).where(models.Counter.name == name)  # type: ignore[arg-type]
                    .values(value=models.Counter.value + 1))


def counter(session: Session, name: str) -> int:
    row = session.exec(select(models.Counter).where(models.Counter.name == name)
                       .execution_options(populate_existing=True)).first()
    return -1 if row is None else int(row.value)


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
