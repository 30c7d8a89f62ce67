"""A likeness's consent withdrawn, all the way: its owner revokes a grant, closes it to ``only_me`` or deletes it,
or an admin's dispute resolution deletes it. The likenesses' services change the likeness and its grants and
audit them; every remix made under the withdrawn consent is taken down and its descendants follow
(:func:`governance.remix.services.withdraw_likeness`), in the same transaction and at the same step, before
anything of the likeness is deleted. No Flask here; nothing commits.

The stored videos of the remixes taken down are removed after the commit
(:func:`governance.remix.services.sweep_withdrawn_files`), so a rolled-back withdrawal removes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from governance.accounts.models import Account
from governance.guardians import services as guardians_svc
from governance.guardians.models import Guardianship
from governance.likenesses.models import Dispute, Grant, Likeness
from governance.likenesses.services import disputes as disputes_svc
from governance.likenesses.services import likenesses as likenesses_svc
from governance.remix.services import withdraw_likeness

__all__ = ["delete_likeness", "mark_minor", "resolve_dispute", "revoke", "set_mode"]


def set_mode(session: Session, actor: Account, likeness: Likeness, mode: str) -> Likeness:
    """:func:`governance.likenesses.services.likenesses.set_mode`; ``only_me`` withdraws the likeness from every
    remix made by someone else."""
    return likenesses_svc.set_mode(session, actor, likeness, mode, follow=withdraw_likeness)


def revoke(session: Session, actor: Account, likeness: Likeness, grantee_ref: str) -> Grant:
    """:func:`governance.likenesses.services.likenesses.revoke`; the grantee's remixes showing the likeness are
    taken down."""
    return likenesses_svc.revoke(session, actor, likeness, grantee_ref, follow=withdraw_likeness)


def delete_likeness(session: Session, actor: Account, likeness: Likeness) -> None:
    """:func:`governance.likenesses.services.likenesses.delete_likeness`; every remix made by someone else
    showing it is taken down first."""
    likenesses_svc.delete_likeness(session, actor, likeness, follow=withdraw_likeness)


def resolve_dispute(session: Session, admin: Account, dispute: Dispute, outcome: Any, reason: Any) -> Dispute:
    """:func:`governance.likenesses.services.disputes.resolve`; a likeness the outcome deletes is withdrawn from
    remixes as its owner's deletion would be."""
    return disputes_svc.resolve(session, admin, dispute, outcome, reason, follow=withdraw_likeness)


def mark_minor(session: Session, admin: Account, minor_ref: str, guardian_ref: Any) -> Guardianship:
    """:func:`governance.guardians.services.mark_minor`; the remixes made under each grant it suspends are taken
    down, as a revocation's."""
    return guardians_svc.mark_minor(session, admin, minor_ref, guardian_ref, follow=withdraw_likeness)
