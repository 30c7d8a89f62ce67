"""Rights holders' characters: registration and the policy objects the gate screens prompts with."""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from governance import authz
from governance.accounts.models import Account
from governance.accounts.services import resolve_account
from governance.audit import Tag, record
from governance.authz import Action
from governance.characters.models import Character, CharacterReference
from governance.columns import iso, utcnow
from governance.db import bump, counter, get_or_404
from governance.errors import Conflict, Forbidden, InvalidInput, NotFound
from governance.generations.models import Generation, GenerationCharacter, GenerationState
from governance.pagination import Page, PageRequest, SortKey, paginate
from policies.characters import (
    CharacterMatcher,
    CharacterPolicy,
    CharacterRule,
    PolicyError,
    character_of,
    judge,
    names_used,
    normalize,
    unreadable,
)
from policies.decisions import Decision, Deny

if TYPE_CHECKING:
    from governance.config import Settings

log = logging.getLogger(__name__)

MAX_ALIASES = 50
SIMULATE_LAST = 1000  # past requests a simulation screens by default
MAX_SIMULATE = 100_000
#: k of k-anonymity (Sweeney 2002): no count a rights holder reads about other people's requests rests on
#: fewer distinct requesters than this (:func:`simulate`, :func:`usage`).
K_REQUESTERS = 5
#: The smallest sample a simulation screens (with at least :data:`K_REQUESTERS` requesters in it).
MIN_SAMPLE_REQUESTS = 20


@dataclass(frozen=True)
class LabelFont:
    """The visible label every release's credits go on: its ``language`` (``en``/``zh``, setting
    ``label_language``) and ``font`` file (setting ``label_font``; None: :func:`provenance.label.label_font`'s
    default for the language). A credit the label cannot draw is refused when registered, never at a release."""

    language: str = "en"
    font: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> LabelFont:
        """The label a deployment draws (settings ``label_language`` and ``label_font``)."""
        return cls(settings.label_language, settings.label_font or None)

    def cannot_draw(self, text: str) -> str:
        """The characters of ``text`` the label's font has no glyph for, each once ("" when it draws them all)."""
        from provenance.label import undrawable

        return undrawable(text, self.language, self.font)


def _policy(session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any,
            attribution: Any = None, label: LabelFont | None = None) -> tuple[CharacterPolicy, list[str]]:
    """The character a rights holder describes, checked: its policy and its licensees' account ids. A credit
    (``attribution``) with a character the visible ``label`` cannot draw is refused (422), naming them."""
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
    missing = (label or LabelFont()).cannot_draw(policy.attribution) if policy.attribution else ""
    if missing:
        raise InvalidInput(f"the attribution {policy.attribution!r} holds characters the visible label cannot draw "
                           f"({missing!r}: its font has no glyph for them), and every release must show it there; "
                           "write the credit without them", undrawable=list(missing))
    return policy, licensee_ids


def uncreditable(session: Session, decisions: Sequence[Decision], label: LabelFont) -> list[Decision]:
    """``decisions`` as they are, except that a character allowed under the attribution rule whose stored credit
    the visible ``label`` cannot draw (a row older than that check, or a label font changed since) is denied, with
    a reason saying so: refused before anything is generated, rather than failing at sealing every time."""
    out: list[Decision] = []
    for d in decisions:
        character_id = character_of(d.rule)
        if d.allowed and character_id is not None and d.rule.endswith(f":{CharacterRule.ATTRIBUTION.value}"):
            ch = session.get(Character, character_id)
            missing = (label.cannot_draw(ch.attribution) if ch is not None and ch.attribution else "")
            if missing:
                d = Deny(f"{d.reason}, but the visible label cannot draw {missing!r} of that credit (its font has "
                         "no glyph for them), so no release can credit it; its rights holder must change the "
                         "credit", d.rule, d.matched, d.disguises)
        out.append(d)
    return out


def create_character(
    session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any, attribution: Any = None,
    *, label: LabelFont | None = None
) -> Character:
    """Register a character (422 for a bad one, nothing stored: a credit the visible ``label`` cannot draw too)."""
    policy, licensee_ids = _policy(session, owner, name, aliases, rule, licensees, attribution, label)
    ch = Character(owner_id=owner.id, name=policy.name, aliases=list(policy.aliases), rule=policy.rule,
                   licensees=licensee_ids, attribution=policy.attribution or None)
    session.add(ch)
    _changed(session)
    record(session, Tag.CHARACTER_CREATE, actor_id=owner.id, subject=ch.id, name=ch.name, rule=policy.rule.value)
    return ch


def _start_of_today(now: datetime | None) -> datetime:
    now = now or utcnow()
    return datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)


def _distinct(requesters: Iterable[str]) -> int:
    return len(set(requesters))


def simulate(session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any,
             last: Any = None, attribution: Any = None, *, now: datetime | None = None,
             label: LabelFont | None = None) -> dict[str, Any]:
    """What a rule would have done to past requests, before it is registered: counts only, and only counts
    that rest on at least :data:`K_REQUESTERS` people (k-anonymity; Sweeney 2002, "k-anonymity: a model for
    protecting privacy", Int. J. Uncertainty, Fuzziness and Knowledge-Based Systems 10(5)).

    The sample is the ``last`` requests (20 to :data:`MAX_SIMULATE`, default :data:`SIMULATE_LAST`) made
    before the start of the current UTC day: today's requests, whose authors an onlooker may know, are never
    screened, and the sample moves once a day, not with each new request. It must hold at least
    :data:`MIN_SAMPLE_REQUESTS` requests from :data:`K_REQUESTERS` requesters, else :class:`Conflict` (409).

    Returns ``{"requests_screened", "before" (ISO 8601), "k", "named", "would_deny", "would_allow",
    "released_that_would_be_denied", "withheld": [reasons]}``. A count is ``None``, with a reason in
    ``withheld``, when the requests it counts come from fewer than k requesters; zero is withheld the same way,
    so a withheld count cannot be told from none. The rule applies to what it names (every name and alias
    must itself be used by k requesters, or one guessed alias could be counted beside a common name) and to
    whom it splits (``licensees_only`` with licensees: both sides need k requesters). Prompts and the
    words they used are never returned. The view rate-limits it per account (setting ``simulate_per_minute``)."""
    policy, _ = _policy(session, owner, name, aliases, rule, licensees, attribution, label)
    last = SIMULATE_LAST if last is None else last
    if isinstance(last, bool) or not isinstance(last, int) or not MIN_SAMPLE_REQUESTS <= last <= MAX_SIMULATE:
        raise InvalidInput(f"last must be a whole number from {MIN_SAMPLE_REQUESTS} to {MAX_SIMULATE}, got {last!r}")
    before = _start_of_today(now)
    rows = session.exec(select(Generation.prompt, Generation.requester_id, Generation.state)
                        .where(Generation.created_at < before)  # type: ignore[arg-type]
                        .order_by(Generation.created_at.desc()).limit(last)).all()  # type: ignore[attr-defined]
    if len(rows) < MIN_SAMPLE_REQUESTS or _distinct(r for _, r, _ in rows) < K_REQUESTERS:
        raise Conflict(f"a simulation screens at least {MIN_SAMPLE_REQUESTS} requests from at least {K_REQUESTERS} "
                       f"requesters, made before today (UTC), so that no count can single anyone out "
                       f"(k-anonymity); the last {last} requests before today fall short: ask for more (last) "
                       "or try again later", k=K_REQUESTERS, min_requests=MIN_SAMPLE_REQUESTS)
    labels = {"".join(normalize(n)): n for n in (policy.name, *policy.aliases)}
    by_name: dict[str, set[str]] = {t: set() for t in labels}
    named: list[tuple[str, Any, bool]] = []  # requester, state, allowed
    for prompt, requester, state in rows:
        used = names_used(prompt, policy)
        if not used:
            continue
        for term in used:
            by_name[term].add(requester)
        named.append((requester, state, judge(policy, requester, "").allowed))

    out: dict[str, Any] = {"requests_screened": len(rows), "before": iso(before), "k": K_REQUESTERS, "named": None,
                           "would_deny": None, "would_allow": None, "released_that_would_be_denied": None,
                           "withheld": []}
    withheld: list[str] = out["withheld"]
    rare = [labels[t] for t, who in by_name.items() if len(who) < K_REQUESTERS]
    if _distinct(r for r, _, _ in named) < K_REQUESTERS:
        withheld.append(f"every count: fewer than {K_REQUESTERS} requesters in the sample named the character")
        return out
    if rare:
        withheld.append(f"every count: fewer than {K_REQUESTERS} requesters in the sample used {rare[0]!r}; "
                        "simulate without it to see the counts")
        return out
    out["named"] = len(named)
    deny = [(r, st) for r, st, allowed in named if not allowed]
    allow = [r for r, _, allowed in named if allowed]
    if (policy.rule is CharacterRule.LICENSEES_ONLY and policy.licensees
            and min(_distinct(r for r, _ in deny), _distinct(allow)) < K_REQUESTERS):
        withheld.append(f"would_deny, would_allow, released_that_would_be_denied: the licensees split the "
                        f"requests into a group of fewer than {K_REQUESTERS} requesters")
        return out
    out["would_deny"], out["would_allow"] = len(deny), len(allow)
    released = [r for r, st in deny if st == GenerationState.RELEASED]
    if deny and _distinct(released) < K_REQUESTERS:
        withheld.append(f"released_that_would_be_denied: fewer than {K_REQUESTERS} requesters")
    else:
        out["released_that_would_be_denied"] = len(released)
    return out


def usage(session: Session, actor: Account, ch: Character, *, now: datetime | None = None) -> dict[str, Any]:
    """The requests made before today (UTC) that named ``ch`` (or showed it): totals by the rule's decision
    and the outcome, by day, with the rule's own licensees counted one by one under ``licensees_only`` (the
    license is what let them in) and everyone else together.

    Everyone else is counted only when they are at least :data:`K_REQUESTERS` distinct requesters
    (k-anonymity, as in :func:`simulate`); otherwise their counts are left out of every total, and
    ``other_requesters`` is ``None`` with a reason in ``withheld`` (zero is withheld alike). Today's requests
    are counted from tomorrow, so polling cannot time one request. Returns ``{"character", "name", "rule",
    "k", "before", "requests", "allowed_by_rule", "denied_by_rule", "released", "blocked",
    "first_request_day", "last_request_day" (YYYY-MM-DD or None), "licensees": [{"account", "requests",
    "released"}], "other_requesters", "withheld", "disguised": {"requests", "by_kind"}}``
    (disguised: how many of the counted requests wrote the name in disguise, and by which kinds)."""
    _owner_only(actor, ch, Action.CHARACTER_USAGE)
    before = _start_of_today(now)
    rows = session.exec(select(GenerationCharacter.allowed, Generation.requester_id, Generation.state,  # type: ignore[call-overload]
                               Generation.created_at, Generation.decisions)
                        .join(Generation, Generation.id == GenerationCharacter.generation_id)  # type: ignore[arg-type]
                        .where(GenerationCharacter.character_id == ch.id,
                               Generation.created_at < before)).all()  # type: ignore[arg-type]
    licensed = CharacterRule(ch.rule) is CharacterRule.LICENSEES_ONLY
    mine = [r for r in rows if licensed and r[1] in ch.licensees]
    others = [r for r in rows if not (licensed and r[1] in ch.licensees)]
    withheld = []
    counted = _distinct(r[1] for r in others)
    other_requesters: int | None = counted
    if counted < K_REQUESTERS:
        withheld.append(f"requests by anyone but the licensees: fewer than {K_REQUESTERS} requesters")
        other_requesters, others = None, []
    shown = [*mine, *others]
    totals = {"requests": len(shown), "allowed_by_rule": sum(1 for r in shown if r[0]),
              "denied_by_rule": sum(1 for r in shown if not r[0]),
              "released": sum(1 for r in shown if r[2] == GenerationState.RELEASED),
              "blocked": sum(1 for r in shown if r[2] == GenerationState.BLOCKED)}
    licensees: dict[str, dict[str, int]] = {}
    for _, requester, state, _created, _decisions in mine:
        row = licensees.setdefault(requester, {"requests": 0, "released": 0})
        row["requests"] += 1
        row["released"] += state == GenerationState.RELEASED
    disguised: Counter[str] = Counter()
    disguised_requests = 0
    for *_, decisions in shown:  # counted over what is shown: the same k-anonymity as the totals
        kinds = {k for d in decisions if character_of(d.get("rule", "")) == ch.id for k in d.get("disguises", ())}
        disguised_requests += bool(kinds)
        disguised.update(kinds)
    names = {a.id: a.name for a in session.exec(select(Account).where(Account.id.in_(list(licensees))))}  # type: ignore[attr-defined]
    days = sorted((iso(r[3]) or "")[:10] for r in shown)
    return {"character": ch.id, "name": ch.name, "rule": CharacterRule(ch.rule).value, "k": K_REQUESTERS,
            "before": iso(before), **totals,
            "first_request_day": days[0] if days else None, "last_request_day": days[-1] if days else None,
            "licensees": [{"account": names.get(a, a), **n} for a, n in sorted(licensees.items())],
            "other_requesters": other_requesters, "withheld": withheld,
            "disguised": {"requests": disguised_requests, "by_kind": dict(sorted(disguised.items()))}}


def update_character(session: Session, actor: Account, ch: Character, name: Any, aliases: Any, rule: Any,
                     licensees: Any, attribution: Any = None, *, label: LabelFont | None = None) -> Character:
    """Replace a character's names, aliases, rule, licensees and credit, checked as at registration (422 for a bad
    one, nothing changed: a credit the visible ``label`` cannot draw too); audited with what changed. Only the
    rights holder who registered it (the permission to delete it: someone else's answers 404). Requests already
    screened keep the decision they got; the next screening uses the new rule."""
    _owner_only(actor, ch, Action.CHARACTER_DELETE)
    policy, licensee_ids = _policy(session, actor, name, aliases, rule, licensees, attribution, label)
    before = {"name": ch.name, "aliases": list(ch.aliases), "rule": CharacterRule(ch.rule).value,
              "licensees": list(ch.licensees), "attribution": ch.attribution}
    ch.name, ch.aliases, ch.rule = policy.name, list(policy.aliases), policy.rule
    ch.licensees, ch.attribution = licensee_ids, policy.attribution or None
    after = {"name": ch.name, "aliases": list(ch.aliases), "rule": policy.rule.value,
             "licensees": list(ch.licensees), "attribution": ch.attribution}
    session.add(ch)
    _changed(session)
    record(session, Tag.CHARACTER_UPDATE, actor_id=actor.id, subject=ch.id,
           changed=sorted(k for k in after if after[k] != before[k]))
    return ch


def get_character(session: Session, character_id: str) -> Character:
    return get_or_404(session, Character, character_id, "character")


def owned_character(session: Session, actor: Account, character_id: str, action: Action) -> Character:
    """The character, when ``actor`` may do ``action`` on it (the rights holder who registered it); anybody
    else's answers 404 exactly like an unknown id."""
    return authz.owned(session, Character, actor, character_id, action)


def _owner_only(actor: Account, ch: Character, action: Action) -> None:
    """The service's own check, whoever calls it (views, CLI, pages): a character is its rights holder's alone."""
    authz.require(action, actor, owner=ch.owner_id == actor.id, key=ch.id)


def delete_character(session: Session, actor: Account, ch: Character) -> None:
    _owner_only(actor, ch, Action.CHARACTER_DELETE)
    for ref in session.exec(select(CharacterReference).where(CharacterReference.character_id == ch.id)):
        session.delete(ref)
    session.flush()
    session.delete(ch)
    _changed(session)
    record(session, Tag.CHARACTER_DELETE, actor_id=actor.id, subject=ch.id)


def list_characters(session: Session) -> Sequence[Character]:
    return session.exec(select(Character).order_by(Character.created_at)).all()  # type: ignore[arg-type]


def page_characters(session: Session, page: PageRequest) -> Page[Character]:
    """One page of every registered character, oldest first."""
    return paginate(session, select(Character), (SortKey(Character.created_at), SortKey(Character.id)), page)


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

    _owner_only(actor, ch, Action.CHARACTER_REFERENCES)
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
