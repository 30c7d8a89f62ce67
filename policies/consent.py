"""Likeness consent: may this requester use this person's likeness right now?

    >>> from policies.consent import ConsentFacts, LikenessMode, likeness_permits
    >>> facts = ConsentFacts(likeness_id="lk1", owner_id="alice", mode=LikenessMode.APPROVED)
    >>> likeness_permits(facts, requester_id="bob").allowed
    False
    >>> likeness_permits(facts, requester_id="alice").allowed
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policies.decisions import Allow, Decision, Deny


class LikenessMode(StrEnum):
    ONLY_ME = "only_me"  # nobody else, grants or not
    APPROVED = "approved"  # accounts holding a grant
    MUTUALS = "mutuals"  # grants, plus accounts that are mutual contacts of the owner
    EVERYONE = "everyone"


@dataclass(frozen=True)
class ConsentFacts:
    """What the database says about one likeness and one requester at one moment."""

    likeness_id: str
    owner_id: str
    mode: LikenessMode
    grant_id: str | None = None  # the requester's active grant, if any
    mutual_contact: bool = False  # the requester and the owner list each other as contacts


def likeness_permits(facts: ConsentFacts, requester_id: str) -> Decision:
    rule = f"likeness:{facts.mode.value}"
    if requester_id == facts.owner_id:
        return Allow(f"the requester owns likeness {facts.likeness_id}", rule)
    if facts.mode is LikenessMode.ONLY_ME:
        return Deny(f"likeness {facts.likeness_id} is set to only_me: nobody else may use it", rule)
    if facts.mode is LikenessMode.EVERYONE:
        return Allow(f"likeness {facts.likeness_id} may be used by everyone", rule)
    if facts.grant_id is not None:
        return Allow(f"grant {facts.grant_id} on likeness {facts.likeness_id}", rule)
    if facts.mode is LikenessMode.MUTUALS and facts.mutual_contact:
        return Allow(f"the requester is a mutual contact of the owner of likeness {facts.likeness_id}", rule)
    wanted = "a grant" if facts.mode is LikenessMode.APPROVED else "a grant or a mutual contact"
    return Deny(f"likeness {facts.likeness_id} needs {wanted}; the requester has none", rule)
