"""Likeness records, consent modes, per-account grants and the consent check the gate relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlmodel import Session, select

from governance import authz
from governance.audit import Tag, record
from governance.authz import Action
from governance.db import bump, serialize_consent
from governance.errors import InvalidInput, NotFound
from governance.models import Account, Grant, Likeness, utcnow
from governance.services.accounts import is_mutual, resolve_account
from policies.consent import ConsentFacts, LikenessMode, likeness_permits
from policies.decisions import Decision, Deny

if TYPE_CHECKING:
    from detectors.faces import FaceBackend


def enroll(
    session: Session, owner: Account, images: Sequence[np.ndarray], backend: FaceBackend,
    display_name: str | None = None, *, require_pose_change: bool = False,
) -> Likeness:
    """Build a template from the owner's photos or selfie-video frames and store it."""
    from detectors.enroll import enroll as build_template
    from detectors.errors import EnrollmentError

    display_name = _display_name(display_name)
    try:
        template = build_template(images, backend, require_pose_change=require_pose_change)
    except EnrollmentError as e:
        raise InvalidInput(str(e), reason=e.reason) from e
    likeness = Likeness(
        owner_id=owner.id, backend=template.backend, template=template.to_bytes(),
        embeddings=int(template.embeddings.shape[0]),
        display_name=display_name,
    )
    session.add(likeness)
    session.flush()
    bump(session, "likenesses")
    record(session, Tag.LIKENESS_ENROLL, actor_id=owner.id, subject=likeness.id,
           embeddings=likeness.embeddings, backend=likeness.backend)
    return likeness


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


def owned_likeness(session: Session, actor: Account, likeness_id: str, action: Action = Action.LIKENESS_READ
                   ) -> Likeness:
    """The likeness, when ``actor`` may do ``action`` on it (its owner); someone else's answers 404 exactly
    like an unknown id, whatever the actor's role."""
    likeness = session.get(Likeness, likeness_id)
    authz.require(action, actor, owner=likeness is not None and likeness.owner_id == actor.id, key=likeness_id)
    assert likeness is not None  # require() refuses a missing one as it refuses someone else's
    return likeness


def _owner_only(actor: Account, likeness: Likeness, action: Action) -> None:
    """The service's own check, whoever calls it (views, CLI, pages): consent changes are the owner's alone."""
    authz.require(action, actor, owner=likeness.owner_id == actor.id, key=likeness.id)


def set_mode(session: Session, actor: Account, likeness: Likeness, mode: str) -> Likeness:
    try:
        new = LikenessMode(mode)
    except ValueError as e:
        raise InvalidInput(f"mode must be one of {[m.value for m in LikenessMode]}, got {mode!r}") from e
    _owner_only(actor, likeness, Action.LIKENESS_MODE)
    _begin_change(session, likeness)
    old = likeness.mode
    likeness.mode = new
    session.add(likeness)
    record(session, Tag.LIKENESS_MODE, actor_id=actor.id, subject=likeness.id, old=old.value, new=new.value)
    if new is LikenessMode.ONLY_ME:
        # "only me" takes back every other use at once: grants do not silently return if the mode changes later.
        for grant in active_grants(session, likeness.id):
            _revoke(session, actor, grant, why="mode set to only_me")
    return likeness


def active_grants(session: Session, likeness_id: str) -> list[Grant]:
    return list(session.exec(
        select(Grant).where(Grant.likeness_id == likeness_id, Grant.revoked_at == None)  # noqa: E711
    ).all())


def active_grant(session: Session, likeness_id: str, grantee_id: str) -> Grant | None:
    return session.exec(select(Grant).where(
        Grant.likeness_id == likeness_id, Grant.grantee_id == grantee_id, Grant.revoked_at == None  # noqa: E711
    )).first()


def grant(session: Session, actor: Account, likeness: Likeness, grantee_ref: str) -> tuple[Grant, bool]:
    """Grant one account; idempotent. Returns the grant and whether it is new."""
    _owner_only(actor, likeness, Action.LIKENESS_GRANT)
    _begin_change(session, likeness)
    grantee = resolve_account(session, grantee_ref)
    if grantee.id == likeness.owner_id:
        raise InvalidInput("the owner may always use their own likeness; no grant is needed")
    if likeness.mode is LikenessMode.ONLY_ME:
        raise InvalidInput("this likeness is set to only_me; change its mode before granting anyone")
    existing = active_grant(session, likeness.id, grantee.id)
    if existing is not None:
        return existing, False
    g = Grant(likeness_id=likeness.id, grantee_id=grantee.id)
    session.add(g)
    record(session, Tag.GRANT_CREATE, actor_id=actor.id, subject=likeness.id, grantee=grantee.id, grant=g.id)
    return g, True


def revoke(session: Session, actor: Account, likeness: Likeness, grantee_ref: str) -> Grant:
    _owner_only(actor, likeness, Action.LIKENESS_REVOKE)
    _begin_change(session, likeness)
    grantee = resolve_account(session, grantee_ref)
    g = active_grant(session, likeness.id, grantee.id)
    if g is None:
        raise NotFound(f"{grantee.name!r} holds no grant on likeness {likeness.id!r}")
    _revoke(session, actor, g, why="revoked by owner")
    return g


def _revoke(session: Session, actor: Account, g: Grant, *, why: str) -> None:
    g.revoked_at = utcnow()
    session.add(g)
    record(session, Tag.GRANT_REVOKE, actor_id=actor.id, subject=g.likeness_id, grantee=g.grantee_id,
           grant=g.id, why=why)


def delete_likeness(session: Session, actor: Account, likeness: Likeness) -> None:
    _owner_only(actor, likeness, Action.LIKENESS_DELETE)
    _begin_change(session, likeness)
    for g in active_grants(session, likeness.id):
        _revoke(session, actor, g, why="likeness deleted")
    session.flush()
    for g in session.exec(select(Grant).where(Grant.likeness_id == likeness.id)).all():
        session.delete(g)
    session.delete(likeness)
    bump(session, "likenesses")
    record(session, Tag.LIKENESS_DELETE, actor_id=actor.id, subject=likeness.id)


@dataclass(frozen=True)
class ConsentCheck:
    likeness_id: str
    owner_id: str
    decision: Decision
    grant_id: str | None


def check_consent(session: Session, likeness_ids: Sequence[str], requester_id: str, *, lock: bool = False
                  ) -> list[ConsentCheck]:
    """Ask, now, whether ``requester_id`` may use each likeness. A deleted likeness is denied. With ``lock``
    the likeness rows stay locked until the caller's transaction ends (the gate's final check, which takes
    :func:`~governance.db.serialize_consent` for the likenesses' owners first)."""

    checks = []
    for lid in sorted(likeness_ids) if lock else likeness_ids:  # one lock order: no deadlocks
        likeness = lock_likeness(session, lid) if lock else session.get(Likeness, lid)
        if likeness is None:
            checks.append(ConsentCheck(lid, "", Deny(f"likeness {lid} no longer exists", "likeness:deleted"), None))
            continue
        g = active_grant(session, lid, requester_id)
        facts = ConsentFacts(
            likeness_id=lid, owner_id=likeness.owner_id, mode=likeness.mode,
            grant_id=g.id if g else None,
            mutual_contact=(likeness.mode is LikenessMode.MUTUALS
                            and is_mutual(session, likeness.owner_id, requester_id)),
        )
        checks.append(ConsentCheck(lid, likeness.owner_id, likeness_permits(facts, requester_id), facts.grant_id))
    return checks
