"""What a minor's likeness may not do, and who approved what, read from the guardianship rows alone: the part of
:mod:`governance.guardians.services` the likenesses' and the generations' own services ask (apart, so that they
need not import the guardians' services, which build on the likenesses')."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session, select

from governance.errors import Conflict
from governance.guardians.models import GuardianApproval, Guardianship
from governance.likenesses.models import Likeness
from policies.consent import LikenessMode

__all__ = ["CLOSED_TO_MINORS", "approved_by", "check_mode", "guardians_of", "guardianship", "is_guardian_of_any"]

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


def guardians_of(session: Session, account_ids: Collection[str]) -> set[str]:
    """The linked guardians of those of ``account_ids`` that are minors."""
    if not account_ids:
        return set()
    rows = session.exec(select(Guardianship.guardian_id).where(
        Guardianship.minor_id.in_(list(account_ids)))).all()  # type: ignore[attr-defined]
    return {g for g in rows if g}


def is_guardian_of_any(session: Session, account_id: str, owner_ids: Collection[str]) -> bool:
    """Whether ``account_id`` is the linked guardian of a minor among ``owner_ids``."""
    return account_id in guardians_of(session, owner_ids)


def approved_by(session: Session, grant_id: str, guardian_id: str | None) -> bool:
    """Whether ``guardian_id`` approved grant ``grant_id`` (any guardian when ``guardian_id`` is None: a minor
    whose guardian was unlinked keeps the grants approved before)."""
    q = select(GuardianApproval.id).where(GuardianApproval.grant_id == grant_id,
                                          GuardianApproval.state == "approved")
    if guardian_id is not None:
        q = q.where(GuardianApproval.guardian_id == guardian_id)
    return session.exec(q).first() is not None
