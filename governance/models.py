"""Every table, so ``SQLModel.metadata`` is complete (migrations, ``init_db``): each domain's ``models`` module,
and the cross-cutting tables of :mod:`governance.bookkeeping` (the audit trail, counters and the index change feed).
Import it where the whole schema is needed (Alembic's environment, :func:`governance.db.migrate`); code that reads
or writes some tables imports those tables' modules only."""

from __future__ import annotations

from governance.accounts import models as accounts  # noqa: F401
from governance.bookkeeping import AuditEvent, Counter, IndexChange
from governance.characters import models as characters  # noqa: F401
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

__all__ = ["AuditEvent", "Counter", "IndexChange"]
