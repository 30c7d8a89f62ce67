"""Migrations: the schema Alembic builds is the one the models describe, on SQLite and PostgreSQL, and a
database made by ``create_all`` before migrations existed is adopted without losing rows."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import Session, SQLModel

from governance import models
from governance.db import BASELINE, current_revision, downgrade, init_db, make_engine, migrate

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        yield eng
        eng.dispose()
        return
    psycopg = pytest.importorskip("psycopg")
    name = f"cg_mig_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    eng = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        yield eng
    finally:
        eng.dispose()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drift(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)


def test_migrations_build_exactly_the_models_schema(engine):
    """Fails when a model changes without a migration: run ``python -m governance.db revision "..."``."""
    init_db(engine)
    assert current_revision(engine) is not None
    assert _drift(engine) == []
    init_db(engine)  # a second start changes nothing
    with Session(engine) as s:
        assert s.get(models.Counter, "likenesses") is not None


def test_downgrade_to_nothing_and_back(engine):
    migrate(engine)
    downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert _drift(engine) == []


def test_a_database_made_by_create_all_is_adopted_with_its_rows(engine):
    SQLModel.metadata.create_all(engine)  # what init_db did before migrations
    with Session(engine) as s:
        s.add(models.Counter(name="likenesses", value=7))
        s.commit()
    init_db(engine)
    assert current_revision(engine) is not None and current_revision(engine) >= BASELINE
    with Session(engine) as s:
        assert s.get(models.Counter, "likenesses").value == 7
    assert _drift(engine) == []
