"""The restrictions API's wire shapes (OpenAPI: :mod:`governance.openapi`): a likeness's restrictions, and the
approvals and drafts its owner is asked about. Descriptions only: the views and services check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.restrictions import MAX_NOTE_CHARS, MAX_PHRASE_CHARS, MAX_PHRASES

CategoryName = Literal["political", "violence", "sexual", "medical_claims", "alcohol_drugs"]


class RestrictionsIn(BaseModel):
    """Replaces the likeness's restrictions; each field optional (absent: empty, or false)."""

    model_config = ConfigDict(extra="forbid")
    categories: list[CategoryName] = Field(default_factory=list)
    phrases: list[str] = Field(default_factory=list, max_length=MAX_PHRASES,
                               description=f"words or phrases, each one printable line of at most {MAX_PHRASE_CHARS} "
                                           "characters with a letter or digit")
    note: str = Field("", max_length=MAX_NOTE_CHARS)
    draft_approval: bool = Field(False, description="true: the owner approves each sealed draft before release")


class RestrictionsOut(BaseModel):
    likeness: str
    categories: list[CategoryName]
    phrases: list[str]
    note: str
    draft_approval: bool


class ApprovalOut(BaseModel):
    likeness: str
    decision: str | None
    reasons: list[str]
    rules: list[str]
    created_at: str
    decided_at: str | None = None


class ApprovalsOut(BaseModel):
    generation: str
    state: str
    prompt: str | None = None
    approvals: list[ApprovalOut]


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "deny"]


class DraftOut(BaseModel):
    likeness: str
    decision: str | None
    expires_at: str | None
    decided_at: str | None


class DraftsOut(BaseModel):
    generation: str
    state: str
    drafts: list[DraftOut]


class DraftDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
