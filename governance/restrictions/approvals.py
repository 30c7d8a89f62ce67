"""The owners' answers to generations held for their approval at precheck (:mod:`governance.restrictions.services`
holds them): approve lets the job run once no answer is pending, deny blocks it. Apart from the restrictions'
services because it takes the gate's own steps (:mod:`governance.generations.services.generations`), which
import those services for the precheck."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from governance import authz
from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag
from governance.authz import Action
from governance.columns import utcnow
from governance.errors import InvalidInput
from governance.generations.models import Generation, GenerationState
from governance.generations.services.generations import answer_pending, block, is_owner
from governance.restrictions.models import RestrictionApproval
from governance.restrictions.services import DECISIONS, for_account, is_approver


def decide(session: Session, account: Account, gen: Generation, decision: Any) -> bool:
    """Answer every pending approval of ``gen`` asked of ``account``: ``approve`` lets the job run once no other
    owner's answer is pending; ``deny`` blocks it. Returns True when the job must be submitted (after the
    commit). Refused: a decision that is neither (422), no pending approval for ``account`` (409)."""
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    authz.require(Action.GENERATION_APPROVE, account,
                  owner=is_owner(session, account, gen) or is_approver(session, account.id, gen.id), key=gen.id)
    mine = answer_pending(session, account, gen, for_account(session, account, gen), decision,
                          decided="approved" if decision == "approve" else "denied", what="approval",
                          tag=Tag.GENERATION_APPROVAL)
    if decision == "deny":
        block(session, gen, [f"the owner of likeness {r.likeness_id} did not approve this use of it "
                             f"({'; '.join(r.reasons)})" for r in mine], stage="approval", notify_owners=set())
        notify(session, gen.requester_id, "generation:approval:denied",
               f"generation {gen.id} was blocked: the person in it did not approve the prompt", generation_id=gen.id)
        return False
    session.flush()
    pending = session.exec(select(RestrictionApproval).where(RestrictionApproval.generation_id == gen.id,
                                                             RestrictionApproval.decision == "pending")).first()
    if pending is not None:
        return False
    gen.state = GenerationState.PRECHECKED
    gen.reasons = [*gen.reasons, "approved by the owners of the likenesses it names"]
    gen.updated_at = utcnow()
    session.add(gen)
    notify(session, gen.requester_id, "generation:approval:approved",
           f"generation {gen.id} was approved by the person in it and is being generated", generation_id=gen.id)
    return True
