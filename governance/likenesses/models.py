"""Likenesses and what rests on them: live challenges, grants, disputes over a claim, and the protected
public figures' gallery."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import id_factory, json_field, optional_timestamp_field, timestamp_field
from policies.consent import LikenessMode, LikenessStatus, Verification


class Likeness(SQLModel, table=True):
    id: str = Field(default_factory=id_factory("lk"), primary_key=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    mode: LikenessMode = LikenessMode.APPROVED
    display_name: str | None = Field(default=None, max_length=120)
    backend: str
    template: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    embeddings: int = 0
    created_at: datetime = timestamp_field()
    # how the owner showed the face is theirs, and whether anything stands against the claim (docs/enrollment.md)
    verification: Verification = Verification.PHOTO
    status: LikenessStatus = LikenessStatus.ACTIVE
    verified_at: datetime | None = optional_timestamp_field()
    figure_id: str | None = Field(default=None, index=True)  # the protected public figure an admin approved it as
    identity: dict[str, Any] = json_field(dict)  # the operator's identity check's verdict (provider, outcome, ...)


class Challenge(SQLModel, table=True):
    """A live challenge: the head poses an account must perform on camera, in order, before ``expires_at``.
    Used once (``used_at``), by the account that asked for it."""

    id: str = Field(default_factory=id_factory("chl"), primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True)
    poses: list[str] = json_field(list)
    created_at: datetime = timestamp_field()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    used_at: datetime | None = optional_timestamp_field()
    outcome: str | None = None  # "verified", or the refusal's reason code
    likeness_id: str | None = None  # the likeness it verified


class Grant(SQLModel, table=True):
    # consent looks up a likeness's grants to one requester on every decision (migration 0010)
    __table_args__ = (sa.Index("ix_grant_likeness_grantee", "likeness_id", "grantee_id"),)

    id: str = Field(default_factory=id_factory("gr"), primary_key=True)
    likeness_id: str = Field(foreign_key="likeness.id", index=True)
    grantee_id: str = Field(foreign_key="account.id", index=True)
    created_at: datetime = timestamp_field()
    revoked_at: datetime | None = optional_timestamp_field()


class DisputeKind(StrEnum):
    DOUBLE_CLAIM = "double_claim"  # the face matches another account's likeness, enrolled earlier
    PUBLIC_FIGURE = "public_figure"  # the face matches a protected public figure
    IDENTITY = "identity"  # the operator's identity check did not verify the owner


class DisputeState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Dispute(SQLModel, table=True):
    """A claim on a face an admin must decide. ``likeness_id`` is the claim under review (disputed or
    pending_review until every dispute on it is resolved); for a double claim ``holder_likeness_id`` is the
    earlier one. No foreign keys to likenesses: the record outlives the likenesses a resolution deletes."""

    id: str = Field(default_factory=id_factory("dsp"), primary_key=True)
    kind: DisputeKind
    state: DisputeState = Field(default=DisputeState.OPEN, index=True)
    likeness_id: str = Field(index=True)
    claimant_id: str = Field(foreign_key="account.id")
    holder_likeness_id: str | None = Field(default=None, index=True)
    holder_id: str | None = Field(default=None, foreign_key="account.id")
    figure_id: str | None = None
    distance: float | None = None
    detail: str = ""
    outcome: str | None = None
    reason: str | None = Field(default=None, max_length=1000)
    resolved_by: str | None = None
    created_at: datetime = timestamp_field()
    resolved_at: datetime | None = optional_timestamp_field()


class Figure(SQLModel, table=True):
    """A protected public figure in the operator's gallery: names a prompt may not use, and a face template an
    output may not show, unless a live-verified likeness an admin approved as them consents."""

    id: str = Field(default_factory=id_factory("fig"), primary_key=True)
    name: str = Field(max_length=200)
    aliases: list[str] = json_field(list)
    backend: str
    template: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    embeddings: int = 0
    created_by: str | None = None  # the admin's account id; None from the command line
    created_at: datetime = timestamp_field()


def is_figure_key(key: str) -> bool:
    """Whether a key of the face index (likeness ids and figure ids) is a protected public figure's."""
    return key.startswith("fig_")
