"""What verification searches when a video's marks are gone: released videos' perceptual fingerprints."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import timestamp_field


class ContentFingerprint(SQLModel, table=True):
    """The perceptual fingerprint of a released video, for finding its record when marks are gone."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    content_id: str = Field(index=True)
    data: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    created_at: datetime = timestamp_field()
