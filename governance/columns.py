"""What every domain's tables share: ids, UTC timestamps and their ISO 8601 form, and the column helpers for
timestamps and JSON. Same code on SQLite (embedded) and PostgreSQL (at scale).

    >>> new_id("gen").startswith("gen_") and len(new_id("gen")) == 4 + 16
    True
    >>> from datetime import datetime
    >>> iso(datetime(2026, 1, 2, 3, 4, 5))  # naive from SQLite: UTC by construction
    '2026-01-02T03:04:05+00:00'
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

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


def timestamp_field(**kw: Any) -> Any:
    """A timezone-aware timestamp column that defaults to now (UTC)."""
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), **kw)  # type: ignore[call-overload]


def optional_timestamp_field(**kw: Any) -> Any:
    """A timezone-aware timestamp column that starts empty (None)."""
    return Field(default=None, sa_type=sa.DateTime(timezone=True), **kw)  # type: ignore[call-overload]


def json_field(default: Any) -> Any:
    """A JSON column whose default is ``default()`` (``list`` or ``dict``): a fresh value per row."""
    return Field(default_factory=default, sa_type=sa.JSON)  # type: ignore[call-overload]
