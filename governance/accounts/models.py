"""Accounts and their roles, contacts (who lists whom) and notifications."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from governance.columns import id_factory, optional_timestamp_field, timestamp_field


class Role(StrEnum):
    CREATOR = "creator"
    RIGHTS_HOLDER = "rights_holder"
    REGULATOR = "regulator"
    ADMIN = "admin"


class Account(SQLModel, table=True):
    id: str = Field(default_factory=id_factory("acc"), primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    role: Role
    token_hash: str = Field(index=True, unique=True, repr=False)
    daily_quota: int | None = None  # None: the service default
    created_at: datetime = timestamp_field()


class Contact(SQLModel, table=True):
    """``owner_id`` lists ``contact_id`` as a contact; mutual when the reverse row exists too."""

    owner_id: str = Field(foreign_key="account.id", primary_key=True)
    contact_id: str = Field(foreign_key="account.id", primary_key=True)
    created_at: datetime = timestamp_field()


class Notification(SQLModel, table=True):
    id: str = Field(default_factory=id_factory("ntf"), primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True)
    kind: str
    message: str
    generation_id: str | None = None
    likeness_id: str | None = None
    created_at: datetime = timestamp_field()
    read_at: datetime | None = optional_timestamp_field()
