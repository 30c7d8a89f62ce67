"""Remix lineage over :class:`GenerationEdge` rows (no Flask): ancestry, descendants, and what a withdrawal
does to them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from governance.models import iso
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
