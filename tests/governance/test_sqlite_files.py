"""Every SQLite file the service makes is private (0600) whichever form its URL takes: a path
(``sqlite:////srv/cg.db``, with ``uri=true`` or not) or SQLite's ``file:`` URI
(``sqlite:///file:/srv/cg.db?mode=rwc&uri=true``), read as SQLite reads the name SQLAlchemy hands it. The
database holds face templates; its ``-wal`` and ``-shm`` take its mode, its ``-turns`` file is made 0600
(``governance.db``). Reported (s25): a ``file:`` URL skipped the step, the file kept the umask's mode."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from governance.accounts.models import Account, Role
from governance.config import Settings, sqlite_file
from governance.db import init_db, make_engine, serialize_quota

#: The URL forms naming the file at ``path``: a path, and ``file:`` URIs (RFC 8089 forms SQLite reads).
URL_FORMS: dict[str, Callable[[Path], str]] = {
    "path": lambda p: f"sqlite:///{p}",
    "file-uri": lambda p: f"sqlite:///file:{quote(str(p))}?mode=rwc&uri=true",
    "file-uri-empty-authority": lambda p: f"sqlite:///file://{quote(str(p))}?uri=true",
    "file-uri-localhost": lambda p: f"sqlite:///file://localhost{quote(str(p))}?uri=true",
    "path-with-uri-true": lambda p: f"sqlite:///{p}?uri=true",  # not file:, so a file name (no option to append)
}


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o002)  # what a shared host may have: group-writable, world-readable files
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_a_new_database_and_its_siblings_are_0600_whatever_the_url_form(tmp_path, permissive_umask, form):
    path = tmp_path / "cg data" / "cg.db"  # a space: %-escaped in the URI forms
    path.parent.mkdir()
    url = URL_FORMS[form](path)
    assert sqlite_file(url) == path
    engine = make_engine(url)
    try:
        init_db(engine)
        with Session(engine) as s:  # a write in turn: the -turns file, and the -wal and -shm of WAL mode
            serialize_quota(s, "acc_1")
            s.add(Account(id="acc_1", name="a1", role=Role.CREATOR, token_hash="h1"))
            s.commit()
        made = {p.name: _mode(p) for p in path.parent.iterdir()}
        assert made == {name: 0o600 for name in ("cg.db", "cg.db-wal", "cg.db-shm", "cg.db-turns")}, made
    finally:
        engine.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cg data"]  # nothing made under another name


@pytest.mark.parametrize(("tail", "made"), [
    ("file:{tmp}/q%253Fx.db?uri=true", "q?x.db"),  # a "?" in the name: %3F as SQLite reads it, %253F in the URL
    ("file:{tmp}/a%2500b.db?uri=true", "a"),  # SQLite's %00 ends the path
    ("file:{tmp}/a%25zz.db?uri=true", "a%zz.db"),  # not an escape: kept
    ("file:{tmp}/cg.db?uri=true&mode=%256Demory", None),  # the options are decoded too: in memory
    ("{tmp}/cg.db?uri=true&mode=rwc", "cg.db?mode=rwc"),  # a file name: SQLAlchemy appends the options to it
], ids=["escaped-question-mark", "nul", "percent", "mode-escaped", "name-with-options"])
def test_sqlite_file_is_the_file_sqlite_makes(tmp_path, permissive_umask, tail, made):
    """Read by SQLite's rules from the name SQLAlchemy hands it (review s25, finding 11): the file made, 0600."""
    url = "sqlite:///" + tail.format(tmp=tmp_path)
    assert sqlite_file(url) == (tmp_path / made if made else None)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
    finally:
        engine.dispose()
    assert {p.name: _mode(p) for p in tmp_path.iterdir()} == ({made: 0o600} if made else {})


def test_a_relative_file_uri_is_the_file_beside_the_working_directory(tmp_path, permissive_umask, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///file:rel.db?uri=true"
    assert sqlite_file(url) == tmp_path / "rel.db"
    engine = make_engine(url)
    try:
        init_db(engine)
    finally:
        engine.dispose()
    assert _mode(tmp_path / "rel.db") == 0o600


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path):
    """Only a file the service makes (still empty when it connects) is made private: an operator's database with
    content is not touched, whichever the URL form."""
    path = tmp_path / "kept.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    os.chmod(path, 0o640)
    engine = make_engine(URL_FORMS["file-uri"](path))
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        engine.dispose()
    assert _mode(path) == 0o640


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true",
    "sqlite:///file:cg.db?mode=memory&cache=shared&uri=true", "sqlite:///file:cg.db?vfs=memdb&uri=true",
    "sqlite:///file:?uri=true",  # SQLite's empty name: a private temporary database, deleted on close
    "postgresql+psycopg://app@db:5432/cg",
], ids=["no-name", "memory", "uri-memory", "mode-memory", "memdb", "temporary", "postgresql"])
def test_a_database_in_memory_or_elsewhere_names_no_file(url):
    assert sqlite_file(url) is None


@pytest.mark.parametrize(("query", "names", "refusal"), [
    ("file://db.example{tmp}/cg.db?uri=true", None, "invalid uri authority"),  # another host: no file, SQLite refuses
    ("file:{tmp}/missing.db?mode=ro&uri=true", "missing.db", "unable to open database file"),  # read-only, missing
], ids=["another-host", "read-only-missing"])
def test_a_uri_sqlite_refuses_makes_nothing(tmp_path, query, names, refusal):
    url = "sqlite:///" + query.format(tmp=tmp_path)
    assert sqlite_file(url) == (tmp_path / names if names else None)
    engine = make_engine(url)
    try:
        with pytest.raises(sa.exc.OperationalError, match=refusal):
            engine.connect()
    finally:
        engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_settings_name_the_file_of_a_file_uri(tmp_path):
    """``Settings.sqlite_path`` (the start's check for a missing database, ``consentgate db``) read the URI as a
    path, ``file:/...?mode=rwc&uri=true`` and all: a database that was there counted as missing."""
    path = tmp_path / "cg.db"
    settings = Settings(data_dir=tmp_path, database_url=URL_FORMS["file-uri"](path))
    assert settings.sqlite_path == path
    assert Settings(data_dir=tmp_path).sqlite_path == (tmp_path / "consentgate.db").resolve()
    assert Settings(data_dir=tmp_path, database_url="postgresql+psycopg://app@db/cg").sqlite_path is None


def test_the_service_on_a_file_uri_database_makes_it_private_and_starts_again_on_it(tmp_path, permissive_umask):
    """End to end: the service's own start (migrations, keys) on a ``file:`` URL, then a second start on the same
    data dir, which checks the database is there since the data dir holds the watermark key (it was taken for
    missing: ``Settings.sqlite_path``)."""
    from governance.app import create_app

    path = tmp_path / "db" / "cg.db"
    path.parent.mkdir()
    config = {"data_dir": tmp_path / "var", "database_url": URL_FORMS["file-uri"](path), "worker": "none"}
    for _ in range(2):
        app = create_app(config)
        try:
            assert app.test_client().get("/healthz").status_code == 200
        finally:
            app.extensions["consentgate"].close()
    assert (tmp_path / "var" / "keys" / "watermark.key").exists()
    made = {p.name: _mode(p) for p in path.parent.iterdir()}  # (-wal and -shm go when the last connection closes)
    assert "cg.db" in made and set(made.values()) == {0o600}, made
    assert not (tmp_path / "var" / "consentgate.db").exists()  # the URL's file, not the data dir's default
