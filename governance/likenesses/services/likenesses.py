"""Likeness records, consent modes, per-account grants and the consent check the gate relies on.

Only a live-verified, undisputed likeness can consent (:func:`policies.consent.can_consent`): a photo,
disputed or pending-review likeness refuses grants and opening modes with 409 and says how to verify;
enrollment itself (challenges, double claims, public figures) lives in :mod:`governance.likenesses.services.enrollment`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sqlmodel import Session, select

from governance import authz, references
from governance.accounts.models import Account
from governance.accounts.services import is_mutual, resolve_account
from governance.audit import Tag, record
from governance.authz import Action
from governance.columns import utcnow
from governance.db import bump, serialize_consent
from governance.errors import Conflict, InvalidInput, NotFound
from governance.guardians.rules import approved_by, check_mode, guardianship
from governance.likenesses.models import Dispute, DisputeKind, DisputeState, Grant, Likeness
from governance.pagination import Page, PageRequest, SortKey, paginate
from governance.restrictions.models import LikenessRestriction
from policies.consent import (
    HOW_TO_VERIFY,
    ConsentFacts,
    LikenessMode,
    LikenessStatus,
    Verification,
    can_consent,
    likeness_permits,
    seen_face_permits,
)
from policies.decisions import Decision, Deny

if TYPE_CHECKING:
    from detectors.enroll import Template
    from detectors.faces import FaceBackend


def build_template(images: Sequence[np.ndarray], backend: FaceBackend, *, require_pose_change: bool = False
                   ) -> Template:
    """A template from photos or selfie-video frames (:func:`detectors.enroll.enroll`); a rejection is
    :class:`InvalidInput` (422) carrying the detector's ``reason``."""
    from detectors.enroll import enroll as build
    from detectors.errors import EnrollmentError

    try:
        return build(images, backend, require_pose_change=require_pose_change)
    except EnrollmentError as e:
        raise InvalidInput(str(e), reason=e.reason) from e


def check_display_name(display_name: str | None) -> str | None:
    """The owner's label, checked (:func:`_display_name`); 422 ``invalid_display_name`` otherwise."""
    return _display_name(display_name)


def store(session: Session, owner: Account, template: Template, *, verification: Verification,
          display_name: str | None = None) -> Likeness:
    """Store a new likeness (status ``active``; the enrollment service opens disputes after) and audit it."""
    likeness = Likeness(
        owner_id=owner.id, backend=template.backend, template=b"",
        embeddings=int(template.embeddings.shape[0]), display_name=check_display_name(display_name),
        verification=verification,
        verified_at=utcnow() if verification is Verification.LIVE else None,
    )
    likeness.template = references.keep(session, likeness.id, template)  # the face image goes to the file store
    session.add(likeness)
    session.flush()
    bump(session, "likenesses")
    record(session, Tag.LIKENESS_ENROLL, actor_id=owner.id, subject=likeness.id,
           embeddings=likeness.embeddings, backend=likeness.backend, verification=verification.value)
    return likeness


def enroll(
    session: Session, owner: Account, images: Sequence[np.ndarray], backend: FaceBackend,
    display_name: str | None = None, *, require_pose_change: bool = False,
) -> Likeness:
    """Build a template from the owner's photos or selfie-video frames and store it as a ``photo`` likeness
    (no search for other claims: :func:`governance.likenesses.services.enrollment.enroll_photos` does that)."""
    check_display_name(display_name)
    template = build_template(images, backend, require_pose_change=require_pose_change)
    return store(session, owner, template, verification=Verification.PHOTO, display_name=display_name)


def open_disputes_of(session: Session, likeness_id: str) -> list[Dispute]:
    """The open disputes on ``likeness_id``'s claim (it is the claimant)."""
    return list(session.exec(select(Dispute).where(Dispute.likeness_id == likeness_id,
                                                   Dispute.state == DisputeState.OPEN)).all())


def facts_of(session: Session, likeness: Likeness, requester_id: str | None = None) -> ConsentFacts:
    """What the database says about ``likeness`` (and ``requester_id``'s grant and contact) now."""
    g = active_grant(session, likeness.id, requester_id) if requester_id else None
    if g is not None:  # a minor's grant counts only with the guardian's approval (docs/guardians.md)
        minor = guardianship(session, likeness.owner_id)
        if minor is not None and not approved_by(session, g.id, minor.guardian_id):
            g = None
    holders: tuple[str, ...] = ()
    if likeness.status is not LikenessStatus.ACTIVE:
        holders = tuple(sorted(d.holder_likeness_id for d in open_disputes_of(session, likeness.id)
                               if d.kind is DisputeKind.DOUBLE_CLAIM and d.holder_likeness_id))
    return ConsentFacts(
        likeness_id=likeness.id, owner_id=likeness.owner_id, mode=likeness.mode, grant_id=g.id if g else None,
        mutual_contact=(requester_id is not None and likeness.mode is LikenessMode.MUTUALS
                        and is_mutual(session, likeness.owner_id, requester_id)),
        verification=likeness.verification, status=likeness.status, disputes=holders,
    )


def require_consent_capable(session: Session, likeness: Likeness, doing: str) -> None:
    """409 unless the likeness can consent (live and active); the problem says why and how to verify."""
    decision = can_consent(facts_of(session, likeness))
    if not decision.allowed:
        raise Conflict(f"cannot {doing}: {decision.reason}", reason=decision.rule.split(":", 1)[1],
                       verification=likeness.verification.value, likeness_status=likeness.status.value,
                       how_to_verify=HOW_TO_VERIFY.replace("{id}", likeness.id))


def is_verified_claim(likeness: Likeness) -> bool:
    """Whether the likeness's owner has shown the face is theirs (live, undisputed): only such owners are told
    about, and may see, outputs where the scan found the face."""
    return likeness.verification is Verification.LIVE and likeness.status is LikenessStatus.ACTIVE


MAX_DISPLAY_NAME = 120


def _display_name(value: str | None) -> str | None:
    """The owner's label for a likeness, checked as it is written: 1-120 printable characters with at least
    one letter or digit. Zero-width, control and direction-changing characters are refused, so a label
    cannot look like another or be empty to the eye. (A label is the owner's own note: it protects no one
    and blocks no prompt; see docs/security.md.)"""
    if value is None:
        return None
    name = value.strip()
    why = None
    if not 1 <= len(name) <= MAX_DISPLAY_NAME:
        why = f"display_name must be 1-{MAX_DISPLAY_NAME} characters, got {len(name)}"
    elif not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        why = f"display_name must be printable text; it contains U+{ord(bad):04X}"
    elif not any(c.isalnum() for c in name):
        why = f"display_name needs a letter or digit, got {name!r}"
    if why is not None:
        raise InvalidInput(why, reason="invalid_display_name")
    return name


def lock_likeness(session: Session, likeness_id: str) -> Likeness | None:
    """Read a likeness row again, with a row lock held to the end of the transaction (PostgreSQL; SQLite has
    none: there :func:`~governance.db.serialize_consent` holds the database's write lock). Consent changes and
    the gate's final check both take it, after ``serialize_consent``."""
    q = select(Likeness).where(Likeness.id == likeness_id).with_for_update().execution_options(populate_existing=True)
    return session.exec(q).first()


def _begin_change(session: Session, likeness: Likeness) -> None:
    """Start a consent change to ``likeness``: serialise it with releases and other changes of its owner's
    consent (docs/security.md), then read the likeness again under its row lock."""
    serialize_consent(session, [likeness.owner_id])
    if lock_likeness(session, likeness.id) is None:
        raise NotFound(f"no likeness {likeness.id!r}")


def owned_by(session: Session, owner: Account) -> list[Likeness]:
    """Every likeness ``owner`` enrolled, oldest first."""
    return list(session.exec(select(Likeness).where(Likeness.owner_id == owner.id)
                             .order_by(Likeness.created_at)).all())  # type: ignore[arg-type]


def page_owned_by(session: Session, owner: Account, page: PageRequest) -> Page[Likeness]:
    """One page of the likenesses ``owner`` enrolled, oldest first."""
    return paginate(session, select(Likeness).where(Likeness.owner_id == owner.id),
                    (SortKey(Likeness.created_at), SortKey(Likeness.id)), page)


def owned_likeness(session: Session, actor: Account, likeness_id: str, action: Action = Action.LIKENESS_READ
                   ) -> Likeness:
    """The likeness, when ``actor`` may do ``action`` on it (its owner); someone else's answers 404 exactly
    like an unknown id, whatever the actor's role."""
    return authz.owned(session, Likeness, actor, likeness_id, action)


def _owner_only(actor: Account, likeness: Likeness, action: Action) -> None:
    """The service's own check, whoever calls it (views, CLI, pages): consent changes are the owner's alone."""
    authz.require(action, actor, owner=likeness.owner_id == actor.id, key=likeness.id)


class FollowWithdrawal(Protocol):
    """What a withdrawn consent takes back beyond the likeness's own rows: the remixes made under it
    (:func:`governance.remix.services.withdraw_likeness`, which :mod:`governance.workflows.withdrawals` passes in;
    the remix services build on these, so they are handed down rather than imported). Called once per withdrawal,
    in the same transaction, before anything of the likeness is deleted: ``grantee_id`` None withdraws it from
    everyone but its owner ``owner_id``; ``reason`` is one line, audited and told."""

    def __call__(self, session: Session, actor: Account, likeness_id: str, grantee_id: str | None, reason: str, *,
                 owner_id: str) -> object: ...


def set_mode(session: Session, actor: Account, likeness: Likeness, mode: str, *,
             follow: FollowWithdrawal) -> Likeness:
    """Set the likeness's consent mode (its owner only). ``only_me`` revokes every grant and withdraws the
    likeness from remixes (``follow``). 422 for an unknown mode; 409 when a minor's likeness would open to
    everyone or mutuals, or a likeness that cannot consent would open at all."""
    try:
        new = LikenessMode(mode)
    except ValueError as e:
        raise InvalidInput(f"mode must be one of {[m.value for m in LikenessMode]}, got {mode!r}") from e
    _owner_only(actor, likeness, Action.LIKENESS_MODE)
    check_mode(session, likeness, new)  # a minor's likeness is never open to everyone or mutuals
    _begin_change(session, likeness)
    if new is not LikenessMode.ONLY_ME:  # closing a protective likeness further is always allowed
        require_consent_capable(session, likeness, f"set likeness {likeness.id} to {new.value}")
    old = likeness.mode
    likeness.mode = new
    session.add(likeness)
    record(session, Tag.LIKENESS_MODE, actor_id=actor.id, subject=likeness.id, old=old.value, new=new.value)
    if new is LikenessMode.ONLY_ME:
        # "only me" takes back every other use at once: grants do not silently return if the mode changes later.
        for grant in active_grants(session, likeness.id):
            _revoke(session, actor, grant, why="mode set to only_me", follow=follow)
        _withdraw_from_remixes(session, actor, likeness.id, None, "mode set to only_me", follow)
    return likeness


def active_grants(session: Session, likeness_id: str) -> list[Grant]:
    return list(session.exec(
        select(Grant).where(Grant.likeness_id == likeness_id, Grant.revoked_at == None)  # noqa: E711
    ).all())


def active_grant(session: Session, likeness_id: str, grantee_id: str) -> Grant | None:
    return session.exec(select(Grant).where(
        Grant.likeness_id == likeness_id, Grant.grantee_id == grantee_id, Grant.revoked_at == None  # noqa: E711
    )).first()


def grantee_of(session: Session, likeness: Likeness, grantee_ref: str) -> Account:
    """The account ``grantee_ref`` names, when ``likeness`` may be granted to it: 404 for no such account, 422
    for its owner or an ``only_me`` likeness, 409 when the likeness cannot consent (:func:`require_consent_capable`).
    The checks of a grant, and of a minor's request for one (:mod:`governance.guardians.services`)."""
    grantee = resolve_account(session, grantee_ref)
    if grantee.id == likeness.owner_id:
        raise InvalidInput("the owner may always use their own likeness; no grant is needed")
    if likeness.mode is LikenessMode.ONLY_ME:
        raise InvalidInput("this likeness is set to only_me; change its mode before granting anyone")
    require_consent_capable(session, likeness, f"grant likeness {likeness.id}")
    return grantee


def grant(session: Session, actor: Account, likeness: Likeness, grantee_ref: str) -> tuple[Grant, bool]:
    """Grant one account; idempotent. Returns the grant and whether it is new. Raises :class:`NotFound` (no
    such account), :class:`InvalidInput` (the owner, or the likeness is only_me) and :class:`Conflict` (409:
    the likeness cannot consent: photo, disputed or pending review)."""
    _owner_only(actor, likeness, Action.LIKENESS_GRANT)
    if guardianship(session, likeness.owner_id) is not None:
        raise Conflict("a minor's grant needs the guardian's approval (governance.guardians.services.request_grant)",
                       reason="minor")
    _begin_change(session, likeness)
    grantee = grantee_of(session, likeness, grantee_ref)
    existing = active_grant(session, likeness.id, grantee.id)
    if existing is not None:
        return existing, False
    g = Grant(likeness_id=likeness.id, grantee_id=grantee.id)
    session.add(g)
    record(session, Tag.GRANT_CREATE, actor_id=actor.id, subject=likeness.id, grantee=grantee.id, grant=g.id)
    return g, True


def revoke(session: Session, actor: Account, likeness: Likeness, grantee_ref: str, *,
           follow: FollowWithdrawal) -> Grant:
    """Revoke ``grantee_ref``'s grant on the likeness (its owner only; 404 when they hold none); the remixes the
    grantee made of it are withdrawn (``follow``)."""
    _owner_only(actor, likeness, Action.LIKENESS_REVOKE)
    _begin_change(session, likeness)
    grantee = resolve_account(session, grantee_ref)
    g = active_grant(session, likeness.id, grantee.id)
    if g is None:
        raise NotFound(f"{grantee.name!r} holds no grant on likeness {likeness.id!r}")
    _revoke(session, actor, g, why="revoked by owner", follow=follow)
    return g


def _revoke(session: Session, actor: Account, g: Grant, *, why: str, follow: FollowWithdrawal) -> None:
    g.revoked_at = utcnow()
    session.add(g)
    record(session, Tag.GRANT_REVOKE, actor_id=actor.id, subject=g.likeness_id, grantee=g.grantee_id,
           grant=g.id, why=why)
    _withdraw_from_remixes(session, actor, g.likeness_id, g.grantee_id, why, follow)


def _withdraw_from_remixes(session: Session, actor: Account, likeness_id: str, grantee_id: str | None,
                           why: str, follow: FollowWithdrawal) -> None:
    """A withdrawn consent follows remix lineage (:class:`FollowWithdrawal`)."""
    lk = session.get(Likeness, likeness_id)
    follow(session, actor, likeness_id, grantee_id, f"likeness {likeness_id}: {why}",
                      owner_id=lk.owner_id if lk is not None else actor.id)


def delete_likeness(session: Session, actor: Account, likeness: Likeness, *, follow: FollowWithdrawal) -> None:
    """Delete the likeness (its owner only): its grants are revoked and it is withdrawn from remixes first
    (``follow``), its open disputes end."""
    _owner_only(actor, likeness, Action.LIKENESS_DELETE)
    _remove(session, actor, likeness, follow=follow)


def delete_by_resolution(session: Session, admin: Account, likeness: Likeness, dispute_id: str, *,
                         follow: FollowWithdrawal) -> None:
    """Delete a likeness because an admin resolved a dispute against it (the resolution is the authority and
    is audited by :func:`governance.likenesses.services.disputes.resolve`); otherwise as its owner's deletion."""
    record(session, Tag.LIKENESS_DELETE, actor_id=admin.id, subject=likeness.id, dispute=dispute_id)
    _remove(session, admin, likeness, audit=False, follow=follow)


def _remove(session: Session, actor: Account, likeness: Likeness, *, audit: bool = True,
            follow: FollowWithdrawal) -> None:
    _begin_change(session, likeness)
    for g in active_grants(session, likeness.id):
        _revoke(session, actor, g, why="likeness deleted", follow=follow)
    _withdraw_from_remixes(session, actor, likeness.id, None, "likeness deleted", follow)
    session.flush()
    for g in session.exec(select(Grant).where(Grant.likeness_id == likeness.id)).all():
        session.delete(g)
    restrictions = session.get(LikenessRestriction, likeness.id)  # its owner's restrictions go with it
    if restrictions is not None:
        session.delete(restrictions)
    session.flush()
    session.delete(likeness)
    references.forget(session, likeness.id)
    bump(session, "likenesses")
    if audit:
        record(session, Tag.LIKENESS_DELETE, actor_id=actor.id, subject=likeness.id)
    _withdraw_disputes(session, actor, likeness.id)


def _withdraw_disputes(session: Session, actor: Account, likeness_id: str) -> None:
    """A deleted likeness ends every open dispute it is part of (outcome ``withdrawn``); a claim that no longer
    has anything against it becomes active."""
    q = select(Dispute).where(Dispute.state == DisputeState.OPEN,
                              (Dispute.likeness_id == likeness_id) | (Dispute.holder_likeness_id == likeness_id))
    for d in session.exec(q).all():
        d.state, d.outcome, d.resolved_at = DisputeState.RESOLVED, "withdrawn", utcnow()
        d.reason = f"likeness {likeness_id} was deleted"
        session.add(d)
        record(session, Tag.DISPUTE_RESOLVE, actor_id=actor.id, subject=d.id, outcome="withdrawn", reason=d.reason)
        if d.likeness_id != likeness_id:
            claimant = session.get(Likeness, d.likeness_id)
            if claimant is not None:
                refresh_status(session, claimant)


def refresh_status(session: Session, likeness: Likeness) -> LikenessStatus:
    """Set the status from the open disputes on the likeness's claim: a public-figure or identity review
    (``pending_review``) before a double claim (``disputed``); none: ``active``."""
    session.flush()
    kinds = {d.kind for d in open_disputes_of(session, likeness.id)}
    if kinds & {DisputeKind.PUBLIC_FIGURE, DisputeKind.IDENTITY}:
        status = LikenessStatus.PENDING_REVIEW
    elif DisputeKind.DOUBLE_CLAIM in kinds:
        status = LikenessStatus.DISPUTED
    else:
        status = LikenessStatus.ACTIVE
    if likeness.status is not status:
        likeness.status = status
        session.add(likeness)
    return status


@dataclass(frozen=True)
class ConsentCheck:
    likeness_id: str
    owner_id: str
    decision: Decision
    grant_id: str | None
    verification: str = ""  # the likeness's level and status when checked ("" when it no longer exists)
    status: str = ""
    defers_to: str | None = None  # a later claim on a face allowed because the earlier one it disputes allows


def check_consent(session: Session, likeness_ids: Sequence[str], requester_id: str, *, lock: bool = False,
                  seen_with: Mapping[str, Collection[str]] | None = None) -> list[ConsentCheck]:
    """Ask, now, whether ``requester_id`` may use each likeness. A deleted likeness is denied; one that is not
    live-verified and undisputed is denied to everyone, its owner included. With ``lock`` the likeness rows stay
    locked until the caller's transaction ends (the gate's final check, which takes
    :func:`~governance.db.serialize_consent` for the likenesses' owners first).

    ``seen_with`` names the likenesses the scan found but the request did not name, each with the other
    likenesses that matched every face track it matched: for those, a disputed likeness defers to the earlier
    claim it disputes (:func:`policies.consent.seen_face_permits`)."""

    checks: dict[str, ConsentCheck] = {}
    facts: dict[str, ConsentFacts] = {}
    for lid in sorted(likeness_ids) if lock else likeness_ids:  # one lock order: no deadlocks
        likeness = lock_likeness(session, lid) if lock else session.get(Likeness, lid)
        if likeness is None:
            checks[lid] = ConsentCheck(lid, "", Deny(f"likeness {lid} no longer exists", "likeness:deleted"), None)
            continue
        facts[lid] = f = facts_of(session, likeness, requester_id)
        checks[lid] = ConsentCheck(lid, likeness.owner_id, likeness_permits(f, requester_id), f.grant_id,
                                   likeness.verification.value, likeness.status.value)
    for lid, others in (seen_with or {}).items():
        if lid in facts and not checks[lid].decision.allowed and facts[lid].disputes:
            alongside = {o: checks[o].decision for o in others if o in checks}
            decision = seen_face_permits(facts[lid], requester_id, alongside)
            holder = next((h for h in facts[lid].disputes if h in alongside and alongside[h].allowed), None)
            checks[lid] = ConsentCheck(lid, checks[lid].owner_id, decision, None, checks[lid].verification,
                                       checks[lid].status, holder if decision.allowed else None)
    return [checks[lid] for lid in likeness_ids]


def found_alongside(faces_found: Sequence[Mapping[str, object]], named: Collection[str]) -> dict[str, set[str]]:
    """For each likeness the scan found and the request did not name: the other likenesses that matched every
    face track it matched (``faces_found`` as the gate records it: ``likeness`` and ``track`` per match)."""
    tracks: dict[str, set[object]] = {}
    by_track: dict[object, set[str]] = {}
    for f in faces_found:
        lid, track = str(f["likeness"]), f.get("track")
        tracks.setdefault(lid, set()).add(track)
        by_track.setdefault(track, set()).add(lid)
    out: dict[str, set[str]] = {}
    for lid, ts in tracks.items():
        if lid in named:
            continue
        common = set.intersection(*(by_track[t] for t in ts)) if ts else set()
        out[lid] = common - {lid}
    return out
