"""Remix lineage over :class:`GenerationEdge` rows (no Flask): ancestry, descendants, whether a generation may be
remixed and the edge a remix adds. It reads generations and edges alone, so the gate and the generations'
services build on it; what a withdrawal does to the lineage is :mod:`governance.remix.services`, above them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.columns import iso
from governance.errors import Conflict
from governance.generations.models import Generation, GenerationState
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


def check_parent(session: Session, parent: Generation) -> Generation:
    """``parent`` (one the requester may see: :func:`governance.generations.services.generations.remix_parent`)
    when it may be remixed: released, not taken down, with no withdrawn ancestor and not too deep a lineage (409
    otherwise)."""
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


def shown(gen: Generation) -> set[str]:
    """The likenesses a generation named or showed."""
    return set(gen.likeness_ids) | {f["likeness"] for f in gen.faces_found if f.get("likeness")}
