"""What a minor's likeness may not do, read from the guardianship alone: the part of
:mod:`governance.guardians.services` the likenesses' own services ask (apart, so that they need not import the
guardians' services, which build on theirs)."""

from __future__ import annotations

from sqlmodel import Session

from governance.errors import Conflict
from governance.guardians.models import Guardianship
from governance.likenesses.models import Likeness
from policies.consent import LikenessMode

__all__ = ["CLOSED_TO_MINORS", "check_mode", "guardianship"]

#: The modes a minor's likeness is never open to: every use needs a grant the guardian approved.
CLOSED_TO_MINORS = (LikenessMode.EVERYONE, LikenessMode.MUTUALS)


def guardianship(session: Session, account_id: str) -> Guardianship | None:
    """The account's guardianship row: not None when the account is a minor's."""
    return session.get(Guardianship, account_id)


def check_mode(session: Session, likeness: Likeness, mode: LikenessMode) -> None:
    """409 when ``likeness`` is a minor's and ``mode`` would open it without the guardian's approval."""
    if mode in CLOSED_TO_MINORS and guardianship(session, likeness.owner_id) is not None:
        raise Conflict(f"a minor's likeness cannot be opened to {mode.value}: every use needs a grant the guardian "
                       "approved (use 'approved' and grant accounts one by one)", reason="minor")
