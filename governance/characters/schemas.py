"""The characters API's wire shapes (OpenAPI: :mod:`governance.openapi`). Descriptions only: the views and
services check."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.characters.services import MAX_ALIASES, MAX_SIMULATE, MIN_SAMPLE_REQUESTS
from governance.openapi import Page

RuleName = Literal["deny", "licensees_only", "allow", "attribution"]


class CharacterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    aliases: list[str] | None = Field(None, max_length=MAX_ALIASES, description="null: none")
    rule: RuleName
    licensees: list[str] | None = Field(None, description="account names or ids (licensees_only); null: none")
    attribution: str | None = Field(None, description="the credit a release must show (attribution)")


class SimulateIn(CharacterIn):
    last: int | None = Field(None, ge=MIN_SAMPLE_REQUESTS, le=MAX_SIMULATE,
                             description="how many of the latest requests to screen")


class CharacterOut(BaseModel):
    id: str
    owner: str
    name: str
    aliases: list[str]
    rule: RuleName
    licensees: list[str]
    attribution: str | None
    created_at: str


class CharacterPage(Page):
    characters: list[CharacterOut]


class ReferencesForm(BaseModel):
    """Reference images of the character (photos or stills), one or more files in ``media``."""

    model_config = ConfigDict(extra="forbid")
    media: list[bytes] = Field(min_length=1, json_schema_extra={"items": {"type": "string", "format": "binary"}})


class ReferencesOut(BaseModel):
    character: str
    references: int


class SimulationOut(BaseModel):
    """Counts only, each resting on at least ``k`` requesters (k-anonymity)."""

    model_config = ConfigDict(extra="allow")


class UsageOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    character: str
    name: str
    rule: RuleName
    k: int
    licensees: list[dict[str, Any]]
