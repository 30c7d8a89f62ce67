"""The likenesses API's wire shapes (OpenAPI: :mod:`governance.openapi`): enrollment, a likeness as its owner
sees it, grants, disputes and protected figures. Descriptions only: the views and services check."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from governance.likenesses.services.likenesses import MAX_DISPLAY_NAME
from governance.openapi import Page, PageQuery

ModeName = Literal["only_me", "approved", "mutuals", "everyone"]
_FILES: JsonDict = {"items": {"type": "string", "format": "binary"}}


class DisputeBrief(BaseModel):
    id: str
    kind: str
    state: Literal["open", "resolved"]
    outcome: str | None
    created_at: str
    resolved_at: str | None


class EnrolledOut(BaseModel):
    """A likeness: ``verification`` live|photo, ``status`` active|disputed|pending_review, whether it
    ``can_consent`` (if not, ``protective_because`` and, for a photo one, ``how_to_verify``)."""

    id: str
    owner: str
    mode: ModeName
    display_name: str | None
    embeddings: int
    created_at: str
    verification: Literal["live", "photo"]
    status: str
    verified_at: str | None
    can_consent: bool
    figure: str | None
    identity: Any = None
    disputes: list[DisputeBrief]
    protective_because: str | None = None
    how_to_verify: str | None = None


class GrantBrief(BaseModel):
    account: str
    grant: str
    since: str


class LikenessOut(EnrolledOut):
    backend: str
    grants: list[GrantBrief] | None = None


class LikenessPage(Page):
    likenesses: list[LikenessOut]


class ModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: ModeName


class GrantOut(BaseModel):
    """201 a new grant, 200 one that existed; 202 for a minor's likeness: the guardian approves it first."""

    likeness: str
    account: str
    grant: str | None
    guardian_approval: str | None = None
    state: str | None = None


class ChallengeOut(BaseModel):
    id: str
    poses: list[str]
    expires_at: str
    created_at: str
    ttl_s: float


class EnrollForm(BaseModel):
    """Photos (or a video) in ``media``: a photo likeness, protective only; one selfie video with ``challenge``:
    a live one."""

    model_config = ConfigDict(extra="forbid")
    media: list[bytes] = Field(min_length=1, json_schema_extra=_FILES)
    challenge: str | None = Field(None, min_length=1, description="the live challenge's id")
    display_name: str | None = Field(None, max_length=MAX_DISPLAY_NAME)
    mirrored: Literal["true", "false", "1", "0"] = "false"


class VerifyForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    media: list[bytes] = Field(min_length=1, max_length=1, json_schema_extra=_FILES)
    challenge: str = Field(min_length=1)
    mirrored: Literal["true", "false", "1", "0"] = "false"


class Party(BaseModel):
    id: str
    name: str


class DisputeOut(BaseModel):
    id: str
    kind: str
    state: Literal["open", "resolved"]
    likeness: str | None
    claimant: Party | None
    holder_likeness: str | None
    holder: Party | None
    figure: dict[str, Any] | None
    distance: float | None
    detail: str | None
    outcome: str | None
    reason: str | None
    resolved_by: str | None
    created_at: str
    resolved_at: str | None
    outcomes: list[str]


class DisputePage(Page):
    disputes: list[DisputeOut]


class DisputeQuery(PageQuery):
    state: Literal["open", "resolved", "all"] = "open"


class DisputeResolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(min_length=1, description="one of the dispute's ``outcomes``")
    reason: str = Field(min_length=1, max_length=1000)


class FigureOut(BaseModel):
    id: str
    name: str
    aliases: list[str]
    embeddings: int
    backend: str
    created_at: str


class FigureAdded(FigureOut):
    reviews_opened: list[str]


class FigurePage(Page):
    figures: list[FigureOut]


class FigureForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    alias: list[str] = Field(default_factory=list, max_length=20)
    media: list[bytes] = Field(min_length=1, json_schema_extra=_FILES)
