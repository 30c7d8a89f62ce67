"""The shared column helpers and the SQLite engine's settings (issue 12: what a decision costs)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from sqlmodel import SQLModel

import governance.models  # noqa: F401  (registers every table)
from governance.columns import factory
from governance.config import ConfigError, Settings
from governance.db import make_engine


def _table_models() -> list[type[SQLModel]]:
    seen, todo, out = set(), [SQLModel], []
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
                if getattr(sub, "__table__", None) is not None:
                    out.append(sub)
    return out


def test_every_tables_default_factory_declares_its_signature() -> None:
    """pydantic inspects each default factory of each row built (SQLModel); an inspected one costs ~40 us a field
    (a builtin's text signature is parsed each time). A new column with a bare ``default_factory`` fails here."""
    models = _table_models()
    assert len(models) > 10
    bare = [f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items()
            if field.default_factory is not None and "__signature__" not in vars(field.default_factory)]
    assert not bare, f"use governance.columns.factory / id_factory / utcnow_factory for {bare}"


def test_a_factory_makes_a_fresh_value_each_time_and_says_it_takes_no_argument() -> None:
    fresh = factory(list)
    a, b = fresh(), fresh()
    assert a == b == [] and a is not b
    assert str(inspect.signature(fresh)) == "()"
    from governance.generations.models import Generation

    one = Generation(requester_id="acc_x", prompt="p", seed=1)
    two = Generation(requester_id="acc_x", prompt="p", seed=1)
    assert one.id != two.id and one.id.startswith("gen_") and one.reasons == [] and one.reasons is not two.reasons
    assert one.created_at.tzinfo is not None


@pytest.mark.parametrize(("setting", "pragma"), [("full", 2), ("normal", 1)])
def test_sqlite_synchronous_is_set_on_every_connection(tmp_path: Path, setting: str, pragma: int) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous=setting)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
    finally:
        engine.dispose()


def test_sqlite_synchronous_defaults_to_full_and_refuses_anything_else(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: a commit survives a power cut
    finally:
        engine.dispose()
    with pytest.raises(ValueError, match="'full' or 'normal'"):
        make_engine("sqlite://", sqlite_synchronous="off")
    assert Settings().sqlite_synchronous == "full"
    assert Settings.from_env({"GOVERNANCE_SQLITE_SYNCHRONOUS": "normal"}).sqlite_synchronous == "normal"
    with pytest.raises(ConfigError, match="sqlite_synchronous"):
        Settings(sqlite_synchronous="off")


def test_the_service_engine_takes_the_setting(tmp_path: Path) -> None:
    from governance.container import Runtime

    (tmp_path / "var").mkdir()
    runtime = Runtime(Settings(data_dir=tmp_path / "var", sqlite_synchronous="normal"))
    try:
        with runtime.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    finally:
        runtime.close()
