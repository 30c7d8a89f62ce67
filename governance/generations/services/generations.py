"""Generation requests: validation, quota, the precheck, visibility and takedown.

The asynchronous stages (generate, scan, seal, release) live in :mod:`governance.generations.pipeline`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import and_, case, func, not_, or_
from sqlmodel import Session, col, select

from governance import authz
from governance.accounts.models import Account, Role
from governance.accounts.services import notify
from governance.audit import Tag, record, record_now
from governance.authz import Action
from governance.characters import services as characters_svc
from governance.columns import iso, utcnow
from governance.db import commit_asynchronously, insert_now, serialize_quota
from governance.errors import BadRequest, Conflict, InvalidInput, QuotaExceeded
from governance.generations.models import (
    NOTICE_ID_PREFIX,
    Generation,
    GenerationCharacter,
    GenerationLikeness,
    GenerationReview,
    GenerationState,
)
from governance.guardians.rules import is_guardian_of_any
from governance.likenesses.models import Likeness
from governance.likenesses.services import figures as figures_svc
from governance.likenesses.services.likenesses import check_consent, is_verified_claim
from governance.log.services import translog
from governance.pagination import Page, PageRequest, SortKey, paginate, states_named
from governance.remix import lineage
from governance.restrictions import services as restrictions_svc
from policies.characters import character_of
from policies.decisions import Allow, Decision, Deny, all_of

MAX_PROMPT = 2000
#: The rule a named likeness the requester may not use is refused under, whatever the reason.
NO_CONSENT_RULE = "likeness:no-consent"
MAX_LIKENESSES = 4


def _validate(prompt: Any, likeness_ids: Any, seed: Any) -> tuple[str, list[str], int]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInput("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT:
        raise InvalidInput(f"prompt must be at most {MAX_PROMPT} characters, got {len(prompt)}")
    likeness_ids = [] if likeness_ids is None else likeness_ids
    if not isinstance(likeness_ids, list) or not all(isinstance(x, str) for x in likeness_ids):
        raise InvalidInput("likenesses must be a list of likeness ids")
    if len(likeness_ids) > MAX_LIKENESSES:
        raise InvalidInput(f"at most {MAX_LIKENESSES} likenesses per generation, got {len(likeness_ids)}")
    if len(set(likeness_ids)) != len(likeness_ids):
        raise InvalidInput("likenesses must not repeat")
    if seed is None:
        seed = secrets.randbelow(2**63)
    if isinstance(seed, bool) or not isinstance(seed, int) or not (0 <= seed < 2**63):
        raise InvalidInput(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return prompt.strip(), likeness_ids, seed


def _midnight(now: datetime | None) -> datetime:
    return datetime.combine((now or utcnow()).date(), time(0), tzinfo=UTC)


def _refused_at_precheck() -> Any:
    """Blocked and never claimed by a worker: refused by the precheck (or before any generation work began)."""
    return and_(col(Generation.state) == GenerationState.BLOCKED, col(Generation.claimed_by).is_(None))


def used_today(session: Session, account_id: str, now: datetime | None = None) -> int:
    """How much of the daily quota ``account_id`` used today (UTC): its generations requested since midnight
    that went on to generation work. A request blocked at the precheck (no consent, a character's rule, a
    protected figure) costs no generation, so it is not counted: it is neither prechecked nor ever claimed by
    a worker (:func:`refused_today` bounds those). Everything else counts, whatever became of it: waiting,
    running, held, released, blocked by a later stage, taken down."""
    q = select(func.count()).select_from(Generation).where(
        Generation.requester_id == account_id, Generation.created_at >= _midnight(now), not_(_refused_at_precheck()))
    return int(session.exec(q).one())


def refused_today(session: Session, account_id: str, now: datetime | None = None) -> int:
    """How many of ``account_id``'s requests today (UTC) the precheck refused. They use no quota, but they are
    bounded by it too (:func:`request_generation`): each one may tell the requester something about the rules
    and the protected-figure gallery, and notifies the owners of the likenesses it named."""
    q = select(func.count()).select_from(Generation).where(
        Generation.requester_id == account_id, Generation.created_at >= _midnight(now), _refused_at_precheck())
    return int(session.exec(q).one())


@dataclass(frozen=True)
class Quota:
    """An account's daily generation quota: ``daily`` generations a UTC day (the account's own, else the
    service's ``GOVERNANCE_DAILY_QUOTA``), ``used`` today as :func:`used_today` counts, ``refused`` as
    :func:`refused_today` counts, ``left`` (the requests it may still send today: :attr:`left`) and ``resets_at``,
    the next midnight UTC (``retry_after_s``: whole seconds until then, at least 1)."""

    daily: int
    used: int
    refused: int  # requests refused at the precheck today: free, but at most ``daily`` of them
    resets_at: datetime
    retry_after_s: int

    @property
    def left(self) -> int:
        """How many more requests the account may send today before one is refused with 429 (never negative). A
        request is taken while both bounds have room (:func:`_refuse_over_quota`: ``used`` < ``daily`` and
        ``refused`` < ``daily``), and each one taken adds to one of the two: a generation, or a refusal at the
        precheck. The requester cannot know which before sending, so what is left is the smaller of what each
        bound leaves; ``daily - used`` (the generations left) is the larger when refusals used more."""
        return max(0, min(self.daily - self.used, self.daily - self.refused))


def quota_for(session: Session, account: Account, *, default_quota: int, now: datetime | None = None) -> Quota:
    now = now or utcnow()
    daily = account.daily_quota if account.daily_quota is not None else default_quota
    resets = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    used, refused = _counts_today(session, account.id, now)
    return Quota(daily, used, refused, resets, max(1, math.ceil((resets - now).total_seconds())))


_G = Generation.__table__.c  # type: ignore[attr-defined]
#: (requests, refused at the precheck) of an account since a time: :func:`used_today` and :func:`refused_today` in one
#: pass, built once (every generation request runs it; building and running a select through the ORM cost ~5x the
#: query itself: issue 12).
_COUNTS_SINCE = sa.select(
    func.count(),
    func.coalesce(func.sum(case((and_(_G.state == GenerationState.BLOCKED, _G.claimed_by.is_(None)), 1),
                                else_=0)), 0),
).where(_G.requester_id == sa.bindparam("account_id"), _G.created_at >= sa.bindparam("since"))


def _counts_today(session: Session, account_id: str, now: datetime) -> tuple[int, int]:
    """(:func:`used_today`, :func:`refused_today`) in one query (the session's pending rows are flushed first, as
    the ORM's autoflush would)."""
    session.flush()
    total, refused = session.connection().execute(_COUNTS_SINCE, {"account_id": account_id,
                                                                  "since": _midnight(now)}).one()
    return int(total) - int(refused), int(refused)


def precheck(session: Session, requester: Account, prompt: str, likeness_ids: Sequence[str],
             restriction_hold: float | None = None, label: characters_svc.LabelFont | None = None
             ) -> tuple[list[Decision], list[dict[str, Any]], set[str], list[restrictions_svc.Hold]]:
    """Consent for each named likeness, the rights-holder rules, protected public figures named in the prompt.

    A likeness's ``display_name`` takes no part: it is free text its owner typed, so letting it block prompts
    would let anyone squat a famous name, learn who is enrolled, and be told of every prompt naming it.
    An enrolled face is protected where it cannot be faked, by the scan of every output against every
    enrolled likeness; protected public figures come from the operator's gallery (:mod:`.figures`).

    The owners' restrictions on how each usable likeness may be used (:mod:`governance.restrictions.services`):
    a broken one denies; a possibly broken one is returned as a hold for its owner's approval
    (``restriction_hold``: the embedding model's hold threshold, None without the model).

    A character allowed when credited whose credit the visible ``label`` cannot draw is denied here
    (:func:`~governance.characters.services.uncreditable`), before anything is generated.

    Returns (decisions, grants relied on, owners to notify, restriction holds).
    """
    decisions: list[Decision] = []
    relied: list[dict[str, Any]] = []
    owners: set[str] = set()
    usable: list[tuple[str, str]] = []
    for check in check_consent(session, likeness_ids, requester.id):
        if check.decision.allowed:
            usable.append((check.likeness_id, check.owner_id))
        decision = check.decision
        if not decision.allowed and check.owner_id != requester.id:
            # One answer whatever the reason (unknown id, deleted, only_me, no grant): the requester learns
            # neither that the likeness exists nor how its owner set it (docs/security.md, oracles).
            decision = Deny(f"likeness {check.likeness_id} may not be used by this account: no consent is on "
                            "record for it", NO_CONSENT_RULE)
        decisions.append(decision)
        owners.add(check.owner_id)
        relied.append({"likeness": check.likeness_id, "grant": check.grant_id,
                       "rule": decision.rule, "reason": decision.reason})
    denials, holds = restrictions_svc.screen(session, requester, prompt, usable,
                                             restrictions_svc.model_for(restriction_hold), restriction_hold)
    decisions.extend(denials)
    decisions.extend(characters_svc.uncreditable(session, characters_svc.matcher(session).screen(prompt, requester.id),
                                                 label or characters_svc.LabelFont()))
    # Protected public figures (the operator's gallery): a prompt naming one is denied unless a live-verified
    # likeness an admin approved as them consents, attached or not (text-to-video could still draw them).
    for figure, said in figures_svc.named_in(session, prompt):
        decisions.append(figures_svc.decide(session, figure, requester.id,
                                            f"the prompt names {figure.name!r} ({said!r})"))
    if not decisions:
        decisions.append(Allow("no likeness or character is involved", "default"))
    return decisions, relied, owners, holds


def remix_parent(session: Session, requester: Account, parent_id: object) -> Generation:
    """The generation ``requester`` may remix: one it may see (404 otherwise, like any unknown id) that
    :func:`governance.remix.lineage.check_parent` accepts (409 otherwise); 422 for an id that is not a string."""
    if not isinstance(parent_id, str) or not parent_id:
        raise InvalidInput(f"remix_of must be a generation id, got {parent_id!r}")
    return lineage.check_parent(session, visible_generation(session, requester, parent_id))


def request_generation(session: Session, requester: Account, prompt: Any, likeness_ids: Any, seed: Any,
                       *, default_quota: int, restriction_hold: float | None = None,
                       remix_of: Any = None, label: characters_svc.LabelFont | None = None,
                       asynchronously: bool = False) -> Generation:
    """``remix_of``: the id of a released generation this one is made from. Every likeness its lineage named or
    showed joins the request's likenesses, so consent is asked for all of them at every stage
    (:mod:`governance.remix.lineage`).

    ``asynchronously`` (``GOVERNANCE_REQUEST_COMMIT=asynchronous``, docs/adr/0018): let the caller's transaction
    commit without waiting for the disk (:func:`governance.db.commit_asynchronously`) when it tells nobody but the
    requester. A request refused at the precheck notifies the owners of the likenesses it named (and a minor's
    guardian), and one held asks them for approval: such a transaction waits for the disk, so that a power cut
    cannot take back a notice another person may already have read (review s24, finding 1)."""
    authz.admit(Action.GENERATION_CREATE, requester)
    prompt, likeness_ids, seed = _validate(prompt, likeness_ids, seed)
    parent = remix_parent(session, requester, remix_of) if remix_of is not None else None
    if parent is not None:
        likeness_ids = list(dict.fromkeys([*likeness_ids, *lineage.lineage_likenesses(session, parent)]))
        if len(likeness_ids) > MAX_LIKENESSES:
            raise InvalidInput(f"a remix of {parent.id} would show {len(likeness_ids)} likenesses with its lineage's; "
                               f"at most {MAX_LIKENESSES} per generation")
    _refuse_over_quota(requester, quota_for(session, requester, default_quota=default_quota))  # no precheck for it
    decisions, relied, owners, holds = precheck(session, requester, prompt, likeness_ids, restriction_hold, label)
    gen = Generation(requester_id=requester.id, prompt=prompt, seed=seed, likeness_ids=likeness_ids,
                     decisions=[d.to_dict() for d in decisions], grants_relied=relied)
    verdict = all_of(decisions)
    denied = [d.reason for d in verdict.denials]
    if not verdict.allowed:
        _mark_blocked(gen, denied)
    elif not holds:
        gen.state = GenerationState.PRECHECKED
    named: dict[str, bool] = {}
    for d in decisions:
        character_id = character_of(d.rule)
        if character_id is not None:
            named[character_id] = named.get(character_id, True) and d.allowed
    links = [GenerationLikeness(generation_id=gen.id, likeness_id=lid, named=True) for lid in likeness_ids]
    characters = [GenerationCharacter(generation_id=gen.id, character_id=character_id, allowed=allowed)
                  for character_id, allowed in named.items()]
    told = owners if not verdict.allowed else {h.owner_id for h in holds}  # whom _tell_blocked / hold notify
    if asynchronously and not told - {requester.id, ""}:
        commit_asynchronously(session)  # before the lock below: SQLite sets it before the transaction begins
    # Counted again under the account's lock, held to the commit: concurrent requests of one account insert one
    # after another, each counting the others (without it, 20 at once on a quota of 2 got 7-9 generations). On
    # SQLite the lock is the database's write lock, so everything that can be made before it is (the rows above).
    serialize_quota(session, requester.id)
    _refuse_over_quota(requester, quota_for(session, requester, default_quota=default_quota))
    # Every decision writes these rows: inserted now, in a statement each, rather than flushed by the unit of work
    # (issue 12: the flush was a third of a decision's CPU).
    insert_now(session, [gen])
    insert_now(session, links)
    if parent is not None:
        lineage.link(session, gen, parent)
    insert_now(session, characters)
    record_now(session, Tag.GENERATION_REQUEST, actor_id=requester.id, subject=gen.id, likenesses=likeness_ids)
    if verdict.allowed and holds:
        restrictions_svc.hold(session, gen, holds, requester)
    elif not verdict.allowed:
        _tell_blocked(session, gen, denied, stage="precheck", notify_owners=owners, requester=requester)
    return gen


def _refuse_over_quota(requester: Account, quota: Quota) -> None:
    """429 (:class:`QuotaExceeded`) when ``quota`` has no generation left today, or as many refusals at the precheck
    as it has generations (together: ``quota.left`` is 0)."""
    if quota.used >= quota.daily:
        raise QuotaExceeded(f"{requester.name!r} has used all {quota.daily} generations for today (UTC); the "
                            f"quota resets at {iso(quota.resets_at)}", quota=quota.daily,
                            resets_at=iso(quota.resets_at), retry_after=quota.retry_after_s)
    if quota.refused >= quota.daily:
        raise QuotaExceeded(f"{requester.name!r} has had {quota.refused} requests refused at the precheck today "
                            f"(UTC), as many as the daily quota allows: refused requests use no generation, but "
                            f"probing the rules is not free; this resets at {iso(quota.resets_at)}",
                            quota=quota.daily, refused=quota.refused, resets_at=iso(quota.resets_at),
                            retry_after=quota.retry_after_s)


def _mark_blocked(gen: Generation, reasons: Sequence[str]) -> None:
    gen.state = GenerationState.BLOCKED
    gen.reasons = [*gen.reasons, *reasons]
    gen.updated_at = utcnow()


def block(session: Session, gen: Generation, reasons: Sequence[str], *, stage: str, notify_owners: set[str],
          requester: Account | None = None) -> None:
    """Block ``gen`` at ``stage`` for ``reasons`` (added to its reasons), audited, and tell ``notify_owners``
    (but its requester) that their likeness's use was blocked."""
    _mark_blocked(gen, reasons)
    session.add(gen)
    _tell_blocked(session, gen, reasons, stage=stage, notify_owners=notify_owners, requester=requester)


def _tell_blocked(session: Session, gen: Generation, reasons: Sequence[str], *, stage: str, notify_owners: set[str],
                  requester: Account | None) -> None:
    record_now(session, Tag.GENERATION_BLOCK, actor_id=None, subject=gen.id, stage=stage, reasons=list(reasons))
    requester = requester or session.get(Account, gen.requester_id)
    who = requester.name if requester else gen.requester_id
    for owner in notify_owners - {gen.requester_id, ""}:
        notify(session, owner, "likeness:use:blocked",
               f"{who} tried to use your likeness in generation {gen.id}; it was blocked ({stage})",
               generation_id=gen.id)


def involved_owner_ids(session: Session, gen: Generation) -> set[str]:
    """Owners of the likenesses the request named, and of those the scan found whose claim is verified (live,
    undisputed): an unproven claim on a face learns nothing about the outputs that show it."""
    found = {f["likeness"] for f in gen.faces_found} - set(gen.likeness_ids)
    owners = set()
    for lid in [*gen.likeness_ids, *sorted(found)]:
        lk = session.get(Likeness, lid)
        if lk is not None and (lid in gen.likeness_ids or is_verified_claim(lk)):
            owners.add(lk.owner_id)
    return owners


class Answerable(Protocol):
    """A question about a held generation put to one owner (a review of a face, an approval of a prompt)."""

    likeness_id: str
    decision: str
    decided_at: datetime | None


_Q = TypeVar("_Q", bound=Answerable)


def answer_pending(session: Session, account: Account, gen: Generation, questions: Sequence[_Q], answer: str, *,
                   decided: str, what: str, tag: Tag) -> list[_Q]:
    """Record ``account``'s ``answer`` (stored as ``decided``) to each of its pending ``questions`` about the held
    ``gen``, audited under ``tag``; returns them. 409 when ``gen`` is not held or none is pending ("no ``what``
    pending for you")."""
    mine = [q for q in questions if q.decision == "pending"]
    if gen.state is not GenerationState.HELD or not mine:
        raise Conflict(f"generation {gen.id} has no {what} pending for you (it is {gen.state.value})")
    now = utcnow()
    for q in mine:
        q.decision, q.decided_at = decided, now
        session.add(q)
    record(session, tag, actor_id=account.id, subject=gen.id, decision=answer, likenesses=[q.likeness_id for q in mine])
    return mine


def is_owner(session: Session, account: Account, gen: Generation) -> bool:
    """Whether the generation is ``account``'s: its requester, the owner of a likeness it names or shows, the
    owner of a verified likeness the scan asked to allow the requester (a near miss that said no), or the owner
    of a likeness it may show (asked to review it: :mod:`governance.generations.services.reviews`), or the guardian
    of a minor among the requester and those owners (:func:`governance.guardians.rules.is_guardian_of_any`)."""
    involved = involved_owner_ids(session, gen)
    if gen.requester_id == account.id or account.id in involved:
        return True
    if is_guardian_of_any(session, account.id, involved | {gen.requester_id}):
        return True  # a minor's guardian sees, and may take down, every video of the minor
    asked = select(GenerationReview.likeness_id).where(GenerationReview.generation_id == gen.id,
                                                      GenerationReview.owner_id == account.id)
    if session.exec(asked.limit(1)).first() is not None:
        return True
    linked = select(GenerationLikeness.likeness_id).where(GenerationLikeness.generation_id == gen.id)
    mine = session.exec(select(Likeness).where(Likeness.owner_id == account.id,
                                               Likeness.id.in_(linked))).all()  # type: ignore[attr-defined]
    return any(is_verified_claim(lk) for lk in mine)


def generation_for(session: Session, account: Account, generation_id: str, action: Action) -> Generation:
    """The generation, when ``account`` may do ``action`` on it (see :data:`governance.authz.TABLE`); one it
    may not see answers 404 exactly like an unknown id."""
    gen = session.get(Generation, generation_id)
    authz.require(action, account, owner=gen is not None and is_owner(session, account, gen), key=generation_id)
    if gen is None:  # a regulator or an admin may read anyone's: an unknown id is still the one 404
        raise authz.not_found(authz.Resource.GENERATION, generation_id)
    return gen


def visible_generation(session: Session, account: Account, generation_id: str) -> Generation:
    """The requester, owners of any likeness in it, admins and regulators may see a generation."""
    return generation_for(session, account, generation_id, Action.GENERATION_READ)


def list_for_requester(session: Session, account: Account, limit: int = 100) -> Sequence[Generation]:
    q = select(Generation).where(Generation.requester_id == account.id)
    return session.exec(q.order_by(Generation.created_at.desc()).limit(limit)).all()  # type: ignore[attr-defined]


#: Newest first; the id breaks ties between generations requested in the same microsecond.
NEWEST_FIRST = (SortKey(Generation.created_at, descending=True), SortKey(Generation.id, descending=True))


@dataclass(frozen=True)
class GenerationFilter:
    """``state``: one :class:`GenerationState` or None (all); ``since`` (inclusive) and ``until`` (exclusive):
    bounds on ``created_at``, timezone-aware, or None."""

    state: GenerationState | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, state: str | None, since: str | None, until: str | None) -> GenerationFilter:
        """From query-string text; BadRequest (400) naming the bad value. Times are ISO 8601 with a zone
        (``2026-11-29T00:00:00Z``) or a date (``2026-11-29``: midnight UTC)."""
        named = states_named(GenerationState, state, {None: None}, error=BadRequest)
        st = named[0] if named else None
        a, b = _instant("since", since), _instant("until", until)
        if a is not None and b is not None and b <= a:
            raise BadRequest(f"until ({until}) must be after since ({since})")
        return cls(st, a, b)


def _instant(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be an ISO 8601 date or time with a zone, e.g. 2026-11-29 or "
                           f"2026-11-29T08:00:00Z, got {raw!r}") from e
    if len(raw) == 10:  # a date: midnight UTC
        dt = dt.replace(tzinfo=UTC)
    if dt.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone (Z or +hh:mm), got {raw!r}")
    return dt.astimezone(UTC)


def list_generations(session: Session, account: Account, page: PageRequest,
                     filters: GenerationFilter = GenerationFilter()) -> Page[Generation]:
    """One page of the generations ``account`` may list, newest first: a regulator's are everyone's (the
    oversight the README promises: regulators may read any generation); anyone else's, those they requested."""
    q = select(Generation)
    if account.role is not Role.REGULATOR:
        q = q.where(Generation.requester_id == account.id)
    if filters.state is not None:
        q = q.where(Generation.state == filters.state)
    if filters.since is not None:
        q = q.where(Generation.created_at >= filters.since)
    if filters.until is not None:
        q = q.where(Generation.created_at < filters.until)
    return paginate(session, q, NEWEST_FIRST, page)


def link_likenesses(session: Session, generation_id: str, likeness_ids: Sequence[str], *, named: bool = False,
                    found: bool = False) -> None:
    """Record that a generation involves these likenesses (named in the request and/or found by the scan)."""
    for lid in likeness_ids:
        link = session.get(GenerationLikeness, (generation_id, lid))
        if link is None:
            link = GenerationLikeness(generation_id=generation_id, likeness_id=lid)
        link.named = link.named or named
        link.found = link.found or found
        session.add(link)


def page_for_likeness_owner(session: Session, likeness: Likeness, page: PageRequest) -> Page[Generation]:
    """One page (newest first) of what :func:`uses_shown_to_owner` shows the likeness's owner."""
    q = (select(Generation).join(GenerationLikeness, GenerationLikeness.generation_id == Generation.id)  # type: ignore[arg-type]
         .where(GenerationLikeness.likeness_id == likeness.id))
    if not is_verified_claim(likeness):
        q = q.where(or_(Generation.requester_id == likeness.owner_id, GenerationLikeness.named))  # type: ignore[arg-type]
    return paginate(session, q, NEWEST_FIRST, page)


def list_for_likeness(session: Session, likeness_id: str, limit: int = 200) -> Sequence[Generation]:
    """Every generation that named the likeness or in which its face was found, drafts and blocked ones too."""
    q = (select(Generation).join(GenerationLikeness, GenerationLikeness.generation_id == Generation.id)  # type: ignore[arg-type]
         .where(GenerationLikeness.likeness_id == likeness_id)
         .order_by(Generation.created_at.desc()).limit(limit))  # type: ignore[attr-defined]
    return session.exec(q).all()


def uses_shown_to_owner(session: Session, likeness: Likeness, limit: int = 200) -> Sequence[Generation]:
    """What the owner's "every video that contains me" shows: :func:`list_for_likeness` for a verified claim
    (live, undisputed); for an unproven one (photo, disputed, pending review) only the owner's own requests
    and those that named it, never others' outputs in which the scan found the face."""
    gens = list_for_likeness(session, likeness.id, limit)
    if is_verified_claim(likeness):
        return gens
    return [g for g in gens if g.requester_id == likeness.owner_id or likeness.id in g.likeness_ids]


MAX_REASON = 500


def taken_down_by_notice(gen: Generation) -> bool:
    """True while ``gen`` is down on a takedown notice's decision alone (``taken_down_by`` is the notice's id): a
    takedown a counter-notice may reverse, so its file is kept. False when it is up, or down by anyone else (one
    of its owners, a guardian, an administrator, its remix lineage after a consent withdrawal): those takedowns
    are final, their files removed, and a notice's restore does not undo them."""
    return gen.taken_down_at is not None and (gen.taken_down_by or "").startswith(NOTICE_ID_PREFIX)


@dataclass(frozen=True)
class Takedown:
    """A takedown :func:`take_down` just made: by one of the generation's owners (``by_owner``) or by an admin
    who is not (then ``reason`` is given), and the words a takedown notice closed by it is told (``by``)."""

    by_owner: bool
    reason: str | None
    by: str


def take_down(session: Session, actor: Account, gen: Generation, reason: Any = None) -> Takedown | None:
    """Mark a generation taken down (audited, logged). Returns None when it already was by anyone but a takedown
    notice; a video down on a notice alone (:func:`taken_down_by_notice`) is taken down again, finally: the
    takedown is this actor's from now on, and the notice's restore leaves it down.

    Its requester and the owners of the likenesses in it may, as may an admin; an admin who is neither
    must give a ``reason``, which is audited and sent (:func:`tell_takedown`) to the requester and every owner
    involved. What follows a takedown in the other domains (the notices about it close, the remix lineage is
    withdrawn) is :func:`governance.workflows.takedowns.take_down`'s, which every caller goes through."""
    owner = is_owner(session, actor, gen)
    authz.require(Action.GENERATION_TAKEDOWN, actor, owner=owner, key=gen.id)
    if reason is not None and (not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON
                               or not reason.isprintable()):
        raise InvalidInput(f"reason must be one line of 1-{MAX_REASON} printable characters, got {reason!r}")
    reason = reason.strip() if reason else None
    if not owner and reason is None:
        raise InvalidInput("an admin's takedown needs a reason (JSON body {'reason': ...} or ?reason=...): it is "
                           "audited and sent to the requester and the people in the video")
    if gen.taken_down_at is not None and not taken_down_by_notice(gen):
        return None
    # down on a takedown notice alone (a counter-notice may restore it): this takedown is final and stands on its
    # own, so the notice's restore no longer brings the video back (the notice's takedown entry stays logged)
    if gen.taken_down_at is None:
        gen.taken_down_at = utcnow()
    gen.taken_down_by = actor.id
    gen.updated_at = utcnow()
    if not gen.state.terminal:
        gen.reasons = [*gen.reasons, f"taken down by {actor.name} before release"]
        gen.state = GenerationState.BLOCKED
    session.add(gen)
    record(session, Tag.GENERATION_TAKEDOWN, actor_id=actor.id, subject=gen.id, reason=reason,
           acting_as="owner" if owner else actor.role.value)
    translog.append_event(session, gen.id, "takedown", "owner" if owner else "admin")  # a release only
    return Takedown(by_owner=owner, reason=reason, by="one of its owners" if owner else f"an {actor.role.value}")


def faces_owned_by(session: Session, account: Account, gen: Generation) -> set[str]:
    """The likenesses ``gen`` named or showed that ``account`` owns (a likeness owner's takedown withdraws them
    from the remixes made of it)."""
    return {lid for lid in gen.likeness_ids + [f["likeness"] for f in gen.faces_found if f.get("likeness")]
            if (lk := session.get(Likeness, lid)) is not None and lk.owner_id == account.id}


def tell_takedown(session: Session, actor: Account, gen: Generation, done: Takedown) -> None:
    """An admin's takedown (not an owner's) is told, with its reason, to the requester and every owner involved
    but the admin."""
    if done.by_owner:
        return
    for account_id in sorted(({gen.requester_id} | involved_owner_ids(session, gen)) - {actor.id}):
        notify(session, account_id, "generation:takedown",
               f"generation {gen.id} was taken down by an administrator: {done.reason}", generation_id=gen.id)


@dataclass(frozen=True)
class Visibility:
    """What a reader may learn of a generation: ``likenesses``, the likeness ids they may know (None: all of
    them, for regulators and admins), and whether they may see grant ids (``grants``)."""

    likenesses: frozenset[str] | None
    grants: bool = True


def visibility_for(session: Session, reader: Account, gen: Generation) -> Visibility:
    """Regulators and admins see every id; the requester the likenesses they named and their own; a likeness
    owner only their own likenesses in it, and no grant ids."""
    if reader.role in (Role.REGULATOR, Role.ADMIN):
        return Visibility(None)
    linked = select(GenerationLikeness.likeness_id).where(GenerationLikeness.generation_id == gen.id)
    involved = set(gen.likeness_ids) | {f["likeness"] for f in gen.faces_found if f.get("likeness")}
    own = set(session.exec(select(Likeness.id).where(
        Likeness.owner_id == reader.id,
        Likeness.id.in_(list(involved)) | Likeness.id.in_(linked))).all())  # type: ignore[attr-defined]
    if reader.id == gen.requester_id:
        return Visibility(frozenset(own | set(gen.likeness_ids)))
    return Visibility(frozenset(own), grants=False)

