"""Every table, so ``SQLModel.metadata`` is complete (migrations, ``init_db``): each domain's ``models`` module,
and the cross-cutting tables defined here (the audit trail, counters and the index change feed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.accounts import models as accounts  # noqa: F401
from governance.characters import models as characters  # noqa: F401
from governance.columns import json_field, timestamp_field
from governance.generations import models as generations  # noqa: F401
from governance.guardians import models as guardians  # noqa: F401
from governance.likenesses import models as likenesses  # noqa: F401
from governance.log import models as log  # noqa: F401
from governance.notices import models as notices  # noqa: F401
from governance.pages import models as pages  # noqa: F401
from governance.remix import models as remix  # noqa: F401
from governance.restrictions import models as restrictions  # noqa: F401
from governance.softbinding import models as softbinding  # noqa: F401
from governance.verification import models as verification  # noqa: F401


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tag: str = Field(index=True)
    actor_id: str | None = None
    subject: str | None = Field(default=None, index=True)
    data: dict[str, Any] = json_field(dict)
    created_at: datetime = timestamp_field()


class Counter(SQLModel, table=True):
    """Monotonic counters bumped atomically (``UPDATE ... SET value = value + 1``) in the same transaction as
    the change they count; in-memory indexes compare them to skip a resync when nothing changed."""

    name: str = Field(primary_key=True)
    value: int = Field(default=0, sa_type=sa.BigInteger)  # type: ignore[call-overload]


class IndexChange(SQLModel, table=True):
    """The change feed the in-memory indexes follow: which likeness or fingerprint (``key``) was added, changed or
    removed at ``version`` of its counter (``kind``: ``likenesses`` or ``fingerprints``). Written in the
    transaction of the change, under the counter's row lock, so versions become visible in order and a process
    that has applied version N reads ``version > N`` and nothing else (:func:`governance.db.changes_since`)."""

    kind: str = Field(primary_key=True)
    version: int = Field(primary_key=True, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    key: str
    created_at: datetime = timestamp_field()
