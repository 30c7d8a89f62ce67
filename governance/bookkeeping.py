"""The cross-cutting tables every domain writes to: the audit trail (:class:`AuditEvent`), the counters
(:class:`Counter`) and the change feed the in-memory indexes follow (:class:`IndexChange`).

Apart from :mod:`governance.models` (which registers every table, for migrations) so that what writes an audit
event or reads a counter imports these three and its own domain's tables, not every domain's: a verification
reads the generations, the log, the release manifests and the fingerprints, never the characters, restrictions,
guardians, notices or pages (issue 12, docs/performance.md section 4b: the models it need not import were ~0.1 s
of ``consentgate verify``'s start-up and half of SQLAlchemy's mapper configuration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import json_field, timestamp_field

__all__ = ["AuditEvent", "Counter", "IndexChange"]


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tag: str = Field(index=True)
    actor_id: str | None = None
    subject: str | None = Field(default=None, index=True)
    data: dict[str, Any] = json_field(dict)
    created_at: datetime = timestamp_field()


class Counter(SQLModel, table=True):
    """Monotonic counters bumped atomically (``UPDATE ... SET value = value + 1``) in the same transaction as
    the change they count; in-memory indexes compare them to skip a resync when nothing changed."""

    name: str = Field(primary_key=True)
    value: int = Field(default=0, sa_type=sa.BigInteger)  # type: ignore[call-overload]


class IndexChange(SQLModel, table=True):
    """The change feed the in-memory indexes follow: which likeness or fingerprint (``key``) was added, changed or
    removed at ``version`` of its counter (``kind``: ``likenesses`` or ``fingerprints``). Written in the
    transaction of the change, under the counter's row lock, so versions become visible in order and a process
    that has applied version N reads ``version > N`` and nothing else (:func:`governance.db.changes_since`)."""

    kind: str = Field(primary_key=True)
    version: int = Field(primary_key=True, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    key: str
    created_at: datetime = timestamp_field()
