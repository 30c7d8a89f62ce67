"""Held generations: a face that *may* be a likeness the requester may not use goes to that likeness's owner.

The scan (:mod:`detectors.pose`) puts a face in a likeness's uncertain band when it is further from it than
the match distance but within the wider protect distance: it may be that person (a head turned far from
their enrolled photos measures there), or someone else. With ``scan_uncertain = "held"`` (the default) the
gate does not decide alone: the generation is ``held``, never released while it is, and the likeness's
owner is asked, with the frames the face is in, whether it is them:

- ``confirm`` (it is me): the generation is blocked, the reason kept;
- ``dismiss`` (not me): once every owner asked has dismissed, the job runs again from the start (the
  generator is deterministic for a seed) through every stage, consent checked again at each, and the scan
  no longer holds it for a likeness whose owner dismissed it (a match, at the match distance, still blocks).

With ``scan_uncertain = "block"`` the generation is blocked at once, with the reason.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import Session, select

from governance import authz
from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.authz import Action
from governance.columns import utcnow
from governance.errors import InvalidInput
from governance.generations import questions
from governance.generations.models import Generation, GenerationReview, GenerationState
from governance.generations.services.generations import answer_pending, block, is_owner, link_likenesses

if TYPE_CHECKING:
    from detectors.scan import ScanResult, TrackMatch

DECISIONS = ("confirm", "dismiss")
_FRAMES_SHOWN = 3  # frames of the face's track shown to its owner: first, middle, last
_SHOWN_SIDE = 320  # ... scaled so their longer side is at most this many pixels


def band_reason(likeness_id: str, m: TrackMatch) -> str:
    return (f"a face that may be likeness {likeness_id} appears in frames {m.first_frame}-{m.last_frame} (head pose "
            f"{m.pose_bin}; distance {m.distance:.2f}, in the uncertain band between its match and protect distances)")


def _jpeg(rgb: np.ndarray) -> str:
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, _SHOWN_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def frames_shown(frames: Any, m: TrackMatch) -> list[dict[str, Any]]:
    """The frames of ``m``'s track an owner is shown: first, middle and last, as base64 JPEG."""
    picks = sorted({m.first_frame, (m.first_frame + m.last_frame) // 2, m.last_frame})[:_FRAMES_SHOWN]
    return [{"frame": int(i), "jpeg": _jpeg(np.asarray(frames[i]))} for i in picks if 0 <= i < len(frames)]


def dismissed(session: Session, generation_id: str) -> set[str]:
    """The likenesses whose owners said a held face of this generation is not them."""
    rows = session.exec(select(GenerationReview.likeness_id).where(
        GenerationReview.generation_id == generation_id, GenerationReview.decision == "dismissed")).all()
    return set(rows)


def hold(session: Session, gen: Generation, asked: Sequence[tuple[str, str, TrackMatch]], frames: Any,
         result: ScanResult) -> None:
    """Hold ``gen`` for review: one question per ``(likeness_id, owner_id, match)``, with the frames shown.
    The owners and the requester are told; the generation stays ``held`` until the owners answer."""
    boxes = {t.track_id: t.box for t in result.tracks}
    for likeness_id, owner_id, m in asked:
        box = boxes.get(m.track_id)
        row = session.get(GenerationReview, (gen.id, likeness_id))
        if row is None:
            row = GenerationReview(generation_id=gen.id, likeness_id=likeness_id, owner_id=owner_id,
                                   distance=float(m.distance), first_frame=m.first_frame, last_frame=m.last_frame,
                                   pose=m.pose_bin)
        row.owner_id, row.distance, row.first_frame, row.last_frame = owner_id, float(m.distance), m.first_frame, \
            m.last_frame
        row.pose, row.decision, row.decided_at = m.pose_bin, "pending", None
        row.box = [] if box is None else [box.left, box.top, box.right, box.bottom]
        row.frames = frames_shown(frames, m)
        session.add(row)
    link_likenesses(session, gen.id, [lid for lid, _, _ in asked])
    gen.state = GenerationState.HELD
    gen.reasons = [*gen.reasons, *(f"held for its owner's review: {band_reason(lid, m)}" for lid, _, m in asked)]
    gen.updated_at = utcnow()
    session.add(gen)
    record(session, Tag.GENERATION_HOLD, actor_id=None, subject=gen.id, likenesses=[lid for lid, _, _ in asked])
    requester = session.get(Account, gen.requester_id)
    who = requester.name if requester else gen.requester_id
    for likeness_id, owner_id, m in asked:
        if owner_id != gen.requester_id:
            notify(session, owner_id, "likeness:use:held",
                   f"{who}'s generation {gen.id} may show your likeness {likeness_id} (frames {m.first_frame}-"
                   f"{m.last_frame}); it is held until you confirm or dismiss it "
                   f"(on the page /me/requests, or POST /v1/generations/{gen.id}/review)",
                   generation_id=gen.id, likeness_id=likeness_id)
    notify(session, gen.requester_id, "generation:held",
           f"generation {gen.id} is held: a face in it may be someone who has not consented; their answer decides",
           generation_id=gen.id)


def waiting_for(session: Session, account: Account) -> list[str]:
    """The ids of the generations with a question still pending for ``account`` that are held (another owner's
    answer may have blocked one already), oldest question first."""
    return questions.waiting_for(session, GenerationReview, account.id)


def is_reviewer(session: Session, account_id: str, generation_id: str) -> bool:
    row = session.exec(select(GenerationReview.likeness_id).where(
        GenerationReview.generation_id == generation_id, GenerationReview.owner_id == account_id).limit(1)).first()
    return row is not None


def for_account(session: Session, account: Account, gen: Generation) -> list[GenerationReview]:
    """The questions about ``gen`` put to ``account`` (the owner of the likenesses they are about)."""
    return list(session.exec(select(GenerationReview).where(
        GenerationReview.generation_id == gen.id, GenerationReview.owner_id == account.id)
        .order_by(GenerationReview.likeness_id)).all())  # type: ignore[arg-type]


def decide(session: Session, account: Account, gen: Generation, decision: Any) -> bool:
    """Answer every pending question about ``gen`` put to ``account``: ``confirm`` blocks the generation,
    ``dismiss`` lets it go on once nobody else's answer is pending. Returns True when the job must run again
    (the caller submits it after committing). Refused: a decision that is neither (400), a generation that
    is not held or has no pending question for ``account`` (409)."""
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    authz.require(Action.GENERATION_REVIEW, account, owner=is_owner(session, account, gen), key=gen.id)
    mine = answer_pending(session, account, gen, for_account(session, account, gen), decision,
                          decided="confirmed" if decision == "confirm" else "dismissed", what="question",
                          tag=Tag.GENERATION_REVIEW)
    if decision == "confirm":
        reasons = [f"the owner of likeness {r.likeness_id} confirmed that the face in frames {r.first_frame}-"
                   f"{r.last_frame} is theirs, and the requester may not use it" for r in mine]
        block(session, gen, reasons, stage="review", notify_owners=set())
        notify(session, gen.requester_id, "generation:review:confirmed",
               f"generation {gen.id} was blocked: a person in it did not consent", generation_id=gen.id)
        return False
    pending = session.exec(select(GenerationReview).where(GenerationReview.generation_id == gen.id,
                                                          GenerationReview.decision == "pending")).first()
    if pending is not None:
        return False
    session.flush()
    gen.state = GenerationState.PRECHECKED
    gen.updated_at = utcnow()
    session.add(gen)
    return True
