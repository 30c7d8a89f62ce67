"""The pages' sign-in sessions: one row per browser signed in, so that signing out ends it on the server too."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from governance.columns import optional_timestamp_field, timestamp_field


class PageSession(SQLModel, table=True):
    """A browser's session, keyed by the SHA-256 (hex) of the random secret its signed cookie carries: the
    database never holds a secret a stolen backup could replay. ``ended_at`` is set by signing out (or by an
    expiry seen on use); an ended session is refused whatever its cookie says. ``token_hash``: the account's
    token hash at sign-in (as ``Account.token_hash``): a session outlives no token rotation or revocation."""

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's secret
    account_id: str = Field(foreign_key="account.id", index=True)
    token_hash: str = Field(max_length=64, repr=False)
    created_at: datetime = timestamp_field()
    ended_at: datetime | None = optional_timestamp_field()
