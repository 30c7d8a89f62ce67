"""The verification API's wire shapes (OpenAPI: :mod:`governance.openapi`). Descriptions only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class VerifyForm(BaseModel):
    """Exactly one video or image in ``media``; nothing uploaded is kept."""

    model_config = ConfigDict(extra="forbid")
    media: bytes = Field(json_schema_extra={"format": "binary"})


class ReportOut(BaseModel):
    """The verification report: the C2PA manifest's state, the watermark, the fingerprint, the service's record
    and its log entry, the labels, and the verdict (``origin``, ``ai_generated``)."""

    model_config = ConfigDict(extra="allow")
    c2pa: dict[str, Any] | None = None
    watermark: dict[str, Any] | None = None
    fingerprint: dict[str, Any] | None = None
