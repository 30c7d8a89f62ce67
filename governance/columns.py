"""What every domain's tables share: ids, UTC timestamps and their ISO 8601 form, and the column helpers for
timestamps and JSON. Same code on SQLite (embedded) and PostgreSQL (at scale).

    >>> new_id("gen").startswith("gen_") and len(new_id("gen")) == 4 + 16
    True
    >>> from datetime import datetime
    >>> iso(datetime(2026, 1, 2, 3, 4, 5))  # naive from SQLite: UTC by construction
    '2026-01-02T03:04:05+00:00'
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which are UTC here by construction."""
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


T = TypeVar("T")
_NO_ARGUMENTS = inspect.Signature()


def factory(make: Callable[[], T]) -> Callable[[], T]:
    """``make`` as a column's ``default_factory`` whose signature is declared, not inspected.

    SQLModel builds every table row through pydantic, which asks of each default factory, *for every row*, whether
    it takes the validated data: ``inspect.signature`` each time, and for a builtin such as ``list`` or ``dict`` a
    parse of its text signature. A generation request builds three rows with ten such fields: ~1 ms of CPU a request
    (issue 12, ``python -m bench decisions --http``; docs/performance.md, section 1). A declared
    ``__signature__`` is read back at once. Every table's default factories go through here
    (``tests/governance/test_columns.py`` checks it).

        >>> fresh = factory(list)
        >>> fresh(), fresh() is fresh(), str(inspect.signature(fresh))
        ([], False, '()')
    """

    def fresh() -> T:
        return make()

    fresh.__signature__ = _NO_ARGUMENTS  # type: ignore[attr-defined]
    fresh.__name__ = fresh.__qualname__ = f"factory({getattr(make, '__qualname__', repr(make))})"
    return fresh


#: The default factory of ``created_at``-like columns.
utcnow_factory = factory(utcnow)


def id_factory(prefix: str) -> Callable[[], str]:
    """The default factory of a string primary key: ``new_id(prefix)``."""
    return factory(lambda: new_id(prefix))


def timestamp_field(**kw: Any) -> Any:
    """A timezone-aware timestamp column that defaults to now (UTC)."""
    return Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True), **kw)  # type: ignore[call-overload]


def optional_timestamp_field(**kw: Any) -> Any:
    """A timezone-aware timestamp column that starts empty (None)."""
    return Field(default=None, sa_type=sa.DateTime(timezone=True), **kw)  # type: ignore[call-overload]


def json_field(default: Any) -> Any:
    """A JSON column whose default is ``default()`` (``list`` or ``dict``): a fresh value per row."""
    return Field(default_factory=factory(default), sa_type=sa.JSON)  # type: ignore[call-overload]
