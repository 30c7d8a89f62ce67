"""Draft approval: an owner's option per likeness (``draft_approval`` in its restrictions). A generation that uses
the likeness (named, or found by the scan) and was not requested by its owner is held after sealing, before the
transparency log and the release, until the owner has watched the sealed preview (visible label, watermark,
C2PA manifest) and approved it. No Flask here; services never commit.

- Every owner asked approves: the job runs again from the start (the generator is deterministic for a seed, so
  the frames are the ones previewed; the content id, watermark payload and manifest are made afresh), consent
  checked at every stage, and is released without asking again.
- One owner rejects, or the approval expires (``GOVERNANCE_DRAFT_APPROVAL_TTL_S``, 7 days): blocked, the preview
  deleted. Expiry is applied when the approval is next read or answered.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from governance import authz
from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.authz import Action
from governance.columns import iso, utcnow
from governance.errors import Conflict, Gone, InvalidInput
from governance.generations.models import Generation, GenerationState
from governance.likenesses.models import Likeness
from governance.restrictions.models import DraftApproval, LikenessRestriction

DECISIONS = ("approve", "reject")


def preview_path(videos_dir: Path, generation_id: str) -> Path:
    return videos_dir / f"{generation_id}.mp4.draft"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def owners_to_ask(session: Session, gen: Generation, likeness_ids: Collection[str]) -> list[tuple[str, str]]:
    """``(likeness_id, owner_id)`` of the likenesses in ``likeness_ids`` whose owners asked to approve drafts, are
    not the requester, and have not approved this generation yet."""
    approved = set(session.exec(select(DraftApproval.likeness_id).where(
        DraftApproval.generation_id == gen.id, DraftApproval.decision == "approved")).all())
    out = []
    for lid in sorted(likeness_ids):
        row = session.get(LikenessRestriction, lid)
        lk = session.get(Likeness, lid) if row is not None and row.draft_approval else None
        if lk is not None and lk.owner_id != gen.requester_id and lid not in approved:
            out.append((lid, lk.owner_id))
    return out


def hold(session: Session, gen: Generation, asked: list[tuple[str, str]], sealed: Path, ttl_s: float) -> None:
    """Hold the sealed ``gen`` for the owners in ``asked``: the sealed file becomes the preview; owners and the
    requester are told."""
    now = utcnow()
    for likeness_id, owner_id in asked:
        row = session.get(DraftApproval, (gen.id, likeness_id)) or DraftApproval(
            generation_id=gen.id, likeness_id=likeness_id, owner_id=owner_id, expires_at=now)
        row.decision, row.decided_at, row.expires_at = "pending", None, now + timedelta(seconds=ttl_s)
        session.add(row)
    gen.state = GenerationState.HELD
    gen.reasons = [*gen.reasons, *(f"held for the owner of likeness {lid} to approve the draft" for lid, _ in asked)]
    gen.updated_at = now
    session.add(gen)
    os.replace(sealed, preview_path(sealed.parent, gen.id))
    record(session, Tag.GENERATION_HOLD, actor_id=None, subject=gen.id, likenesses=[lid for lid, _ in asked],
           why="draft_approval")
    for likeness_id, owner_id in asked:
        notify(session, owner_id, "likeness:use:draft",
               f"generation {gen.id} uses your likeness {likeness_id}: watch the draft and approve or reject it "
               f"(on the page /me/requests, or GET and POST /v1/generations/{gen.id}/draft) before "
               f"{iso(now + timedelta(seconds=ttl_s))}", generation_id=gen.id, likeness_id=likeness_id)
    notify(session, gen.requester_id, "generation:held",
           f"generation {gen.id} is sealed and waits for the person in it to approve the draft", generation_id=gen.id)


def _mine(session: Session, account: Account, gen: Generation) -> list[DraftApproval]:
    return list(session.exec(select(DraftApproval).where(
        DraftApproval.generation_id == gen.id, DraftApproval.owner_id == account.id)
        .order_by(DraftApproval.likeness_id)).all())  # type: ignore[arg-type]


def _close(session: Session, gen: Generation, videos_dir: Path, reasons: list[str]) -> None:
    from governance.generations.services.generations import block

    block(session, gen, reasons, stage="draft", notify_owners=set())
    preview_path(videos_dir, gen.id).unlink(missing_ok=True)


def expire(session: Session, gen: Generation, videos_dir: Path) -> bool:
    """Block ``gen`` if a pending draft approval of it has expired; True when it did."""
    now = utcnow()
    late = [r for r in session.exec(select(DraftApproval).where(
        DraftApproval.generation_id == gen.id, DraftApproval.decision == "pending")).all()
        if _aware(r.expires_at) <= now]
    if not late or gen.state is not GenerationState.HELD:
        return False
    for r in late:
        r.decision, r.decided_at = "expired", now
        session.add(r)
    record(session, Tag.GENERATION_APPROVAL, actor_id=None, subject=gen.id, decision="expired",
           likenesses=[r.likeness_id for r in late])
    _close(session, gen, videos_dir, [f"the owner of likeness {r.likeness_id} did not approve the draft before "
                                      f"{iso(r.expires_at)}" for r in late])
    notify(session, gen.requester_id, "generation:draft:expired",
           f"generation {gen.id} was blocked: the draft was not approved in time", generation_id=gen.id)
    return True


def expire_due(session: Session, videos_dir: Path) -> list[str]:
    """Block every held generation whose draft approval ran out unanswered (:func:`expire`), removing its
    preview; the workers call this every ``sweep_every_s`` seconds, and a read or an answer of the approval
    applies the same expiry at once. Returns the ids blocked here (the caller commits)."""
    now = utcnow()
    pending = session.exec(select(DraftApproval).where(DraftApproval.decision == "pending")).all()
    due = sorted({r.generation_id for r in pending if _aware(r.expires_at) <= now})
    blocked = []
    for gid in due:
        gen = session.get(Generation, gid)
        if gen is not None and expire(session, gen, videos_dir):
            blocked.append(gid)
    return blocked


def preview(session: Session, account: Account, gen: Generation, videos_dir: Path) -> Path | None:
    """The sealed preview, for an owner asked to approve it while it is pending (409 otherwise); None when it has
    just expired (the generation is blocked: the caller commits, then answers 410 with :func:`gone`)."""
    from governance.generations.services.generations import is_owner

    authz.require(Action.GENERATION_DRAFT, account, owner=is_owner(session, account, gen), key=gen.id)
    if expire(session, gen, videos_dir):
        return None
    mine = [r for r in _mine(session, account, gen) if r.decision == "pending"]
    path = preview_path(videos_dir, gen.id)
    if gen.state is not GenerationState.HELD or not mine or not path.is_file():
        raise Conflict(f"generation {gen.id} has no draft waiting for you (it is {gen.state.value})")
    return path


def gone(gen: Generation) -> Gone:
    return Gone(f"the draft of generation {gen.id} expired before it was approved: the generation is blocked")


def decide(session: Session, account: Account, gen: Generation, decision: Any, videos_dir: Path) -> bool | None:
    """The owner's answer to every pending draft approval of ``gen`` asked of them. Returns True when the job must
    be submitted again (after the commit), None when the approval had expired (the generation is now blocked: the
    caller commits, then answers 410 with :func:`gone`). 422 for another decision; 409 with none pending."""
    from governance.generations.services.generations import is_owner

    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    authz.require(Action.GENERATION_DRAFT_DECIDE, account, owner=is_owner(session, account, gen), key=gen.id)
    if expire(session, gen, videos_dir):
        return None
    mine = [r for r in _mine(session, account, gen) if r.decision == "pending"]
    if gen.state is not GenerationState.HELD or not mine:
        raise Conflict(f"generation {gen.id} has no draft waiting for you (it is {gen.state.value})")
    now = utcnow()
    for r in mine:
        r.decision, r.decided_at = ("approved" if decision == "approve" else "rejected"), now
        session.add(r)
    record(session, Tag.GENERATION_APPROVAL, actor_id=account.id, subject=gen.id, decision=f"draft:{decision}",
           likenesses=[r.likeness_id for r in mine])
    if decision == "reject":
        _close(session, gen, videos_dir, [f"the owner of likeness {r.likeness_id} rejected the draft" for r in mine])
        notify(session, gen.requester_id, "generation:draft:rejected",
               f"generation {gen.id} was blocked: the person in it rejected the draft", generation_id=gen.id)
        return False
    session.flush()
    if session.exec(select(DraftApproval).where(DraftApproval.generation_id == gen.id,
                                                DraftApproval.decision == "pending")).first() is not None:
        return False
    preview_path(videos_dir, gen.id).unlink(missing_ok=True)
    gen.state = GenerationState.PRECHECKED
    gen.reasons = [*gen.reasons, "the draft was approved by the people in it"]
    gen.updated_at = now
    session.add(gen)
    return True


def view(r: DraftApproval) -> dict[str, Any]:
    return {"likeness": r.likeness_id, "decision": r.decision, "expires_at": iso(r.expires_at),
            "decided_at": iso(r.decided_at)}


def waiting_for(session: Session, account: Account) -> list[str]:
    """The ids of the generations whose draft waits for ``account``'s answer (pending, held, not yet expired),
    the one expiring first first."""
    now = utcnow()
    rows = session.exec(select(DraftApproval)
        .join(Generation, Generation.id == DraftApproval.generation_id)  # type: ignore[arg-type]
        .where(DraftApproval.owner_id == account.id, DraftApproval.decision == "pending",
               Generation.state == GenerationState.HELD)
        .order_by(DraftApproval.expires_at)).all()  # type: ignore[arg-type]
    return list(dict.fromkeys(r.generation_id for r in rows if _aware(r.expires_at) > now))


def for_account(session: Session, account: Account, gen: Generation) -> list[DraftApproval]:
    return _mine(session, account, gen)
