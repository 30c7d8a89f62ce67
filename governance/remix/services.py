"""Remix lineage over :class:`GenerationEdge` rows (no Flask): ancestry, descendants, and what a withdrawal
does to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.errors import Conflict, InvalidInput
from governance.generations.models import Generation, GenerationState
from governance.log.services import translog
from governance.remix.models import GenerationEdge

MAX_DEPTH = 64
"""A lineage deeper than this is refused (a remix of a remix ... 64 times): it bounds every walk."""


def parents(session: Session, generation_id: str) -> list[str]:
    rows = session.exec(select(GenerationEdge).where(GenerationEdge.child_id == generation_id)).all()
    return sorted(r.parent_id for r in rows)


def ancestors(session: Session, generation_id: str) -> list[str]:
    """Every generation up the lineage of ``generation_id`` (parents first), each once."""
    seen: dict[str, None] = {}
    frontier = [generation_id]
    for _ in range(MAX_DEPTH):
        nxt = [p for g in frontier for p in parents(session, g) if p not in seen and p != generation_id]
        if not nxt:
            break
        seen.update(dict.fromkeys(nxt))
        frontier = nxt
    return list(seen)


def descendants(session: Session, generation_id: str) -> list[str]:
    """Every generation made (directly or not) from ``generation_id``, nearest first, each once."""
    seen: dict[str, None] = {}
    frontier = [generation_id]
    for _ in range(MAX_DEPTH):
        rows = session.exec(select(GenerationEdge).where(
            GenerationEdge.parent_id.in_(frontier))).all()  # type: ignore[attr-defined]
        nxt = [r.child_id for r in sorted(rows, key=lambda r: r.child_id)
               if r.child_id not in seen and r.child_id != generation_id]
        if not nxt:
            break
        seen.update(dict.fromkeys(nxt))
        frontier = list(dict.fromkeys(nxt))
    return list(seen)


def ancestor_withdrawn(session: Session, generation_id: str) -> dict[str, Any] | None:
    """``{"at", "reason"}`` when something up the lineage of ``generation_id`` was withdrawn, else None."""
    rows = session.exec(select(GenerationEdge).where(GenerationEdge.child_id == generation_id,
                                                     GenerationEdge.withdrawn_at.is_not(None))  # type: ignore[union-attr]
                        .order_by(GenerationEdge.withdrawn_at)).all()  # type: ignore[arg-type]
    if not rows:
        return None
    return {"at": iso(rows[0].withdrawn_at), "reason": rows[0].withdrawn_reason}


# --- making a remix --------------------------------------------------------------------------------------


def check_parent(session: Session, requester: Account, parent_id: object) -> Generation:
    """The generation ``requester`` may remix: one it may see (404 otherwise, like any unknown id), released,
    not taken down, with no withdrawn ancestor (409), and not too deep a lineage (409)."""
    from governance.generations.services.generations import visible_generation

    if not isinstance(parent_id, str) or not parent_id:
        raise InvalidInput(f"remix_of must be a generation id, got {parent_id!r}")
    parent = visible_generation(session, requester, parent_id)
    if parent.taken_down_at is not None:
        raise Conflict(f"generation {parent.id} was taken down: it cannot be remixed")
    if parent.state is not GenerationState.RELEASED:
        raise Conflict(f"generation {parent.id} is {parent.state.value}: only a released generation can be remixed")
    if ancestor_withdrawn(session, parent.id) is not None:
        raise Conflict(f"an ancestor of generation {parent.id} was withdrawn: it cannot be remixed")
    if len(ancestors(session, parent.id)) + 1 >= MAX_DEPTH:
        raise Conflict(f"generation {parent.id} is {MAX_DEPTH - 1} remixes deep: no deeper lineage is kept")
    return parent


def lineage_likenesses(session: Session, parent: Generation) -> list[str]:
    """Every likeness the parent and its ancestors named or showed: a remix is consented for all of them."""
    out: dict[str, None] = {}
    for gid in [parent.id, *ancestors(session, parent.id)]:
        gen = session.get(Generation, gid)
        if gen is not None:
            out.update(dict.fromkeys(gen.likeness_ids))
            out.update(dict.fromkeys(f["likeness"] for f in gen.faces_found if f.get("likeness")))
    return list(out)


def link(session: Session, child: Generation, parent: Generation) -> None:
    session.add(GenerationEdge(child_id=child.id, parent_id=parent.id))
    record(session, Tag.GENERATION_REMIX, actor_id=child.requester_id, subject=child.id, parent=parent.id)


# --- withdrawal follows the graph --------------------------------------------------------------------------


def shown(gen: Generation) -> set[str]:
    """The likenesses a generation named or showed."""
    return set(gen.likeness_ids) | {f["likeness"] for f in gen.faces_found if f.get("likeness")}


def withdraw(session: Session, actor: Account | None, origin: Generation, *, reason: str,
             faces: set[str]) -> list[str]:
    """Follow a withdrawal of ``origin`` (taken down, or ``faces`` withdrawn from it) down its descendants:
    unreleased ones are blocked, released ones that show one of ``faces`` are taken down, the other released
    ones are marked "an ancestor was withdrawn". Each step is audited and the people involved are told.
    Returns the ids of the generations taken down here (their files are the caller's to remove)."""
    from governance.generations.services.generations import block, involved_owner_ids

    taken: list[str] = []
    now = utcnow()
    why = f"an ancestor ({origin.id}) was withdrawn: {reason}"
    for gid in descendants(session, origin.id):
        gen = session.get(Generation, gid)
        if gen is None or gen.taken_down_at is not None:
            continue
        owners = involved_owner_ids(session, gen)
        if not gen.state.terminal:
            block(session, gen, [why], stage="lineage", notify_owners=owners)
            notify(session, gen.requester_id, "generation:lineage", f"generation {gen.id} was blocked: {why}",
                   generation_id=gen.id)
            record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id if actor else None, subject=gen.id,
                   ancestor=origin.id, outcome="blocked", reason=reason)
        elif gen.state is GenerationState.RELEASED and shown(gen) & faces:
            gen.taken_down_at, gen.taken_down_by, gen.updated_at = now, actor.id if actor else None, now
            session.add(gen)
            record(session, Tag.GENERATION_TAKEDOWN, actor_id=actor.id if actor else None, subject=gen.id,
                   reason=why, acting_as="lineage")
            translog.append_event(session, gen.id, "takedown", "lineage", origin_generation_id=origin.id)
            _close_notices(session, gen)
            record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id if actor else None, subject=gen.id,
                   ancestor=origin.id, outcome="taken_down", reason=reason)
            for account_id in sorted({gen.requester_id} | owners):
                notify(session, account_id, "generation:takedown",
                       f"generation {gen.id} was taken down: it shows a face withdrawn from {why}",
                       generation_id=gen.id)
            taken.append(gen.id)
        elif gen.state is GenerationState.RELEASED:
            newly = False
            for edge in session.exec(select(GenerationEdge).where(GenerationEdge.child_id == gen.id)).all():
                if edge.withdrawn_at is None:
                    edge.withdrawn_at, edge.withdrawn_reason = now, why
                    session.add(edge)
                    newly = True
            record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id if actor else None, subject=gen.id,
                   ancestor=origin.id, outcome="marked", reason=reason)
            if newly:  # the log says it once: verification reports the first withdrawal up the lineage
                translog.append_event(session, gen.id, "ancestor_withdrawn", "lineage",
                                      origin_generation_id=origin.id)
            for account_id in sorted({gen.requester_id} | owners):
                notify(session, account_id, "generation:lineage", f"generation {gen.id}: {why}",
                       generation_id=gen.id)
    return taken


def withdraw_likeness(session: Session, actor: Account, likeness_id: str, grantee_id: str | None,
                      reason: str, *, owner_id: str) -> list[str]:
    """A likeness withdrawn (a grant to ``grantee_id`` revoked; ``None``: closed to everyone but its owner
    ``owner_id``): every released remix that shows it and was requested under the withdrawn consent is taken
    down, and the withdrawal follows each one's descendants. In-flight remixes are blocked by the gate's own
    consent checks at seal and release (the lineage's likenesses are part of every remix's request).
    Returns the ids taken down."""
    remixes = session.exec(select(Generation).where(
        Generation.state == GenerationState.RELEASED, Generation.taken_down_at == None,  # noqa: E711
        Generation.id.in_(select(GenerationEdge.child_id)))).all()  # type: ignore[attr-defined]
    taken: list[str] = []
    now = utcnow()
    for gen in remixes:
        if likeness_id not in shown(gen) or gen.requester_id == owner_id or \
                (grantee_id is not None and gen.requester_id != grantee_id):
            continue
        if gen.taken_down_at is not None:  # already down through an ancestor met earlier in this loop
            continue
        gen.taken_down_at, gen.taken_down_by, gen.updated_at = now, actor.id, now
        session.add(gen)
        record(session, Tag.GENERATION_TAKEDOWN, actor_id=actor.id, subject=gen.id, reason=reason,
               acting_as="lineage")
        translog.append_event(session, gen.id, "takedown", "likeness_withdrawn")
        _close_notices(session, gen)
        notify(session, gen.requester_id, "generation:takedown",
               f"generation {gen.id} was taken down: a likeness it shows was withdrawn ({reason})",
               generation_id=gen.id)
        taken.append(gen.id)
        taken += withdraw(session, actor, gen, reason=reason, faces={likeness_id})
    return taken


def sweep_withdrawn_files(session: Session, videos_dir: Path) -> int:
    """Remove the stored videos of remixes taken down by a withdrawal (after the commit that took them down:
    a rolled-back withdrawal removes nothing). Returns how many files were removed."""
    rows = session.exec(select(Generation.id).where(
        Generation.taken_down_at != None,  # noqa: E711
        Generation.id.in_(select(GenerationEdge.child_id)))).all()  # type: ignore[attr-defined]
    removed = 0
    for gid in rows:
        path = videos_dir / f"{gid}.mp4"
        if path.exists():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _close_notices(session: Session, gen: Generation) -> None:
    """Open takedown notices about a video taken down through its lineage say so, and close."""
    from governance.notices.services import close_on_takedown

    close_on_takedown(session, gen, "its remix lineage (an ancestor or a face in it was withdrawn)")
