"""Restrictions on how a likeness may be used: set by its owner, screened at precheck, and the owner's approval
of generations held in the uncertain band. No Flask here; services never commit.

A prompt that names a likeness is screened against that likeness's restrictions
(:class:`policies.restrictions.RestrictionScreen`) when the requester may use it and is not its owner:

- a broken restriction denies, naming it (rule ``restriction:<category>`` or ``restriction:phrase``): the
  generation is blocked at precheck like any other denial, and the owner is told;
- a possible one (``restriction:<category>:uncertain``) holds the generation before anything is generated: one
  :class:`RestrictionApproval` per likeness, the owner notified; every owner approving lets the job run, one
  denial blocks it.

Restrictions of a likeness the requester may not use are never screened: a requester without consent learns
nothing of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.authz import Action
from governance.columns import iso, utcnow
from governance.errors import InvalidInput
from governance.generations import questions
from governance.generations.models import Generation, GenerationState
from governance.likenesses.models import Likeness
from governance.likenesses.services.likenesses import owned_likeness
from governance.restrictions.models import LikenessRestriction, RestrictionApproval
from policies.decisions import Decision
from policies.restrictions import (
    Category,
    Embedder,
    RestrictionError,
    Restrictions,
    RestrictionScreen,
    Verdict,
    default_embedder,
)

DECISIONS = ("approve", "deny")
_FIELDS = ("categories", "phrases", "note")


def restrictions_of(session: Session, likeness_id: str) -> Restrictions:
    """The likeness's restrictions (empty when it has none). A stored row that no longer parses (a category
    removed from the code) fails closed: every category is restricted."""
    row = session.get(LikenessRestriction, likeness_id)
    if row is None:
        return Restrictions()
    try:
        return Restrictions(frozenset(row.categories), tuple(row.phrases), row.note)  # type: ignore[arg-type]
    except RestrictionError:
        return Restrictions(frozenset(Category))


def read(session: Session, actor: Account, likeness_id: str) -> tuple[Likeness, Restrictions]:
    """The likeness and its restrictions, for its owner (someone else's answers 404 like an unknown id)."""
    likeness = owned_likeness(session, actor, likeness_id, Action.LIKENESS_RESTRICTIONS_READ)
    return likeness, restrictions_of(session, likeness.id)


def update(session: Session, actor: Account, likeness_id: str, body: Mapping[str, Any]) -> Restrictions:
    """Replace the likeness's restrictions with ``body`` (``categories``: a list of :class:`Category` values,
    ``phrases``: a list of strings, ``note``: a string, ``draft_approval``: a boolean; each optional, absent means
    empty or false). Audited. Raises
    :class:`InvalidInput` (422) naming what is wrong; nothing is stored then."""
    likeness = owned_likeness(session, actor, likeness_id, Action.LIKENESS_RESTRICTIONS_SET)
    categories, phrases, note = body.get("categories", []), body.get("phrases", []), body.get("note", "")
    draft_approval = body.get("draft_approval", False)
    if not isinstance(draft_approval, bool):
        raise InvalidInput(f"draft_approval must be true or false, got {draft_approval!r}")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise InvalidInput(f"categories must be a list of category names, got {categories!r}")
    if not isinstance(phrases, list):
        raise InvalidInput(f"phrases must be a list of words or phrases, got {phrases!r}")
    if not isinstance(note, str):
        raise InvalidInput(f"note must be a string, got {note!r}")
    try:
        parsed = Restrictions(frozenset(categories), tuple(phrases), note.strip())  # type: ignore[arg-type]
    except RestrictionError as e:
        raise InvalidInput(str(e)) from e
    row = session.get(LikenessRestriction, likeness.id)
    if parsed.empty and not parsed.note and not draft_approval:
        if row is not None:
            session.delete(row)
    else:
        row = row or LikenessRestriction(likeness_id=likeness.id)
        row.categories = sorted(c.value for c in parsed.categories)
        row.phrases = list(parsed.phrases)
        row.note = parsed.note
        row.draft_approval = draft_approval
        row.updated_at = utcnow()
        session.add(row)
    record(session, Tag.LIKENESS_RESTRICT, actor_id=actor.id, subject=likeness.id,
           categories=sorted(c.value for c in parsed.categories), phrases=len(parsed.phrases),
           draft_approval=draft_approval)
    return parsed


def draft_approval(session: Session, likeness_id: str) -> bool:
    """Whether the likeness's owner approves drafts (:mod:`governance.restrictions.drafts`)."""
    row = session.get(LikenessRestriction, likeness_id)
    return bool(row is not None and row.draft_approval)


@dataclass(frozen=True)
class Hold:
    """A likeness whose restrictions a prompt may break: its owner decides."""

    likeness_id: str
    owner_id: str
    decisions: tuple[Decision, ...]


def screen(session: Session, requester: Account, prompt: str, usable: Sequence[tuple[str, str]],
           embedder: Embedder | None = None, hold_at: float | None = None) -> tuple[list[Decision], list[Hold]]:
    """Screen ``prompt`` against the restrictions of each ``(likeness_id, owner_id)`` in ``usable`` (named
    likenesses the requester may use) that the requester does not own. Returns the denials of restrictions
    broken, and the likenesses whose owners must approve (:class:`Hold`), when nothing is broken outright."""
    denials: list[Decision] = []
    holds: list[Hold] = []
    for likeness_id, owner_id in usable:
        if owner_id == requester.id:
            continue  # the owner's own use is theirs to decide
        restrictions = restrictions_of(session, likeness_id)
        if restrictions.empty:
            continue
        result = RestrictionScreen.build(restrictions, embedder, hold_at).screen(prompt)
        note = restrictions.note
        if result.verdict is Verdict.BLOCK:
            broken = [d for d in result.decisions if d.rule.count(":") == 1]
            denials.extend(_about(d, likeness_id, note if i == 0 else "") for i, d in enumerate(broken))
        elif result.verdict is Verdict.HOLD:
            holds.append(Hold(likeness_id, owner_id, tuple(_about(d, likeness_id, note if i == 0 else "")
                                                           for i, d in enumerate(result.decisions))))
    return denials, holds


def _about(d: Decision, likeness_id: str, note: str = "") -> Decision:
    """The decision with the likeness named in its reason ("likeness lk_...: the prompt writes ..."), and the
    owner's note to requesters after it, when there is one."""
    told = f" (the owner's note: {note!r})" if note else ""
    return type(d)(f"likeness {likeness_id}: {d.reason}{told}", d.rule, d.matched, d.disguises)


def model_for(hold_at: float | None) -> Embedder | None:
    """The embedder the precheck uses: the process's all-MiniLM-L6-v2 when a hold threshold is configured
    (``GOVERNANCE_RESTRICTION_MODEL_HOLD``), else none."""
    return default_embedder() if hold_at is not None else None


def hold(session: Session, gen: Generation, holds: Sequence[Hold], requester: Account) -> None:
    """Hold ``gen`` (not yet generated) for the owners in ``holds``; they and the requester are notified."""
    for h in holds:
        session.add(RestrictionApproval(generation_id=gen.id, likeness_id=h.likeness_id, owner_id=h.owner_id,
                                        reasons=[d.reason for d in h.decisions],
                                        rules=[d.rule for d in h.decisions]))
    gen.state = GenerationState.HELD
    gen.reasons = [*gen.reasons, *(f"held for its owner's approval: {d.reason}" for h in holds for d in h.decisions)]
    gen.updated_at = utcnow()
    session.add(gen)
    record(session, Tag.GENERATION_HOLD, actor_id=None, subject=gen.id, likenesses=[h.likeness_id for h in holds],
           why="restriction")
    for h in holds:
        notify(session, h.owner_id, "likeness:use:approval",
               f"{requester.name} asks to use your likeness {h.likeness_id} in generation {gen.id} with the prompt "
               f"{gen.prompt!r}, which may break your restrictions ({'; '.join(d.reason for d in h.decisions)}); "
               f"approve or deny it: on the page /me/requests, or POST /v1/generations/{gen.id}/approval",
               generation_id=gen.id, likeness_id=h.likeness_id)
    notify(session, gen.requester_id, "generation:held",
           f"generation {gen.id} is held: its prompt may break a restriction the person in it set; their answer "
           "decides", generation_id=gen.id)


def for_account(session: Session, account: Account, gen: Generation) -> list[RestrictionApproval]:
    """The approvals of ``gen`` asked of ``account``."""
    return list(session.exec(select(RestrictionApproval).where(
        RestrictionApproval.generation_id == gen.id, RestrictionApproval.owner_id == account.id)
        .order_by(RestrictionApproval.likeness_id)).all())  # type: ignore[arg-type]


def waiting_for(session: Session, account: Account) -> list[str]:
    """The ids of the generations with an approval still pending for ``account`` that are held (another owner's
    answer may have blocked one already), oldest question first."""
    return questions.waiting_for(session, RestrictionApproval, account.id)


def is_approver(session: Session, account_id: str, generation_id: str) -> bool:
    row = session.exec(select(RestrictionApproval.likeness_id).where(
        RestrictionApproval.generation_id == generation_id, RestrictionApproval.owner_id == account_id)
        .limit(1)).first()
    return row is not None


def view(row: RestrictionApproval) -> dict[str, Any]:
    out: dict[str, Any] = {"likeness": row.likeness_id, "decision": row.decision, "reasons": list(row.reasons),
                           "rules": list(row.rules), "created_at": iso(row.created_at)}
    if row.decided_at is not None:
        out["decided_at"] = iso(row.decided_at)
    return out
