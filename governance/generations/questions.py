"""The questions a held generation puts to its owners (a face review, a restriction approval), read alike."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from governance.generations.models import Generation, GenerationState


def waiting_for(session: Session, question: Any, owner_id: str) -> list[str]:
    """The ids of the held generations with a ``question`` (a table with ``generation_id``, ``owner_id``,
    ``decision`` and ``created_at``: :class:`~governance.generations.models.GenerationReview`,
    :class:`~governance.restrictions.models.RestrictionApproval`) still pending for ``owner_id``, oldest question
    first, each once. A generation no longer held (another owner's answer blocked it) asks nothing more."""
    rows = session.exec(select(question.generation_id)
                        .join(Generation, Generation.id == question.generation_id)  # type: ignore[arg-type]
                        .where(question.owner_id == owner_id, question.decision == "pending",
                               Generation.state == GenerationState.HELD)
                        .order_by(question.created_at)).all()
    return list(dict.fromkeys(rows))
