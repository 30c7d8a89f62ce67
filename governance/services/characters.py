"""Rights holders' characters: registration and the policy objects the gate screens prompts with."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from governance import authz
from governance.audit import Tag, record
from governance.authz import Action
from governance.db import get_or_404
from governance.errors import Conflict, Forbidden, InvalidInput, NotFound
from governance.models import (
    Account,
    Character,
    CharacterReference,
    Generation,
    GenerationCharacter,
    GenerationState,
    iso,
)
from governance.services.accounts import resolve_account
from policies.characters import CharacterPolicy, CharacterRule, PolicyError, mentions, screen_prompt, unreadable

log = logging.getLogger(__name__)

MAX_ALIASES = 50
SIMULATE_LAST = 1000  # past requests a simulation screens by default
MAX_SIMULATE = 100_000


def _policy(session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any,
            attribution: Any = None) -> tuple[CharacterPolicy, list[str]]:
    """The character a rights holder describes, checked: its policy and its licensees' account ids."""
    if not authz.allows(Action.CHARACTER_CREATE, authz.principal(owner), owner=True):
        raise Forbidden("only rights holders may register characters")
    if not isinstance(name, str):
        raise InvalidInput("name must be a string")
    aliases = [] if aliases is None else aliases
    licensees = [] if licensees is None else licensees
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases) or len(aliases) > MAX_ALIASES:
        raise InvalidInput(f"aliases must be a list of at most {MAX_ALIASES} strings")
    if not isinstance(licensees, list) or not all(isinstance(a, str) for a in licensees):
        raise InvalidInput("licensees must be a list of account names or ids")
    try:
        rule_ = CharacterRule(rule)
    except ValueError as e:
        raise InvalidInput(f"rule must be one of {[r.value for r in CharacterRule]}, got {rule!r}") from e
    licensee_ids = []
    for ref in licensees:
        try:
            licensee_ids.append(resolve_account(session, ref).id)
        except NotFound as e:
            raise InvalidInput(f"unknown licensee account {ref!r}") from e
    if attribution is not None and not isinstance(attribution, str):
        raise InvalidInput("attribution must be a string: the credit a release must show")
    try:
        policy = CharacterPolicy("new", name.strip(), tuple(a.strip() for a in aliases), rule_,
                                 frozenset(licensee_ids), " ".join((attribution or "").split()))
    except PolicyError as e:
        raise InvalidInput(str(e)) from e
    return policy, licensee_ids


def create_character(
    session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any, attribution: Any = None
) -> Character:
    policy, licensee_ids = _policy(session, owner, name, aliases, rule, licensees, attribution)
    ch = Character(owner_id=owner.id, name=policy.name, aliases=list(policy.aliases), rule=policy.rule,
                   licensees=licensee_ids, attribution=policy.attribution or None)
    session.add(ch)
    record(session, Tag.CHARACTER_CREATE, actor_id=owner.id, subject=ch.id, name=ch.name, rule=policy.rule.value)
    return ch


def simulate(session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any,
             last: Any = None, attribution: Any = None) -> dict[str, Any]:
    """What a rule would have done to the ``last`` generation requests (default :data:`SIMULATE_LAST`):
    how many named the character, how many the rule would deny or allow, and how many of those it would
    deny were released. Counts only: other people's prompts and names are never shown."""
    policy, _ = _policy(session, owner, name, aliases, rule, licensees, attribution)
    last = SIMULATE_LAST if last is None else last
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_SIMULATE:
        raise InvalidInput(f"last must be a whole number from 1 to {MAX_SIMULATE}, got {last!r}")
    rows = session.exec(select(Generation.prompt, Generation.requester_id, Generation.state)
                        .order_by(Generation.created_at.desc()).limit(last)).all()  # type: ignore[attr-defined]
    named = denied = released_denied = 0
    phrases: Counter[str] = Counter()
    for prompt, requester, state in rows:
        decisions = screen_prompt(prompt, [policy], requester)
        if not decisions:
            continue
        decision = decisions[0]
        named += 1
        phrases[mentions(prompt, policy) or ""] += 1
        if not decision.allowed:
            denied += 1
            released_denied += state == GenerationState.RELEASED
    return {"requests_screened": len(rows), "named": named, "would_deny": denied, "would_allow": named - denied,
            "released_that_would_be_denied": released_denied,
            "named_as": [{"phrase": p, "requests": n} for p, n in phrases.most_common()]}


def usage(session: Session, actor: Account, ch: Character) -> dict[str, Any]:
    """Every request that named ``ch``: totals by the rule's decision and the outcome, and per licensee
    (the rights holder's own partners); other requesters are counted, not named."""
    authz.require(Action.CHARACTER_USAGE, actor, owner=ch.owner_id == actor.id, key=ch.id)
    rows = session.exec(select(GenerationCharacter.allowed, Generation.requester_id, Generation.state,
                               Generation.created_at)
                        .join(Generation, Generation.id == GenerationCharacter.generation_id)  # type: ignore[arg-type]
                        .where(GenerationCharacter.character_id == ch.id)).all()
    licensees: dict[str, dict[str, int]] = {}
    others: set[str] = set()
    totals = {"requests": 0, "allowed_by_rule": 0, "denied_by_rule": 0, "released": 0, "blocked": 0}
    for allowed, requester, state, _created in rows:
        totals["requests"] += 1
        totals["allowed_by_rule" if allowed else "denied_by_rule"] += 1
        totals["released"] += state == GenerationState.RELEASED
        totals["blocked"] += state == GenerationState.BLOCKED
        if requester in ch.licensees:
            mine = licensees.setdefault(requester, {"requests": 0, "released": 0})
            mine["requests"] += 1
            mine["released"] += state == GenerationState.RELEASED
        else:
            others.add(requester)
    names = {a.id: a.name for a in session.exec(select(Account).where(Account.id.in_(list(licensees))))}  # type: ignore[attr-defined]
    return {"character": ch.id, "name": ch.name, "rule": CharacterRule(ch.rule).value, **totals,
            "first_request_at": iso(min((r[3] for r in rows), default=None)),
            "last_request_at": iso(max((r[3] for r in rows), default=None)),
            "licensees": [{"account": names.get(a, a), **n} for a, n in sorted(licensees.items())],
            "other_requesters": len(others)}


def get_character(session: Session, character_id: str) -> Character:
    return get_or_404(session, Character, character_id, "character")


def owned_character(session: Session, actor: Account, character_id: str, action: Action) -> Character:
    """The character, when ``actor`` may do ``action`` on it (the rights holder who registered it); anybody
    else's answers 404 exactly like an unknown id."""
    ch = session.get(Character, character_id)
    authz.require(action, actor, owner=ch is not None and ch.owner_id == actor.id, key=character_id)
    assert ch is not None  # require() refuses a missing one as it refuses someone else's
    return ch


def delete_character(session: Session, actor: Account, ch: Character) -> None:
    authz.require(Action.CHARACTER_DELETE, actor, owner=ch.owner_id == actor.id, key=ch.id)
    for ref in session.exec(select(CharacterReference).where(CharacterReference.character_id == ch.id)):
        session.delete(ref)
    session.flush()
    session.delete(ch)
    record(session, Tag.CHARACTER_DELETE, actor_id=actor.id, subject=ch.id)


def list_characters(session: Session) -> Sequence[Character]:
    return session.exec(select(Character).order_by(Character.created_at)).all()  # type: ignore[arg-type]


def policies(session: Session) -> list[CharacterPolicy]:
    """Every registered character as the policy the gate screens prompts and outputs with.

    A stored row that no longer makes a valid policy (a name with no letter or digit, an unknown rule, a
    licensee list that is not one: written by hand, by an older version, or by a bug) fails closed for that
    character alone, never for every request: it denies whatever names it by the labels that still work
    (or, when none does, only outputs its reference images match), and the reason is logged. Columns are
    read raw, so even a rule the enum no longer knows cannot stop the query."""
    rows = session.exec(select(Character.id, Character.name, Character.aliases,  # type: ignore[call-overload]
                               sa.cast(Character.rule, sa.String), Character.licensees, Character.attribution)
                        .order_by(Character.created_at)).all()
    out = []
    for cid, name, aliases, rule, licensees, attribution in rows:
        try:
            out.append(CharacterPolicy(cid, name, tuple(_strings(aliases)), _stored_rule(rule),
                                       frozenset(_strings(licensees)), attribution or ""))
        except (PolicyError, TypeError, ValueError) as e:
            log.warning("character %s cannot be used as stored (%s): it denies every request that names or "
                        "shows it until its rights holder registers it again", cid, e)
            out.append(unreadable(cid, [name, *(aliases if isinstance(aliases, list) else [])]))
    return out


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return value


def _stored_rule(raw: Any) -> CharacterRule:
    """The rule as the database holds it (the enum's member name, e.g. ``LICENSEES_ONLY``)."""
    if isinstance(raw, str) and raw in CharacterRule.__members__:
        return CharacterRule[raw]
    raise ValueError(f"unknown character rule {raw!r}")


MAX_REFERENCES = 32  # per character


def add_references(session: Session, actor: Account, ch: Character, images: Sequence[Any], encoder: Any) -> int:
    """Embed reference images of ``ch`` with the operator's image ``encoder`` and keep the embeddings
    (not the pictures); returns how many the character has now. Refused when the service has no encoder."""
    import numpy as np

    authz.require(Action.CHARACTER_REFERENCES, actor, owner=ch.owner_id == actor.id, key=ch.id)
    if encoder is None:
        raise Conflict("this service has no image encoder for characters (GOVERNANCE_CHARACTER_MODEL_DIR): "
                       "characters are recognised by name only, so reference images would not be used")
    have = len(references(session, ch.id, encoder.name))
    if have + len(images) > MAX_REFERENCES:
        raise InvalidInput(f"a character has at most {MAX_REFERENCES} reference images; it has {have}, "
                           f"{len(images)} were sent")
    for row in encoder.embed(list(images)):
        session.add(CharacterReference(character_id=ch.id, encoder=encoder.name,
                                       embedding=np.asarray(row, np.float32).tobytes()))
    record(session, Tag.CHARACTER_REFERENCES, actor_id=actor.id, subject=ch.id, added=len(images))
    return have + len(images)


def references(session: Session, character_id: str | None, encoder_name: str) -> list[tuple[str, Any]]:
    """(character id, embedding) of every reference made with ``encoder_name`` (all characters when
    ``character_id`` is None)."""
    import numpy as np

    q = select(CharacterReference).where(CharacterReference.encoder == encoder_name)
    if character_id is not None:
        q = q.where(CharacterReference.character_id == character_id)
    return [(r.character_id, np.frombuffer(r.embedding, np.float32)) for r in session.exec(q)]
