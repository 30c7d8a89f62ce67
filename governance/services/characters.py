"""Rights holders' characters: registration and the policy objects the gate screens prompts with."""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.db import bump, counter, get_or_404
from governance.errors import Conflict, Forbidden, InvalidInput, NotFound
from governance.models import (
    Account,
    Character,
    CharacterReference,
    Generation,
    GenerationCharacter,
    GenerationState,
    Role,
    iso,
)
from governance.services.accounts import resolve_account
from policies.characters import (
    CharacterMatcher,
    CharacterPolicy,
    CharacterRule,
    PolicyError,
    character_of,
    mentions,
    screen_prompt,
)

MAX_ALIASES = 50
SIMULATE_LAST = 1000  # past requests a simulation screens by default
MAX_SIMULATE = 100_000


def _policy(session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any,
            attribution: Any = None) -> tuple[CharacterPolicy, list[str]]:
    """The character a rights holder describes, checked: its policy and its licensees' account ids."""
    if owner.role not in (Role.RIGHTS_HOLDER, Role.ADMIN):
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
    _changed(session)
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
    if ch.owner_id != actor.id and actor.role is not Role.ADMIN:
        raise Forbidden("only the rights holder who registered a character may read its usage")
    rows = session.exec(select(GenerationCharacter.allowed, Generation.requester_id, Generation.state,  # type: ignore[call-overload]
                               Generation.created_at, Generation.decisions)
                        .join(Generation, Generation.id == GenerationCharacter.generation_id)  # type: ignore[arg-type]
                        .where(GenerationCharacter.character_id == ch.id)).all()
    licensees: dict[str, dict[str, int]] = {}
    others: set[str] = set()
    totals = {"requests": 0, "allowed_by_rule": 0, "denied_by_rule": 0, "released": 0, "blocked": 0}
    disguised: Counter[str] = Counter()
    disguised_requests = 0
    for allowed, requester, state, _created, decisions in rows:
        kinds = {k for d in decisions if character_of(d.get("rule", "")) == ch.id for k in d.get("disguises", ())}
        disguised_requests += bool(kinds)
        disguised.update(kinds)
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
            "other_requesters": len(others),
            "disguised": {"requests": disguised_requests, "by_kind": dict(sorted(disguised.items()))}}


def get_character(session: Session, character_id: str) -> Character:
    return get_or_404(session, Character, character_id, "character")


def delete_character(session: Session, actor: Account, ch: Character) -> None:
    if ch.owner_id != actor.id and actor.role is not Role.ADMIN:
        raise Forbidden("only the rights holder who registered a character may delete it")
    for ref in session.exec(select(CharacterReference).where(CharacterReference.character_id == ch.id)):
        session.delete(ref)
    session.flush()
    session.delete(ch)
    _changed(session)
    record(session, Tag.CHARACTER_DELETE, actor_id=actor.id, subject=ch.id)


def list_characters(session: Session) -> Sequence[Character]:
    return session.exec(select(Character).order_by(Character.created_at)).all()  # type: ignore[arg-type]


def policies(session: Session) -> list[CharacterPolicy]:
    return [
        CharacterPolicy(c.id, c.name, tuple(c.aliases), CharacterRule(c.rule), frozenset(c.licensees),
                        c.attribution or "")
        for c in list_characters(session)
    ]


# The compiled matcher of each database (engine), with the "characters" counter it was built at.
_matchers: weakref.WeakKeyDictionary[Any, tuple[int, CharacterMatcher]] = weakref.WeakKeyDictionary()
_matchers_lock = threading.Lock()


def _changed(session: Session) -> None:
    """A character was added or removed in this unit of work: the next matcher build sees it (the counter), and
    this session, which sees it before it commits, builds its own (``session.info``)."""
    bump(session, "characters")
    session.info["characters_changed"] = True


def matcher(session: Session) -> CharacterMatcher:
    """Every registered character compiled for screening prompts (:class:`policies.characters.CharacterMatcher`),
    built once per change of the character set (the ``characters`` counter, bumped by every registration and
    deletion) and shared by the requests and threads of this process. A session that changed characters itself
    gets a fresh build that is not kept (it may yet roll back)."""
    if session.info.get("characters_changed"):
        return CharacterMatcher.build(policies(session))
    engine = session.get_bind()
    with _matchers_lock:  # one build at a time: concurrent requests after a change wait for it, not redo it
        version = counter(session, "characters")  # read before the rows: a later change bumps it again
        kept = _matchers.get(engine)
        if kept is not None and kept[0] == version >= 0:
            return kept[1]
        built = CharacterMatcher.build(policies(session))
        if version >= 0:
            _matchers[engine] = (version, built)
        return built


MAX_REFERENCES = 32  # per character


def add_references(session: Session, actor: Account, ch: Character, images: Sequence[Any], encoder: Any) -> int:
    """Embed reference images of ``ch`` with the operator's image ``encoder`` and keep the embeddings
    (not the pictures); returns how many the character has now. Refused when the service has no encoder."""
    import numpy as np

    if ch.owner_id != actor.id and actor.role is not Role.ADMIN:
        raise Forbidden("only the rights holder who registered a character may add its reference images")
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
