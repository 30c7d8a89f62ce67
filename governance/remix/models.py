"""Lineage edges between generations."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from governance.columns import optional_timestamp_field as _opt_ts
from governance.columns import timestamp_field as _ts


class GenerationEdge(SQLModel, table=True):
    """``child_id`` was made from ``parent_id`` (C2PA ingredient relationship ``inputTo``). ``withdrawn_at`` and
    ``withdrawn_reason`` say that something up the child's ancestry was withdrawn (taken down, or a likeness it
    shows revoked) while the child itself stays up: verification reports "an ancestor was withdrawn"."""

    child_id: str = Field(foreign_key="generation.id", primary_key=True)
    parent_id: str = Field(foreign_key="generation.id", primary_key=True, index=True)
    relationship: str = "inputTo"
    created_at: datetime = _ts()
    withdrawn_at: datetime | None = _opt_ts()
    withdrawn_reason: str | None = None
