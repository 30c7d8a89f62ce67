"""The transparency log API's wire shapes (OpenAPI: :mod:`governance.openapi`). Descriptions only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SignedHeadOut(BaseModel):
    """The signed tree head exactly as signed and kept; the trust anchor is linked (``Link: rel=trust-anchor``)."""

    model_config = ConfigDict(extra="allow")
    tree_size: int


class InclusionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tree_size: int | None = Field(None, ge=0, lt=10**15, description="default: the whole log")


class ConsistencyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    old_size: int = Field(ge=0, lt=10**15, description="the tree size you saw before")
    tree_size: int | None = Field(None, ge=0, lt=10**15, description="default: the whole log")


class InclusionOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int
    tree_size: int


class ConsistencyOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    old_size: int
    tree_size: int
