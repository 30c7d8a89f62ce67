"""The manifest of each release, kept so that a copy stripped of it can be resolved back to it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import timestamp_field as _ts


class ReleaseManifest(SQLModel, table=True):
    """One released video's C2PA manifest store (``application/c2pa``, the bytes c2pa embedded) under its active
    manifest's id (``urn:c2pa:<uuid>``), and the SB 942 latent disclosure it carries (provider, system and
    version, ``disclosed_at``: the creation time it states), so that the watermark -> record path gives the same
    answer when the metadata is stripped."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    manifest_id: str = Field(index=True, unique=True)
    content_id: str = Field(index=True)
    store: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    provider: str
    system: str
    system_version: str
    disclosed_at: datetime = _ts()
