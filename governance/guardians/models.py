"""Tables of the guardians domain."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import id_factory, utcnow_factory


class Guardianship(SQLModel, table=True):
    """``minor_id`` is a minor's account (a row makes it one); ``guardian_id`` the guardian's account, or None once
    unlinked (nobody can then approve a grant: the minor's likenesses stay closed to others)."""

    minor_id: str = Field(foreign_key="account.id", primary_key=True)
    guardian_id: str | None = Field(default=None, foreign_key="account.id", index=True)
    marked_by: str | None = None  # the admin's account id
    created_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]


class GuardianApproval(SQLModel, table=True):
    """A minor's grant of a likeness to an account, waiting for the guardian: no grant exists until ``approved``
    (then ``grant_id`` names it). ``state``: ``pending``, ``approved``, ``denied`` or ``cancelled`` (the guardian was
    unlinked, or the minor asked again after a denial)."""

    id: str = Field(default_factory=id_factory("gap"), primary_key=True)
    likeness_id: str = Field(index=True)
    grantee_id: str = Field(foreign_key="account.id")
    minor_id: str = Field(foreign_key="account.id", index=True)
    guardian_id: str = Field(foreign_key="account.id", index=True)
    state: str = Field(default="pending", index=True)
    grant_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    decided_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
