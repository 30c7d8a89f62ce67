"""The generations API's wire shapes (OpenAPI: :mod:`governance.openapi`): requests, a generation as its reader
sees it, held generations' questions and answers. Descriptions only: the views and services check."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from governance.generations.services.generations import MAX_LIKENESSES, MAX_PROMPT, MAX_REASON
from governance.openapi import Page, PageQuery

StateName = Literal["requested", "prechecked", "generating", "scanning", "sealing", "released", "blocked", "held"]


class GenerationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    likenesses: list[str] | None = Field(None, max_length=MAX_LIKENESSES, json_schema_extra={"uniqueItems": True},
                                         description="likeness ids the video may show (each needs consent); "
                                                     "null: none")
    seed: int | None = Field(None, ge=0, lt=2**63)
    remix_of: str | None = Field(None, description="the released generation this one remixes")


class GenerationAccepted(BaseModel):
    """202: the request passed (``prechecked``: the job runs) or not (``blocked`` with ``reasons``)."""

    id: str
    state: StateName
    reasons: list[str]


class GenerationOut(BaseModel):
    """A generation as its reader may see it: likeness ids the reader may not know read "another enrolled
    person"."""

    id: str
    state: StateName
    reasons: list[str]
    prompt: str
    seed: int | None
    likenesses: list[str]
    decisions: list[dict[str, Any]]
    faces_found: list[dict[str, Any]]
    created_at: str
    taken_down: bool
    content_id: str | None = None
    released_at: str | None = None


class GenerationPage(Page):
    generations: list[GenerationOut]


class GenerationQuery(PageQuery):
    state: StateName | None = None
    since: date | AwareDatetime | None = Field(None, description="a date (midnight UTC) or a time with a zone; "
                                                                 "inclusive")
    until: date | AwareDatetime | None = Field(None, description="a date (midnight UTC) or a time with a zone; "
                                                                 "exclusive, after since (400 otherwise)")


class ReviewOut(BaseModel):
    likeness: str
    decision: str | None
    distance: float
    first_frame: int
    last_frame: int
    pose: str | None
    box: list[int]
    created_at: str
    decided_at: str | None = None
    frames: list[str] | None = Field(None, description="base64 JPEG frames the face is in")


class ReviewsOut(BaseModel):
    generation: str
    state: StateName
    reviews: list[ReviewOut]


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirm", "dismiss"]


class Takedown(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, min_length=1, max_length=MAX_REASON,
                               description="one line; required of an admin not in the video and not its requester")


class TakedownQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, min_length=1, max_length=MAX_REASON)


class ConsentRecordOut(BaseModel):
    """The openings of a sealed generation's public commitments the reader may see."""

    model_config = ConfigDict(extra="allow")
    generation_id: str
    content_id: str | None
    scheme: str
    people: int
