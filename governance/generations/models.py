"""Generations (the gate's state machine), the likenesses and characters each involves, and held
generations' reviews."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import id_factory, json_field, optional_timestamp_field, timestamp_field

NOTICE_ID_PREFIX = "ntc_"
"""How a takedown notice's id begins (:class:`governance.notices.models.Notice` makes its ids with it):
``Generation.taken_down_by`` holds a notice's id while the video is down on that notice alone."""


class GenerationState(StrEnum):
    REQUESTED = "requested"
    PRECHECKED = "prechecked"
    GENERATING = "generating"
    SCANNING = "scanning"
    SEALING = "sealing"
    RELEASED = "released"
    BLOCKED = "blocked"
    HELD = "held"  # a face that may be a likeness the requester may not use: waiting for its owner's review

    @property
    def terminal(self) -> bool:
        return self in (GenerationState.RELEASED, GenerationState.BLOCKED)


class Generation(SQLModel, table=True):
    # the daily quota counts a requester's generations since midnight, and those refused at the precheck, on every
    # request: from this index alone (it covers the state and the claim: migration 0015). It serves every query by
    # requester too (a requester's generations, newest first), so requester_id has no index of its own.
    __table_args__ = (sa.Index("ix_generation_quota", "requester_id", "created_at", "state", "claimed_by"),)

    id: str = Field(default_factory=id_factory("gen"), primary_key=True)
    requester_id: str = Field(foreign_key="account.id")  # indexed first in ix_generation_quota
    prompt: str
    seed: int = Field(sa_type=sa.BigInteger)  # type: ignore[call-overload]
    likeness_ids: list[str] = json_field(list)
    state: GenerationState = Field(default=GenerationState.REQUESTED, index=True)
    reasons: list[str] = json_field(list)
    decisions: list[dict[str, Any]] = json_field(list)
    grants_relied: list[dict[str, Any]] = json_field(list)
    faces_found: list[dict[str, Any]] = json_field(list)  # scan results: likeness, distance, frames
    content_id: str | None = Field(default=None, index=True, unique=True)
    generator: str | None = None
    video_sha256: str | None = None
    created_at: datetime = timestamp_field(index=True)
    updated_at: datetime = timestamp_field()
    released_at: datetime | None = optional_timestamp_field()
    taken_down_at: datetime | None = optional_timestamp_field()
    taken_down_by: str | None = None
    # the job engine's bookkeeping (governance/generations/pipeline.py): the worker running it and until when its lease
    # holds (another worker may take the job over after that), and when it was last handed to the broker
    claimed_by: str | None = None
    lease_until: datetime | None = optional_timestamp_field()
    enqueued_at: datetime | None = optional_timestamp_field()


class GenerationLikeness(SQLModel, table=True):
    """Which likenesses a generation involves: named in the request, found by the scan, or both. Indexed by
    likeness so an owner's "every video that contains me" is one query. (No foreign key to the likeness: the
    history outlives a deleted likeness.)"""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    likeness_id: str = Field(primary_key=True, index=True)
    named: bool = False
    found: bool = False


class GenerationCharacter(SQLModel, table=True):
    """Which registered characters a generation's prompt named, and whether the character's rule allowed
    the requester: a rights holder's usage report is one query by character. (No foreign key to the
    character: the usage history outlives a deleted character.)"""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    character_id: str = Field(primary_key=True, index=True)
    allowed: bool


class GenerationReview(SQLModel, table=True):
    """A held generation's question to one likeness's owner: is the face in these frames you? The scan put a
    face in the uncertain band of the likeness (between its match and protect distances, detectors.pose).
    ``decision``: ``pending``, ``confirmed`` (it is them: the generation is blocked) or ``dismissed`` (not
    them: the gate goes on). ``frames``: a few of the frames the face is in, as the owner is shown them
    (``{"frame": index, "jpeg": base64}``, the face's ``box`` at its last sighting alongside)."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    likeness_id: str = Field(primary_key=True, index=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    distance: float
    first_frame: int
    last_frame: int
    pose: str
    box: list[int] = json_field(list)
    frames: list[dict[str, Any]] = json_field(list)
    decision: str = Field(default="pending", index=True)
    created_at: datetime = timestamp_field()
    decided_at: datetime | None = optional_timestamp_field()
