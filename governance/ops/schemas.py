"""The operations endpoints' wire shapes (OpenAPI: :mod:`governance.openapi`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ReadyOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]


class HealthOut(BaseModel):
    """``GET /healthz``: the process serves HTTP; which generator and face backend it runs (nothing behind it is
    checked: that is ``GET /readyz``)."""

    status: Literal["ok"]
    generator: str
    face_backend: str
