"""Tables of the restrictions domain."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import factory, utcnow_factory


class LikenessRestriction(SQLModel, table=True):
    """One likeness's restrictions (:class:`policies.restrictions.Restrictions`): the categories restricted, the
    phrases its owner must not be shown saying, a note to requesters. No row: no restriction. Deleted with the
    likeness."""

    likeness_id: str = Field(foreign_key="likeness.id", primary_key=True)
    categories: list[str] = Field(default_factory=factory(list), sa_type=sa.JSON)  # type: ignore[call-overload]
    phrases: list[str] = Field(default_factory=factory(list), sa_type=sa.JSON)  # type: ignore[call-overload]
    note: str = Field(default="", max_length=500)
    # draft approval: a generation using the face is held after sealing until the owner approves its preview
    draft_approval: bool = False
    updated_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]


class RestrictionApproval(SQLModel, table=True):
    """A generation held before anything is generated because its prompt may break a restriction of a likeness
    it names (the uncertain band: a weak term, or the embedding model's score). One row per likeness: ``reasons``
    say what was found; ``decision`` is ``pending``, ``approved`` or ``denied`` (the generation is blocked). No
    foreign key to the likeness: the record outlives a deleted likeness."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    likeness_id: str = Field(primary_key=True, index=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    reasons: list[str] = Field(default_factory=factory(list), sa_type=sa.JSON)  # type: ignore[call-overload]
    rules: list[str] = Field(default_factory=factory(list), sa_type=sa.JSON)  # type: ignore[call-overload]
    decision: str = Field(default="pending", index=True)
    created_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    decided_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]


class DraftApproval(SQLModel, table=True):
    """A sealed generation held before release because it uses a likeness whose owner asked to approve drafts: one
    row per likeness. ``decision``: ``pending``, ``approved`` (once every owner asked approved, the job runs again
    and is released), ``rejected`` or ``expired`` (both block it). The sealed preview waits beside the videos until
    then (``<generation>.mp4.draft``)."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    likeness_id: str = Field(primary_key=True, index=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    decision: str = Field(default="pending", index=True)
    created_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    decided_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
