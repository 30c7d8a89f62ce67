"""Teen accounts and their guardians. No Flask here; services never commit.

An admin marks an account as a minor's and links it to a guardian's account (``PUT /v1/accounts/{ref}/guardian``,
or ``guardian`` when creating it). Then:

- a minor's likeness is never opened to ``everyone`` or ``mutuals`` (409; marking an account a minor closes those
  to ``approved``): every other account's use rests on a grant;
- each grant the minor makes waits for the guardian (:class:`GuardianApproval`); only the guardian's approval
  creates it, so the consent check (``policies.consent``) never sees an unapproved grant;
- the guardian is told of every use of the minor's likenesses and every takedown (a copy of each such
  notification), and may take any video of the minor down (:func:`governance.guardians.rules.is_guardian_of_any`);
- unlinking the guardian tells the guardian; with no guardian, no grant can be approved.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from governance.accounts.models import Account, Role
from governance.accounts.services import create_account, notify, resolve_account
from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.db import serialize_consent
from governance.errors import Conflict, Forbidden, InvalidInput, NotFound
from governance.guardians.models import GuardianApproval, Guardianship
from governance.guardians.rules import CLOSED_TO_MINORS, approved_by, guardianship
from governance.likenesses.models import Grant, Likeness
from governance.likenesses.services.likenesses import FollowWithdrawal
from governance.pagination import Page, PageRequest, SortKey, paginate
from policies.consent import LikenessMode

#: Modes a minor's likeness may not take: each would let someone use it without a grant the guardian approved.
DECISIONS = ("approve", "deny")


def mark_minor(session: Session, admin: Account | None, minor_ref: str, guardian_ref: Any, *,
               follow: FollowWithdrawal | None) -> Guardianship:
    """Mark ``minor_ref``'s account a minor's, linked to ``guardian_ref``'s (re-linking an existing minor to another
    guardian). ``admin`` is the administrator who asked (None: the operator's CLI). Refused: an unknown account
    (404), the account itself or another minor as guardian (422). Its likenesses open to ``everyone`` or ``mutuals``
    are set to ``approved``; its grants the guardian has not approved are suspended, and ``follow`` takes down the
    remixes made under each (:mod:`governance.workflows.withdrawals` passes it in; None only for an account that
    holds no grant yet, a new one: a suspension then raises ``RuntimeError``). Audited; the guardian is told."""
    admin_id = admin.id if admin is not None else None
    if not isinstance(guardian_ref, str) or not guardian_ref:
        raise InvalidInput("send the guardian's account name (or id) as 'guardian'")
    minor = resolve_account(session, minor_ref)
    guardian = resolve_account(session, guardian_ref)
    if admin_id == minor.id:
        raise Forbidden("an account cannot link its own guardian; another administrator must")
    if guardian.id == minor.id:
        raise InvalidInput("an account cannot be its own guardian")
    if minor.role is not Role.CREATOR:
        raise InvalidInput(f"{minor.name!r} is a {minor.role.value} account: only a creator account can be a "
                           "minor's")
    if guardian.role is not Role.CREATOR:
        raise InvalidInput(f"{guardian.name!r} is a {guardian.role.value} account: a guardian must be a creator "
                           "account (a person's own account)")
    if guardianship(session, guardian.id) is not None:
        raise InvalidInput(f"{guardian.name!r} is a minor's account and cannot be a guardian")
    if session.exec(select(Guardianship).where(Guardianship.guardian_id == minor.id)).first() is not None:
        raise InvalidInput(f"{minor.name!r} is a guardian: a guardian cannot be marked a minor")
    row = guardianship(session, minor.id) or Guardianship(minor_id=minor.id)
    previous = row.guardian_id
    row.guardian_id, row.marked_by, row.updated_at = guardian.id, admin_id, utcnow()
    session.add(row)
    serialize_consent(session, [minor.id])
    for lk in session.exec(select(Likeness).where(Likeness.owner_id == minor.id)).all():
        if lk.mode in CLOSED_TO_MINORS:
            record(session, Tag.LIKENESS_MODE, actor_id=admin_id, subject=lk.id, old=lk.mode.value,
                   new=LikenessMode.APPROVED.value, why="owner marked a minor")
            lk.mode = LikenessMode.APPROVED
            session.add(lk)
    if previous and previous != guardian.id:
        _cancel_pending(session, minor.id, "the guardian changed")
        notify(session, previous, "guardian:unlinked", f"you are no longer the guardian of {minor.name!r}")
    _suspend_grants(session, admin, minor, guardian, follow)
    record(session, Tag.GUARDIAN_LINK, actor_id=admin_id, subject=minor.id, guardian=guardian.id,
           previous=previous)
    notify(session, guardian.id, "guardian:linked",
           f"you are now the guardian of {minor.name!r}: you approve each grant of their likeness, are told of every "
           "use, and may take any video of them down")
    notify(session, minor.id, "guardian:linked", f"{guardian.name!r} is now your guardian")
    return row


def create_minor_account(session: Session, admin: Account | None, name: object, role: object, guardian_ref: Any, *,
                         daily_quota: object = None) -> tuple[Account, str, Guardianship]:
    """A new minor's account linked to ``guardian_ref``'s from the start, with its API token (shown once): as
    :func:`governance.accounts.services.create_account` then :func:`mark_minor`, in one transaction (the caller
    commits both or neither). Only ``role`` ``creator`` (422 otherwise, nothing created)."""
    if role != Role.CREATOR.value:
        raise InvalidInput(f"only a creator account can be a minor's: 'guardian' cannot go with role {role!r}")
    account, token = create_account(session, name, role, actor=admin, daily_quota=daily_quota)
    session.flush()
    return account, token, mark_minor(session, admin, account.id, guardian_ref, follow=None)  # a new one: no grant


def unlink(session: Session, admin: Account, minor_ref: str) -> Guardianship:
    """Unlink a minor's guardian (the account stays a minor's: no grant can be approved until another is
    linked). Pending approvals are cancelled; the guardian is told; audited. 404 for an account that is not a
    minor's or has no guardian linked; 403 for an account unlinking its own guardian."""
    minor = resolve_account(session, minor_ref)
    if admin.id == minor.id:
        raise Forbidden("an account cannot unlink its own guardian; another administrator must")
    row = guardianship(session, minor.id)
    if row is None or row.guardian_id is None:
        raise NotFound(f"{minor.name!r} has no guardian linked")
    guardian_id = row.guardian_id
    row.guardian_id, row.updated_at = None, utcnow()
    session.add(row)
    _cancel_pending(session, minor.id, "the guardian was unlinked")
    record(session, Tag.GUARDIAN_UNLINK, actor_id=admin.id, subject=minor.id, guardian=guardian_id)
    notify(session, guardian_id, "guardian:unlinked",
           f"you are no longer the guardian of {minor.name!r} (unlinked by an administrator)")
    return row


def end_minority(session: Session, admin: Account | None, minor_ref: str, reason: Any) -> Account:
    """The account is no longer a minor's (its holder came of age; an administrator checked it and says how in
    ``reason``, one printable line of 3-500 characters): the guardianship ends, grants still waiting for the
    guardian are cancelled, and from now on the account holder alone decides (grants the guardian approved stay;
    the likenesses stay as they are: nobody opens them to ``everyone`` but their owner). ``admin`` None: the
    operator's CLI. Refused: an unknown account or one that is not a minor's (404), an account ending its own
    minority (403), no reason (422). Audited (``account:minority:end``); the holder and the guardian are told."""
    admin_id = admin.id if admin is not None else None
    if not isinstance(reason, str) or not 3 <= len(reason.strip()) <= 500 or not reason.isprintable():
        raise InvalidInput("say how the account holder's age was checked as 'reason': one line of 3-500 printable "
                           "characters (it is kept in the audit log)")
    minor = resolve_account(session, minor_ref)
    if admin_id == minor.id:
        raise Forbidden("an account cannot end its own minority; another administrator must")
    row = guardianship(session, minor.id)
    if row is None:
        raise NotFound(f"{minor.name!r} is not a minor's account")
    guardian_id = row.guardian_id
    serialize_consent(session, [minor.id])
    _cancel_pending(session, minor.id, "the account holder came of age")
    session.delete(row)
    record(session, Tag.MINORITY_END, actor_id=admin_id, subject=minor.id, guardian=guardian_id,
           reason=reason.strip())
    notify(session, minor.id, "guardian:ended",
           "your account is no longer a minor's: you alone decide who may use your likeness")
    if guardian_id:
        notify(session, guardian_id, "guardian:ended",
               f"{minor.name!r} came of age: you are no longer their guardian")
    return minor


def _suspend_grants(session: Session, admin: Account | None, minor: Account, guardian: Account,
                    follow: FollowWithdrawal | None) -> None:
    """Every active grant of ``minor``'s likenesses that ``guardian`` has not approved (made before the account
    was a minor's, or approved by a previous guardian) is revoked (``likeness:grant:revoke``, why ``suspended``)
    and becomes a pending :class:`GuardianApproval` the guardian approves (the grant is made again) or denies.
    The remixes its grantee made under it are taken down (``follow``), as a revocation's are: a guardian's
    approval makes the grant again, not the videos. The grantee and the guardian are told."""
    from governance.likenesses.services.likenesses import active_grants

    admin_id = admin.id if admin is not None else None
    why = "suspended: the owner was marked a minor's; it waits for the guardian's approval"
    for lk in session.exec(select(Likeness).where(Likeness.owner_id == minor.id)).all():
        for g in active_grants(session, lk.id):
            if approved_by(session, g.id, guardian.id):
                continue
            if follow is None or admin is None:
                raise RuntimeError(f"grant {g.id} must be suspended, and its remixes followed, by an administrator")
            g.revoked_at = utcnow()
            session.add(g)
            record(session, Tag.GRANT_REVOKE, actor_id=admin_id, subject=lk.id, grantee=g.grantee_id, grant=g.id,
                   why=why)
            follow(session, admin, lk.id, g.grantee_id, f"likeness {lk.id}: {why}", owner_id=minor.id)
            a = session.exec(select(GuardianApproval).where(
                GuardianApproval.likeness_id == lk.id, GuardianApproval.grantee_id == g.grantee_id,
                GuardianApproval.state == "pending")).first()
            if a is None:
                a = GuardianApproval(likeness_id=lk.id, grantee_id=g.grantee_id, minor_id=minor.id,
                                     guardian_id=guardian.id)
                session.add(a)
                record(session, Tag.GUARDIAN_APPROVAL, actor_id=admin_id, subject=lk.id, approval=a.id,
                       grantee=g.grantee_id, decision="requested", suspended_grant=g.id)
            grantee = session.get(Account, g.grantee_id)
            notify(session, guardian.id, "guardian:grant:requested",
                   f"{minor.name!r} had let {grantee.name if grantee else g.grantee_id!r} use their likeness "
                   f"{lk.id} before you were linked; that grant is suspended until you approve or deny it: on the "
                   f"page /me/guardian, or POST /v1/guardian/approvals/{a.id}", likeness_id=lk.id)
            notify(session, g.grantee_id, "grant:suspended",
                   f"your grant on likeness {lk.id} is suspended: its owner is a minor and the guardian must "
                   "approve it first", likeness_id=lk.id)


def _cancel_pending(session: Session, minor_id: str, why: str) -> None:
    for a in session.exec(select(GuardianApproval).where(GuardianApproval.minor_id == minor_id,
                                                         GuardianApproval.state == "pending")).all():
        a.state, a.decided_at = "cancelled", utcnow()
        session.add(a)
        record(session, Tag.GUARDIAN_APPROVAL, actor_id=None, subject=a.likeness_id, approval=a.id,
               decision="cancelled", why=why)


def request_grant(session: Session, minor: Account, likeness: Likeness, grantee_ref: str) -> GuardianApproval:
    """The minor's grant of their ``likeness`` to ``grantee_ref``'s account, as a request to the guardian (one pending
    per pair). Refused as a grant is (:func:`governance.likenesses.services.likenesses.grant`: someone else's
    likeness 404, an unknown account 404, the owner or an ``only_me`` likeness 422, a likeness that cannot consent
    409), and 409 when no guardian is linked."""
    from governance import authz
    from governance.authz import Action
    from governance.likenesses.services.likenesses import grantee_of

    authz.require(Action.LIKENESS_GRANT, minor, owner=likeness.owner_id == minor.id, key=likeness.id)
    grantee = grantee_of(session, likeness, grantee_ref)
    row = guardianship(session, minor.id)
    if row is None:
        raise Conflict(f"{minor.name!r} is not a minor's account: grant directly")
    if row.guardian_id is None:
        raise Conflict("no guardian is linked to this account: a grant needs the guardian's approval",
                       reason="no_guardian")
    pending = session.exec(select(GuardianApproval).where(
        GuardianApproval.likeness_id == likeness.id, GuardianApproval.grantee_id == grantee.id,
        GuardianApproval.state == "pending")).first()
    if pending is not None:
        return pending
    a = GuardianApproval(likeness_id=likeness.id, grantee_id=grantee.id, minor_id=minor.id,
                         guardian_id=row.guardian_id)
    session.add(a)
    record(session, Tag.GUARDIAN_APPROVAL, actor_id=minor.id, subject=likeness.id, approval=a.id,
           grantee=grantee.id, decision="requested")
    notify(session, row.guardian_id, "guardian:grant:requested",
           f"{minor.name!r} asks to let {grantee.name!r} use their likeness {likeness.id}; approve or deny it: on the "
           f"page /me/guardian, or POST /v1/guardian/approvals/{a.id}", likeness_id=likeness.id)
    return a


def page_pending_for(session: Session, guardian: Account, page: PageRequest) -> Page[GuardianApproval]:
    """One page of the requests waiting for ``guardian``, oldest first."""
    q = select(GuardianApproval).where(GuardianApproval.guardian_id == guardian.id,
                                       GuardianApproval.state == "pending")
    return paginate(session, q, (SortKey(GuardianApproval.created_at), SortKey(GuardianApproval.id)), page)


def pending_for(session: Session, guardian: Account) -> list[GuardianApproval]:
    return list(session.exec(select(GuardianApproval).where(
        GuardianApproval.guardian_id == guardian.id, GuardianApproval.state == "pending")
        .order_by(GuardianApproval.created_at)).all())  # type: ignore[arg-type]


def decide(session: Session, guardian: Account, approval_id: str, decision: Any) -> GuardianApproval:
    """The guardian approves (the grant is made, as the minor asked) or denies a pending request. 404 for a
    request that is not for this guardian (or unknown); 409 when it is no longer pending, or the likeness can no
    longer be granted (deleted, ``only_me``, not live)."""
    from governance.likenesses.services.likenesses import active_grant, lock_likeness, require_consent_capable

    a = session.get(GuardianApproval, approval_id)
    row = guardianship(session, a.minor_id) if a is not None else None
    if a is None or row is None or row.guardian_id != guardian.id or a.guardian_id != guardian.id:
        raise NotFound(f"no approval {approval_id!r}")
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if a.state != "pending":
        raise Conflict(f"approval {a.id} is {a.state}")
    a.decided_at = utcnow()
    if decision == "deny":
        a.state = "denied"
        session.add(a)
        record(session, Tag.GUARDIAN_APPROVAL, actor_id=guardian.id, subject=a.likeness_id, approval=a.id,
               decision="denied")
        notify(session, a.minor_id, "guardian:grant:denied",
               f"your guardian did not approve the grant of likeness {a.likeness_id}", likeness_id=a.likeness_id)
        return a
    serialize_consent(session, [a.minor_id])
    likeness = lock_likeness(session, a.likeness_id)
    if likeness is None or likeness.owner_id != a.minor_id:
        raise Conflict(f"likeness {a.likeness_id} no longer exists")
    if likeness.mode is LikenessMode.ONLY_ME:
        raise Conflict(f"likeness {a.likeness_id} is now set to only_me; nothing to grant")
    require_consent_capable(session, likeness, f"grant likeness {likeness.id}")
    g = active_grant(session, likeness.id, a.grantee_id)
    if g is None:
        g = Grant(likeness_id=likeness.id, grantee_id=a.grantee_id)
        session.add(g)
        record(session, Tag.GRANT_CREATE, actor_id=a.minor_id, subject=likeness.id, grantee=a.grantee_id,
               grant=g.id, approved_by=guardian.id)
    a.state, a.grant_id = "approved", g.id
    session.add(a)
    record(session, Tag.GUARDIAN_APPROVAL, actor_id=guardian.id, subject=a.likeness_id, approval=a.id,
           decision="approved", grant=g.id)
    notify(session, a.minor_id, "guardian:grant:approved",
           f"your guardian approved the grant of likeness {a.likeness_id}", likeness_id=a.likeness_id)
    return a


def view(a: GuardianApproval, session: Session) -> dict[str, Any]:
    names = {acc.id: acc.name for acc in session.exec(select(Account).where(
        Account.id.in_([a.minor_id, a.grantee_id]))).all()}  # type: ignore[attr-defined]
    return {"id": a.id, "likeness": a.likeness_id, "minor": names.get(a.minor_id), "grantee": names.get(a.grantee_id),
            "state": a.state, "grant": a.grant_id, "created_at": iso(a.created_at), "decided_at": iso(a.decided_at)}


def guardianship_view(row: Guardianship, session: Session) -> dict[str, Any]:
    guardian = session.get(Account, row.guardian_id) if row.guardian_id else None
    return {"account": row.minor_id, "minor": True, "guardian": guardian.name if guardian else None,
            "updated_at": iso(row.updated_at)}
