"""The accounts API's wire shapes (OpenAPI: :mod:`governance.openapi`): what ``/v1/me``, ``/v1/accounts``,
``/v1/contacts`` and ``/v1/notifications`` take and answer. Descriptions only: the views and services check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.accounts.services import MAX_DAILY_QUOTA
from governance.openapi import Page, PageQuery

ACCOUNT_NAME = r"^[a-z0-9][a-z0-9_.-]{1,63}$"
RoleName = Literal["creator", "rights_holder", "regulator", "admin"]


class AccountOut(BaseModel):
    id: str
    name: str
    role: RoleName


class QuotaOut(BaseModel):
    """Generations a UTC day: ``daily``, ``used`` today, ``left`` (the requests you may still send today before a
    429), ``refused`` at the precheck today (free, at most ``daily`` a day), ``resets_at`` (the next midnight UTC,
    ISO 8601)."""

    daily: int = Field(description="generations a UTC day (the account's own quota, else the service's)")
    used: int = Field(description="generations requested today (UTC) that the precheck let through, whatever "
                                  "became of them")
    left: int = Field(description="requests you may still send today before one is refused with 429: the smaller "
                                  "of daily - used and daily - refused (each request uses a generation or, refused "
                                  "at the precheck, one of the daily refusals); 0 until resets_at")
    refused: int = Field(description="requests refused at the precheck today: they use no generation, but at most "
                                     "daily are taken a day")
    resets_at: str = Field(description="the next midnight UTC (ISO 8601), when used and refused start again at 0")


class MeOut(AccountOut):
    quota: QuotaOut | None = Field(None, description="only for accounts that may request generations")


class TokenOut(AccountOut):
    token: str = Field(description="the new API token, shown this once")


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=ACCOUNT_NAME, description="2-64 characters of a-z, 0-9, '.', '_' or '-'")
    role: RoleName
    daily_quota: int | None = Field(None, ge=0, le=MAX_DAILY_QUOTA,
                                    description="generations a UTC day; null: the service default")
    guardian: str | None = Field(None, min_length=1, description="a minor's account (creator only): the "
                                                                  "guardian's account name or id")


class AccountCreated(AccountOut):
    daily_quota: int | None
    token: str = Field(description="the account's API token, shown this once")
    minor: bool | None = None
    guardian: str | None = None


class AccountListed(AccountOut):
    daily_quota: int | None
    created_at: str


class AccountPage(Page):
    accounts: list[AccountListed]


class TokenRevoked(AccountOut):
    token: None
    token_revoked: Literal[True]


class ContactOut(BaseModel):
    name: str
    mutual: bool


class ContactPage(Page):
    contacts: list[ContactOut]


class NotificationOut(BaseModel):
    id: str
    kind: str
    message: str
    generation: str | None
    created_at: str
    read: bool


class NotificationPage(Page):
    notifications: list[NotificationOut]


class NotificationQuery(PageQuery):
    unread: Literal["true", "false", "1", "0"] = Field("false", description="true: only the unread ones")
