"""The C2PA Soft Binding Resolution API's wire shapes (its own OpenAPI 1.0.0 names: ``maxResults``,
``manifestId``...). Descriptions only: the views and services check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from provenance.softbinding import FINGERPRINT_ALG, MAX_RESULTS_LIMIT, WATERMARK_ALG

Alg = Literal["dev.consentgate.watermark.1", "dev.consentgate.fingerprint.1"]
assert set(Alg.__args__) == {WATERMARK_ALG, FINGERPRINT_ALG}  # type: ignore[attr-defined]
_B64 = r"^[A-Za-z0-9+/]*={0,2}$"


class BindingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alg: Alg
    value: str = Field(min_length=1, pattern=_B64, description="the soft binding value, base64")
    maxResults: int = Field(10, ge=1, le=MAX_RESULTS_LIMIT)  # the specification's name


class MaxResultsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    maxResults: int = Field(10, ge=1, le=MAX_RESULTS_LIMIT)


class ContentQuery(MaxResultsQuery):
    alg: Alg | None = None


class BindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alg: Alg
    value: str = Field(min_length=1, pattern=_B64)


class ManifestQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    returnActiveManifest: Literal["true", "false"] = "false"


class MatchOut(BaseModel):
    manifestId: str
    similarityScore: int | None = Field(None, ge=0, le=100)


class MatchesOut(BaseModel):
    matches: list[MatchOut]


class AlgOut(BaseModel):
    alg: str


class AlgorithmsOut(BaseModel):
    watermarks: list[AlgOut]
    fingerprints: list[AlgOut]
