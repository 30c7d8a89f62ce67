"""Likeness consent: may this requester use this person's likeness right now?

Only a likeness whose owner proved the face live (``verification`` ``live``) and that nobody disputes
(``status`` ``active``) can consent; any other likeness is *protective*: it can only say no, to its owner
too::

    >>> from policies.consent import ConsentFacts, LikenessMode, Verification, likeness_permits
    >>> facts = ConsentFacts(likeness_id="lk1", owner_id="alice", mode=LikenessMode.APPROVED,
    ...                      verification=Verification.LIVE)
    >>> likeness_permits(facts, requester_id="bob").allowed
    False
    >>> likeness_permits(facts, requester_id="alice").allowed
    True
    >>> photo = ConsentFacts(likeness_id="lk2", owner_id="alice", mode=LikenessMode.EVERYONE)
    >>> likeness_permits(photo, requester_id="alice").rule
    'likeness:photo'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from policies.decisions import Allow, Decision, Deny


class LikenessMode(StrEnum):
    ONLY_ME = "only_me"  # nobody else, grants or not
    APPROVED = "approved"  # accounts holding a grant
    MUTUALS = "mutuals"  # grants, plus accounts that are mutual contacts of the owner
    EVERYONE = "everyone"


class Verification(StrEnum):
    """How the owner showed the face is theirs."""

    PHOTO = "photo"  # photos, or a video without a passed live challenge: proves nothing about who uploaded it
    LIVE = "live"  # a random pose challenge performed on camera within minutes of asking for it


class LikenessStatus(StrEnum):
    """Whether anything stands against the claim, whatever its verification."""

    ACTIVE = "active"
    DISPUTED = "disputed"  # another account enrolled a matching face first; an admin decides
    PENDING_REVIEW = "pending_review"  # matches a protected public figure, or the identity check failed


#: How to make a likeness able to consent; the reasons below end with it.
HOW_TO_VERIFY = ("verify it live: request a pose challenge (POST /v1/likenesses/challenges) and upload a selfie "
                 "video performing it to POST /v1/likenesses/{id}/verification")


@dataclass(frozen=True)
class ConsentFacts:
    """What the database says about one likeness and one requester at one moment. The defaults are the
    weakest claim (a photo enrollment): facts that say nothing about verification cannot consent."""

    likeness_id: str
    owner_id: str
    mode: LikenessMode
    grant_id: str | None = None  # the requester's active grant, if any
    mutual_contact: bool = False  # the requester and the owner list each other as contacts
    verification: Verification = Verification.PHOTO
    status: LikenessStatus = LikenessStatus.ACTIVE
    disputes: tuple[str, ...] = ()  # likenesses whose earlier claim on this face this one disputes (open disputes)


def can_consent(facts: ConsentFacts) -> Decision:
    """Whether the likeness may be used, granted or opened to others at all: only when live and active.
    A denial's reason says why and what would change it (rule ``likeness:photo``, ``likeness:disputed`` or
    ``likeness:pending_review``)."""
    lid = facts.likeness_id
    protective = "it only protects the face (it blocks every output showing it, its owner's too)"
    if facts.status is LikenessStatus.PENDING_REVIEW:
        return Deny(f"likeness {lid} awaits an admin's review (it matches a protected public figure or its identity "
                    f"check did not pass): until it is approved {protective}", "likeness:pending_review")
    if facts.status is LikenessStatus.DISPUTED:
        return Deny(f"likeness {lid} claims a face another account enrolled first: until an admin resolves the "
                    f"dispute {protective}", "likeness:disputed")
    if facts.verification is not Verification.LIVE:
        return Deny(f"likeness {lid} was not verified live (photo enrollment): {protective}; to use it, "
                    + HOW_TO_VERIFY.replace("{id}", lid), "likeness:photo")
    return Allow(f"likeness {lid} is live-verified and undisputed", f"likeness:{facts.verification.value}")


def likeness_permits(facts: ConsentFacts, requester_id: str) -> Decision:
    usable = can_consent(facts)
    if not usable.allowed:
        return usable
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


def seen_face_permits(facts: ConsentFacts, requester_id: str, alongside: dict[str, Decision]) -> Decision:
    """The decision for a face the scan found (not one the request named). ``alongside`` holds the decisions
    of the other likenesses that matched every track this one matched.

    A likeness that disputes an earlier claim (``disputes``; its status is ``disputed``, or ``pending_review``
    when a figure or identity review is open too) defers to that claim when it matched the same face and
    consents: a later claim on a face must not block its first claimant's outputs while an admin decides.
    Otherwise it is :func:`likeness_permits`: a protective likeness says no."""
    own = likeness_permits(facts, requester_id)
    if own.allowed or facts.status is LikenessStatus.ACTIVE:
        return own
    for holder in facts.disputes:
        earlier = alongside.get(holder)
        if earlier is not None and earlier.allowed:
            return Allow(f"likeness {facts.likeness_id} disputes likeness {holder}'s earlier claim on this face; "
                         f"until an admin resolves the dispute the earlier claim decides: {earlier.reason}",
                         "likeness:disputed:deferred")
    return own


def public_figure_permits(figure_id: str, name: str, subject: str, consenting: Iterable[Decision]) -> Decision:
    """A protected public figure named in a prompt or shown in an output (``subject`` says which) may appear
    only when a live-verified likeness an admin approved as that figure consents; ``consenting`` holds
    those likenesses' decisions for the requester. Rule ``figure:<id>``."""
    rule = f"figure:{figure_id}"
    for decision in consenting:
        if decision.allowed:
            return Allow(f"{subject}: the protected public figure {name!r} consents through their approved "
                         f"likeness ({decision.reason})", rule)
    return Deny(f"{subject}: {name!r} is a protected public figure, and no live-verified likeness an admin approved "
                "as them consents to this requester", rule)
