"""Tables of the takedown-notice domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import factory, id_factory, utcnow_factory
from governance.generations.models import NOTICE_ID_PREFIX


class OnBehalfOf(StrEnum):
    """Whose face the notice is about (YouTube's privacy complaint asks the same)."""

    SELF = "self"
    MINOR_IN_CARE = "minor_in_care"
    DECEASED_RELATIVE = "deceased_relative"
    UNABLE_TO_FILE = "unable_to_file"  # someone who cannot file themselves (incapacitated, no internet, ...)


class NoticeState(StrEnum):
    OPEN = "open"  # in the review queue
    TAKEN_DOWN = "taken_down"  # the video is down: the filer's own face was found in it, or a reviewer decided
    REJECTED = "rejected"  # a reviewer decided the video stays
    COUNTERED = "countered"  # the video's requester filed a counter-notice: back in the review queue
    RESTORED = "restored"  # a reviewer upheld the counter-notice: the video is back

    @property
    def in_queue(self) -> bool:
        return self in (NoticeState.OPEN, NoticeState.COUNTERED)


class Notice(SQLModel, table=True):
    """A takedown notice. The filer has no account: they read it by a private link (``token_hash``: SHA-256 of
    the unguessable token given once). ``account_id``: the account made for the notice when the filer proves a
    face live (it holds the challenge and, when the face is found, the protective likeness); nobody holds its
    token. ``events``: the timeline the filer and the reviewers see (``{"at", "kind", "text"}``). Nothing of an
    uploaded video is kept: ``source`` says how the video was named, ``generation_id`` what it resolved to."""

    id: str = Field(default_factory=id_factory(NOTICE_ID_PREFIX.rstrip("_")), primary_key=True)
    token_hash: str = Field(index=True, unique=True, repr=False)
    contact: str = Field(max_length=200)
    on_behalf_of: OnBehalfOf
    statement: str = Field(max_length=2000)
    generation_id: str = Field(foreign_key="generation.id", index=True)
    source: str  # "upload" (resolved by manifest, watermark or fingerprint), "content_id" or "generation_id"
    state: NoticeState = Field(default=NoticeState.OPEN, index=True)
    facts: dict[str, Any] = Field(default_factory=factory(dict), sa_type=sa.JSON)  # type: ignore[call-overload]
    events: list[dict[str, Any]] = Field(default_factory=factory(list), sa_type=sa.JSON)  # type: ignore[call-overload]
    account_id: str | None = Field(default=None, foreign_key="account.id")
    protective_likeness_id: str | None = None
    counter_statement: str | None = Field(default=None, max_length=2000)
    counter_deadline: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    decided_by: str | None = None  # "face_match" or the reviewer's account id
    created_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(default_factory=utcnow_factory, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
