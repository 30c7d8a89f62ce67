"""The takedown notices API's wire shapes (OpenAPI: :mod:`governance.openapi`). Descriptions only: the views and
services check."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.likenesses.schemas import ChallengeOut as ChallengeOut  # a notice's live challenge is enrollment's
from governance.notices.services import MAX_CONTACT, MAX_STATEMENT, MIN_STATEMENT
from governance.openapi import Page, PageQuery

Behalf = Literal["self", "minor_in_care", "deceased_relative", "unable_to_file"]
NoticeStateName = Literal["open", "taken_down", "rejected", "countered", "restored"]


class NoticeIn(BaseModel):
    """A filing: name the video exactly one way (``generation_id``, ``content_id``, or the file in ``media`` when
    sent as multipart/form-data, where ``good_faith`` is the text ``true``)."""

    model_config = ConfigDict(extra="forbid")
    contact: str = Field(min_length=3, max_length=MAX_CONTACT, description="an e-mail address or a phone number")
    on_behalf_of: Behalf
    good_faith: Literal[True]
    statement: str = Field(min_length=MIN_STATEMENT, max_length=MAX_STATEMENT)
    generation_id: str | None = Field(None, min_length=1, max_length=64)
    content_id: str | None = Field(None, min_length=1, max_length=64)


class NoticeForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact: str = Field(min_length=3, max_length=MAX_CONTACT)
    on_behalf_of: Behalf
    good_faith: Literal["true"]
    statement: str = Field(min_length=MIN_STATEMENT, max_length=MAX_STATEMENT)
    generation_id: str | None = Field(None, min_length=1, max_length=64)
    content_id: str | None = Field(None, min_length=1, max_length=64)
    media: bytes | None = Field(None, json_schema_extra={"format": "binary"},
                                description="the video the notice is about (read like /v1/verify, never kept)")


class TokenQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, description="the notice's private token (or the X-Notice-Token header)")


class NoticeOut(BaseModel):
    """What the filer sees by the private link."""

    id: str
    state: NoticeStateName
    on_behalf_of: Behalf
    generation: str | None
    events: list[dict[str, Any]]
    counter_deadline: str | None
    countered: bool
    created_at: str


class NoticeFiled(NoticeOut):
    token: str = Field(description="the private token, shown once")
    link: str


class NoticeFaceOut(NoticeOut):
    face_found: bool


class NoticeReviewed(NoticeOut):
    contact: str
    statement: str
    source: str
    facts: dict[str, Any]
    counter_statement: str | None
    decided_by: str | None
    protective_likeness: str | None
    updated_at: str | None


class NoticePage(Page):
    notices: list[NoticeReviewed]


class NoticeListQuery(PageQuery):
    state: Literal["", "queue", "all", "open", "taken_down", "rejected", "countered", "restored"] | None = Field(
        None, description="queue (open and countered; also when empty or left out), all, or one state")


class NoticeDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["take_down", "reject", "restore", "keep_down"]
    reason: str = Field(min_length=1)


class CounterNotice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    statement: str = Field(min_length=MIN_STATEMENT, max_length=MAX_STATEMENT)
    good_faith: Literal[True]


class FaceForm(BaseModel):
    """The live challenge's answer: its id, and the selfie video performing it."""

    model_config = ConfigDict(extra="forbid")
    challenge: str = Field(min_length=1)
    mirrored: Literal["true", "false", "1", "0"] = "false"
    media: bytes = Field(json_schema_extra={"format": "binary"})
