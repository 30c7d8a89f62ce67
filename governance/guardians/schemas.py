"""The guardians API's wire shapes (OpenAPI: :mod:`governance.openapi`). Descriptions only: the views and
services check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.openapi import Page


class GuardianLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guardian: str = Field(min_length=1, description="the guardian's account name or id (a creator account)")


class GuardianshipOut(BaseModel):
    account: str
    minor: bool
    guardian: str | None
    updated_at: str | None


class MajorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500,
                        description="how the account holder's age was checked: one printable line, kept in the audit "
                                    "log")


class MajorityOut(BaseModel):
    account: str
    minor: Literal[False]
    guardian: None


class GuardianApprovalOut(BaseModel):
    id: str
    likeness: str
    minor: str | None
    grantee: str | None
    state: str
    grant: str | None
    created_at: str | None
    decided_at: str | None


class GuardianApprovalPage(Page):
    approvals: list[GuardianApprovalOut]


class GuardianDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "deny"]
