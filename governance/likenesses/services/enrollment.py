"""Enrollment: live challenges, photo and live likenesses, upgrades, and the search for other claims.

A face is yours only if you prove it live. ``photo`` enrollments (photos, or a video without a passed
challenge) are protective: they block every output showing the face and can consent to nothing. A live
enrollment answers a :class:`~governance.likenesses.models.Challenge` (random head poses, a short expiry, single use,
bound to the account) with a selfie video that :mod:`detectors.liveness` verifies. Every new template is
searched against every enrolled likeness and protected figure first: a match with another account's
likeness opens a ``double_claim`` dispute (the new claim is ``disputed``), a figure a ``public_figure`` review
(``pending_review``) (:mod:`governance.likenesses.services.disputes`). The operator's identity proof runs after the
live check (:mod:`governance.identity`).

Consumption rule: a challenge is spent by any verification attempt on a well-formed video, passed or
refused, so a replayed or adjusted video cannot retry it. A malformed request (no video, several files, an
unreadable video, an unknown or foreign challenge) leaves it unused. Refusals store no template and open no
dispute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from governance import references
from governance.accounts.models import Account
from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.db import bump, serialize_consent
from governance.errors import Conflict, GovernanceError, InvalidInput, NotFound
from governance.identity import IdentityProof, IdentityRequest, IdentityVerdict, run_check
from governance.likenesses.models import Challenge, Likeness, is_figure_key
from governance.likenesses.services import disputes as disputes_svc
from governance.likenesses.services.disputes import FaceMatch
from governance.likenesses.services.likenesses import build_template, store
from policies.consent import Verification

if TYPE_CHECKING:
    from detectors.enroll import Template
    from detectors.faces import FaceBackend
    from detectors.index import LikenessIndex

#: At most this many of an account's challenges may be open (unused, unexpired) at once.
MAX_OPEN_CHALLENGES = 5


# -- challenges ------------------------------------------------------------------------------------------------
def create_challenge(session: Session, account: Account, ttl_s: float) -> Challenge:
    """A new challenge for ``account``: 3-5 random head poses (:func:`detectors.liveness.random_poses`) to
    perform in order within ``ttl_s`` seconds. Raises :class:`Conflict` when the account already holds
    :data:`MAX_OPEN_CHALLENGES` open ones."""
    from detectors.liveness import random_poses

    now = utcnow()
    open_ = session.exec(select(sa.func.count()).select_from(Challenge).where(
        Challenge.account_id == account.id, Challenge.used_at == None, Challenge.expires_at > now)).one()  # noqa: E711
    if open_ >= MAX_OPEN_CHALLENGES:
        raise Conflict(f"{account.name!r} already holds {open_} open challenges; answer one or let them expire",
                       reason="too_many_challenges")
    ch = Challenge(account_id=account.id, poses=list(random_poses()), created_at=now,
                   expires_at=now + timedelta(seconds=ttl_s))
    session.add(ch)
    record(session, Tag.CHALLENGE_CREATE, actor_id=account.id, subject=ch.id, poses=ch.poses,
           expires_at=iso(ch.expires_at))
    return ch


def _aware(dt: datetime) -> datetime:
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def open_challenge(session: Session, account: Account, challenge_id: Any, now: datetime) -> Challenge:
    """The account's challenge, still answerable at ``now``. Unknown or another account's: :class:`NotFound`
    (which of the two is not said); used (``challenge_used``) or expired (``challenge_expired``):
    :class:`Conflict`."""
    if not isinstance(challenge_id, str) or not challenge_id:
        raise InvalidInput("send the challenge's id in the form field 'challenge'")
    ch = session.get(Challenge, challenge_id)
    if ch is None or ch.account_id != account.id:
        raise NotFound(f"no challenge {challenge_id!r}")
    if ch.used_at is not None:
        raise Conflict(f"challenge {ch.id} was already used; request a new one (POST /v1/likenesses/challenges)",
                       reason="challenge_used")
    if _aware(ch.expires_at) <= now:
        raise Conflict(f"challenge {ch.id} expired at {iso(ch.expires_at)}; request a new one and upload the video "
                       "within its expiry", reason="challenge_expired")
    return ch


def consume_challenge(session: Session, ch: Challenge, outcome: str, likeness_id: str | None = None) -> None:
    """Mark the challenge used, as one compare-and-set: of two attempts with one challenge, one wins (409 for the
    other). Enrollment and a takedown notice's proof of face spend challenges alike."""
    result = session.execute(sa.update(Challenge).where(
        Challenge.id == ch.id, Challenge.used_at == None)  # type: ignore[arg-type]  # noqa: E711
        .values(used_at=utcnow(), outcome=outcome, likeness_id=likeness_id))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"challenge {ch.id} was already used; request a new one", reason="challenge_used")


# -- the search for other claims -------------------------------------------------------------------------------
#: Every search for other claims on a face and the claim it leads to take this lock (serialize_consent's), so
#: two enrollments of one face cannot both miss each other. PostgreSQL: an advisory lock; SQLite: the write lock
#: when the transaction has not begun yet (one embedded process: two requests at the same instant may not see
#: each other there).
CLAIMS_LOCK = "face-claims"

IndexNow = Callable[[], "LikenessIndex"]  # the face index, synced from the database when called


def claim_search(session: Session, index_now: IndexNow, template: Template, threshold: float, owner_id: str,
                 *, exclude: str | None = None) -> list[FaceMatch]:
    """:func:`find_matches` under :data:`CLAIMS_LOCK`, on the index as it is once the lock is held; the caller
    stores its claim in the same transaction. Call it after the slow work (the live check, an identity vendor)."""
    serialize_consent(session, [CLAIMS_LOCK])
    return find_matches(session, index_now(), template, threshold, owner_id, exclude=exclude)


def find_matches(session: Session, index: LikenessIndex, template: Template, threshold: float, owner_id: str,
                 *, exclude: str | None = None) -> list[FaceMatch]:
    """Every enrolled likeness of another account and every protected figure within ``threshold`` of any of
    ``template``'s embeddings (the nearest distance each), nearest first. ``index`` must be synced."""
    if len(index) == 0:
        return []
    best: dict[str, float] = {}
    for hits in index.search(template.embeddings, k=min(len(index), 32), threshold=threshold):
        for key, d in hits:
            best[key] = min(d, best.get(key, d))
    out = []
    for key, d in sorted(best.items(), key=lambda kv: kv[1]):
        if key == exclude:
            continue
        if is_figure_key(key):
            out.append(FaceMatch(key, d))
            continue
        lk = session.get(Likeness, key)
        if lk is not None and lk.owner_id != owner_id:
            out.append(FaceMatch(key, d, lk.owner_id))
    return out


def enroll_photos(session: Session, owner: Account, images: Sequence[np.ndarray], backend: FaceBackend,
                  index_now: IndexNow, threshold: float, *, display_name: str | None = None,
                  require_pose_change: bool = False) -> Likeness:
    """A ``photo`` likeness (protective) from photos or a selfie video without a challenge; searched against
    every other claim first. Raises :class:`InvalidInput` (422, with the detector's ``reason``)."""
    template = build_template(images, backend, require_pose_change=require_pose_change)
    matches = claim_search(session, index_now, template, threshold, owner.id)
    likeness = store(session, owner, template, verification=Verification.PHOTO, display_name=display_name)
    disputes_svc.open_disputes(session, likeness, matches)
    return likeness


# -- live verification -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveOutcome:
    """A verification attempt: the likeness made or upgraded, or the refusal to raise once the spent challenge
    is committed."""

    likeness: Likeness | None
    refusal: GovernanceError | None = None
    created: bool = False


def check_live(video: bytes, poses: Sequence[str], backend: FaceBackend, *, mirrored: bool = False
               ) -> tuple[Template, dict[str, Any]]:
    """Run the live check on the video's bytes (:func:`detectors.liveness.verify_video`: decoded in bounded
    memory; ``mirrored`` for clients that upload the mirror image they preview); return the template of the
    views it binned by pose (``Template.bins``) and its summary (poses, spans, distances; no pixels), with
    ``media``: the container read, sniffed from the bytes (:func:`media.formats.sniff`: ``"video/mp4"``,
    ``"video/webm"``...; an upload's name and declared type are never read). Raises
    :class:`detectors.errors.LivenessError` with the refusal's reason."""
    from detectors.liveness import verify_video
    from media.formats import HEAD_BYTES, sniff

    result = verify_video(video, poses, backend, mirrored=mirrored)
    fmt = sniff(video[:HEAD_BYTES])  # None only for bytes governance.uploads.challenge_video would have refused
    return result.template(), {**result.to_dict(), "media": fmt.mime if fmt is not None else None}


def _refused(session: Session, owner: Account, ch: Challenge, reason: str, message: str,
             likeness_id: str | None) -> LiveOutcome:
    consume_challenge(session, ch, reason)
    record(session, Tag.LIKENESS_VERIFY_REFUSE, actor_id=owner.id, subject=likeness_id or ch.id, challenge=ch.id,
           reason=reason)
    return LiveOutcome(None, InvalidInput(message, reason=reason, challenge=ch.id, challenge_spent=True))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """The nearest distance between any row of ``a`` and any row of ``b``."""
    return float(np.min(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)))


def verify_live(session: Session, owner: Account, ch: Challenge, video: bytes, *,
                backend: FaceBackend, index_now: IndexNow, threshold: float, identity: IdentityProof,
                likeness: Likeness | None = None, display_name: str | None = None,
                mirrored: bool = False) -> LiveOutcome:
    """Answer ``ch`` with a selfie video (its bytes, checked by :func:`governance.uploads.challenge_video`):
    a new ``live`` likeness, or ``likeness`` (a photo one of the same owner) upgraded to ``live`` when the
    face matches its template (else ``face_mismatch``). The challenge is spent whatever the outcome; the
    caller commits, then raises :attr:`LiveOutcome.refusal` if any.

    Then the operator's identity proof runs, its verdict recorded on the likeness and audited; the template is
    searched against every other claim (disputes and reviews open as for photos); a rejected or unanswered
    identity check opens an identity review."""
    from detectors.enroll import Template
    from detectors.errors import LivenessError

    try:
        live, summary = check_live(video, ch.poses, backend, mirrored=mirrored)
    except LivenessError as e:
        return _refused(session, owner, ch, e.reason, f"the live check failed: {e.message}",
                        likeness.id if likeness else None)
    if likeness is not None:
        old = Template.from_bytes(likeness.template)
        d = _distance(live.embeddings, old.embeddings) if old.dim == live.dim else float("inf")
        if d > threshold:
            return _refused(session, owner, ch, "face_mismatch",
                            f"the face in the video does not match likeness {likeness.id} (distance {d:.2f} > "
                            f"{threshold:.2f}); a likeness is verified by the person it was enrolled from",
                            likeness.id)
    assert live.reference is not None  # a live check's template carries the face crop it saw
    verdict = run_check(identity, IdentityRequest(owner.id, owner.name, live.reference, ch.id,
                                                  likeness.id if likeness else None))
    matches = claim_search(session, index_now, live, threshold, owner.id, exclude=likeness.id if likeness else None)
    created = likeness is None
    if likeness is None:
        likeness = store(session, owner, live, verification=Verification.LIVE, display_name=display_name)
    else:
        likeness.template = references.keep(session, likeness.id, live)
        likeness.embeddings = int(live.embeddings.shape[0])
        likeness.backend = live.backend
        likeness.verification, likeness.verified_at = Verification.LIVE, utcnow()
        session.add(likeness)
        bump(session, "likenesses")  # the index holds the new template
    consume_challenge(session, ch, "verified", likeness.id)
    _record_identity(session, owner, likeness, verdict)
    record(session, Tag.LIKENESS_VERIFY, actor_id=owner.id, subject=likeness.id, challenge=ch.id,
           embeddings=likeness.embeddings, upgrade=not created, live_check=summary)
    disputes_svc.open_disputes(session, likeness, matches)
    if verdict.needs_review:
        detail = f" ({verdict.detail})" if verdict.detail else ""
        disputes_svc.open_identity_review(session, likeness,
                                          f"identity proof {verdict.provider!r}: {verdict.outcome.value}{detail}")
    return LiveOutcome(likeness, None, created)


def _record_identity(session: Session, owner: Account, likeness: Likeness, verdict: IdentityVerdict) -> None:
    likeness.identity = {**verdict.to_dict(), "checked_at": iso(utcnow())}
    session.add(likeness)
    record(session, Tag.IDENTITY_CHECK, actor_id=owner.id, subject=likeness.id, **verdict.to_dict())
