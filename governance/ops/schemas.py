"""The operations endpoints' wire shapes (OpenAPI: :mod:`governance.openapi`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ReadyOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]
