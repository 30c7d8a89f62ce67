"""Rights holders' registered characters and their reference embeddings."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import id_factory, json_field, timestamp_field
from policies.characters import CharacterRule


class Character(SQLModel, table=True):
    id: str = Field(default_factory=id_factory("ch"), primary_key=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    name: str = Field(max_length=200)
    aliases: list[str] = json_field(list)
    rule: CharacterRule
    licensees: list[str] = json_field(list)  # account ids
    attribution: str | None = Field(default=None, max_length=60)  # the credit the attribution rule requires
    created_at: datetime = timestamp_field()


class CharacterReference(SQLModel, table=True):
    """A reference image of a character, kept as its embedding under the operator's image encoder (the
    picture itself is not stored): what the gate's visual check compares the output's frames with."""

    id: str = Field(default_factory=id_factory("ref"), primary_key=True)
    character_id: str = Field(foreign_key="character.id", index=True)
    encoder: str  # which model made the embedding; others' embeddings are not compared
    embedding: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]  # float32 row
    created_at: datetime = timestamp_field()
