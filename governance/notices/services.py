"""Takedown notices from anyone (notice-and-takedown): filing, the filer's own face, the review queue, decisions
and counter-notices. No Flask here; services never commit.

The way through (``docs/notices.md``):

1. Anyone files a notice about a video released here: contact details, on whose behalf (:class:`OnBehalfOf`), a
   statement made in good faith, and the video (its generation id, its content id, or the file itself, resolved
   by its C2PA manifest, its watermark or its fingerprint and never kept). A video not released here is refused
   (422) and nothing is stored. The filer gets a private link (an unguessable token, stored hashed); the video's
   requester is told.
2. Filing for themselves, the filer may prove their face with the same live challenge as enrollment
   (:mod:`governance.likenesses.services.enrollment`). If that face is in the video, the video is taken down at
   once and the face becomes a protective likeness (``photo``: it consents to nothing and blocks every output
   showing it, so the video stays down: a new generation showing the face is blocked, and a re-upload verifies as
   taken down).
3. Otherwise the notice waits in the review queue (admins decide, regulators read) with the facts gathered: the
   scan's results (how many faces, never whose), the labels, whether and when it was released here and its log
   entry.
4. The requester may file a counter-notice within :data:`COUNTER_DAYS` days of a takedown: the notice goes back to
   the queue, where a reviewer restores the video or keeps it down.

Every step is audited and written on the notice's timeline, which the filer reads by the private link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from governance.accounts.models import Account, Role
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.errors import Conflict, InvalidInput, NotFound
from governance.generations.models import Generation
from governance.likenesses.models import Challenge
from governance.log.services import translog
from governance.notices.deadlines import deadline_view
from governance.notices.models import Notice, NoticeState, OnBehalfOf
from governance.notices.timeline import add_event, close_on_takedown
from governance.pagination import Page, PageRequest, SortKey, in_states, paginate, states_named
from policies.consent import Verification

if TYPE_CHECKING:
    from detectors.faces import FaceBackend

#: The requester may answer a takedown with a counter-notice for this many days (the US DMCA's counter-notice
#: window is 10-14 business days, 17 U.S.C. 512(g)(2)(C); this service keeps the notice open for 14 days).
COUNTER_DAYS = 14
MAX_CONTACT = 200
MAX_STATEMENT = 2000
MIN_STATEMENT = 10
OUTCOMES = {NoticeState.OPEN: ("take_down", "reject"), NoticeState.COUNTERED: ("restore", "keep_down")}
_NOT_OURS = ("no video released here matches it: a notice is about a video this service released (send its "
             "generation id, its content id, or the file)")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _text(value: Any, name: str, lo: int, hi: int, *, lines: bool = False) -> str:
    if not isinstance(value, str) or not lo <= len(value.strip()) <= hi or \
            any(not (c.isprintable() or (lines and c == "\n")) for c in value):
        raise InvalidInput(f"{name} must be {'' if lines else 'one line of '}{lo}-{hi} printable characters")
    return value.strip()


@dataclass(frozen=True)
class Filing:
    """A notice as filed, checked: ``video`` is ``("generation_id" | "content_id", value)``, or ``None`` when
    the file itself is uploaded (the view resolves it)."""

    contact: str
    on_behalf_of: OnBehalfOf
    statement: str
    video: tuple[str, str] | None

    @classmethod
    def parse(cls, body: Mapping[str, Any], *, uploaded: bool, form: bool = False) -> Filing:
        """Raises :class:`InvalidInput` (422) naming the first field that is missing or wrong. ``good_faith`` is
        the JSON boolean ``true`` (``1`` or ``"true"`` are refused), or the text ``true`` in a multipart form
        (``form``), whose fields are all text."""
        contact = _text(body.get("contact"), "contact (an e-mail address or a phone number to reach you)", 3,
                        MAX_CONTACT)
        try:
            behalf = OnBehalfOf(str(body.get("on_behalf_of")))
        except ValueError as e:
            raise InvalidInput(f"on_behalf_of must be one of {[b.value for b in OnBehalfOf]}, "
                               f"got {body.get('on_behalf_of')!r}") from e
        good_faith = body.get("good_faith")
        if not (good_faith == "true" if form else good_faith is True):
            raise InvalidInput("good_faith must be true: you state in good faith that the video shows the person "
                               "you file for, without their consent")
        statement = _text(body.get("statement"), "statement", MIN_STATEMENT, MAX_STATEMENT, lines=True)
        named = [(k, body[k]) for k in ("generation_id", "content_id") if body.get(k) not in (None, "")]
        if len(named) + int(uploaded) != 1:
            raise InvalidInput("name the video exactly one way: generation_id, content_id, or the file in 'media'")
        video = None
        if named:
            key, value = named[0]
            video = (key, _text(value, key, 1, 64))
        return cls(contact, behalf, statement, video)


def resolve_named(session: Session, key: str, value: str) -> Generation:
    """The released generation a ``generation_id`` or ``content_id`` names; anything else (unknown, never
    released) is refused alike (422), so a notice tells nobody which drafts exist."""
    if key == "generation_id":
        gen = session.get(Generation, value)
    else:
        gen = session.exec(select(Generation).where(Generation.content_id == value.lower())).first()
    if gen is None or gen.released_at is None:
        raise InvalidInput(f"{key} {value!r}: {_NOT_OURS}")
    return require_up(gen)


def require_up(gen: Generation) -> Generation:
    """409 when the video is already taken down (by a notice, its owner, a guardian or an admin): there is
    nothing left to take down, and a notice would only tell its requester again."""
    if gen.taken_down_at is not None:
        raise Conflict(f"generation {gen.id} is already taken down: nothing to file a notice about")
    return gen


def resolve_report(session: Session, report: Mapping[str, Any]) -> Generation:
    """The released generation a verification report (:func:`governance.verification.services.verify_bytes`)
    found the upload to be; 422 when it is not one released here."""
    rec = report.get("record") or {}
    gen = session.get(Generation, rec.get("generation_id")) if rec.get("generation_id") else None
    if gen is None or gen.released_at is None:
        raise InvalidInput(f"the uploaded file: {_NOT_OURS}")
    return require_up(gen)


def facts_of(session: Session, gen: Generation, report: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a reviewer needs: whether and when it was released here, its log entry, the scan's results (how many
    face tracks matched an enrolled likeness; never whose), its labels (for an upload, what the file still
    carries: C2PA state and watermark), whether it is already down."""
    entry = translog.find(session, gen.content_id) if gen.content_id else None
    facts: dict[str, Any] = {
        "released_here": True, "released_at": iso(gen.released_at), "content_id": gen.content_id,
        "log_index": entry.index if entry is not None else None,
        "faces_matched": len({f.get("track") for f in gen.faces_found}),
        "likenesses_named": len(gen.likeness_ids), "taken_down_before": gen.taken_down_at is not None,
        "labels": {"visible_label": True, "watermark": "embedded at release", "c2pa": "signed at release"},
    }
    if report is not None:
        facts["labels"] = {"visible_label": "not checked in an upload",
                           "watermark": bool((report.get("watermark") or {}).get("found")),
                           "c2pa": (report.get("c2pa") or {}).get("state"),
                           "found_by": report.get("content_id_source")}
    return facts


def file(session: Session, filing: Filing, gen: Generation, source: str, facts: dict[str, Any]
         ) -> tuple[Notice, str]:
    """Store the notice (in the review queue), tell the video's requester, audit. Returns it and the filer's
    private token (shown once)."""
    token = "ntc_" + secrets.token_urlsafe(32)
    notice = Notice(token_hash=_token_hash(token), contact=filing.contact, on_behalf_of=filing.on_behalf_of,
                    statement=filing.statement, generation_id=gen.id, source=source, facts=facts)
    add_event(notice, "filed", f"notice filed on behalf of {filing.on_behalf_of.value} about a video released here "
                            f"on {facts['released_at']}; it is in the review queue")
    if filing.on_behalf_of is OnBehalfOf.SELF:
        add_event(notice, "next", "to act on your own face, take the live challenge: POST /v1/notices/<id>/challenge, "
                               "then upload the video of it to POST /v1/notices/<id>/face")
    session.add(notice)
    record(session, Tag.NOTICE_FILE, actor_id=None, subject=notice.id, generation=gen.id, source=source,
           on_behalf_of=filing.on_behalf_of.value)
    notify(session, gen.requester_id, "generation:notice",
           f"a takedown notice ({notice.id}) was filed about your generation {gen.id}; it is under review, and "
           "you will be told of the decision", generation_id=gen.id)
    return notice, token


def by_token(session: Session, notice_id: str, token: Any, *, for_update: bool = False) -> Notice:
    """The notice its private link names; a wrong or missing token answers like an unknown id (404).
    ``for_update``: locked until the caller's commit (``SELECT ... FOR UPDATE`` where the database has it), for a
    change of its state or timeline that must not race another's (a reviewer, a worker's sweep)."""
    notice = session.get(Notice, notice_id, with_for_update=for_update, populate_existing=for_update)
    if notice is None or not isinstance(token, str) or \
            not hmac.compare_digest(notice.token_hash, _token_hash(token)):
        raise NotFound(f"no notice {notice_id!r}")
    return notice


def reviewed(session: Session, notice_id: str, *, for_update: bool = False) -> Notice:
    """The notice a reviewer reads (404 for an unknown id); ``for_update`` as :func:`by_token`."""
    notice = session.get(Notice, notice_id, with_for_update=for_update, populate_existing=for_update)
    if notice is None:
        raise NotFound(f"no notice {notice_id!r}")
    return notice


def _filer_account(session: Session, notice: Notice) -> Account:
    """The account made for the notice (it holds the challenge and the protective likeness); nobody holds its
    token, so nobody can sign in as it."""
    if notice.account_id is not None:
        account = session.get(Account, notice.account_id)
        assert account is not None
        return account
    account = Account(name=f"notice-{notice.id}", role=Role.CREATOR, daily_quota=0,
                      token_hash=_token_hash(secrets.token_urlsafe(32)))
    session.add(account)
    session.flush()
    notice.account_id = account.id
    session.add(notice)
    return account


def challenge(session: Session, notice: Notice, ttl_s: float) -> Challenge:
    """A live challenge for the filer of a notice on their own behalf, while it is open (409 otherwise)."""
    from governance.likenesses.services.enrollment import create_challenge

    if notice.on_behalf_of is not OnBehalfOf.SELF:
        raise Conflict("the live challenge proves your own face: this notice is filed on behalf of "
                       f"{notice.on_behalf_of.value}, so a reviewer decides it", reason="not_self")
    if notice.state is not NoticeState.OPEN:
        raise Conflict(f"notice {notice.id} is {notice.state.value}; nothing is left to prove",
                       reason="notice_decided")
    ch = create_challenge(session, _filer_account(session, notice), ttl_s)
    add_event(notice, "challenge", f"live challenge {ch.id} issued ({', '.join(ch.poses)}), valid until "
                                f"{iso(ch.expires_at)}")
    session.add(notice)
    return ch


def open_challenge(session: Session, notice: Notice, challenge_id: Any) -> Challenge:
    """The notice's challenge, answerable now (404 unknown or not this notice's; 409 used or expired). Checked
    before anything is decoded: a refusal here leaves everything as it was."""
    from governance.likenesses.services.enrollment import open_challenge as open_

    if notice.account_id is None or notice.state is not NoticeState.OPEN:
        raise Conflict(f"notice {notice.id} has no open challenge (ask for one: POST /v1/notices/{notice.id}/"
                       "challenge)", reason="no_challenge")
    account = session.get(Account, notice.account_id)
    assert account is not None
    return open_(session, account, challenge_id, utcnow())


@dataclass(frozen=True)
class FaceOutcome:
    found: bool
    distance: float | None
    refusal: InvalidInput | None = None


def prove_face(session: Session, notice: Notice, ch: Challenge, selfie: bytes, video_path: Path, *,
               backend: FaceBackend, threshold: float, mirrored: bool = False) -> FaceOutcome:
    """The filer's selfie video answers ``ch`` (the live check of enrollment); the challenge is spent whatever
    the outcome. Then the released video (``video_path``, the sealed file) is scanned for that face alone: found
    within ``threshold``, the video is taken down at once and the face stored as a protective likeness; not found,
    the notice stays in the queue with the finding. A failed live check returns its refusal (422) for the caller
    to raise after committing the spent challenge."""
    from detectors.enroll import Template
    from detectors.errors import DetectorError, LivenessError
    from detectors.index import LikenessIndex
    from detectors.scan import scan_path
    from governance.likenesses.services.enrollment import check_live, consume_challenge
    from governance.likenesses.services.likenesses import store

    try:
        live, summary = check_live(selfie, ch.poses, backend, mirrored=mirrored)
    except LivenessError as e:
        consume_challenge(session, ch, e.reason)
        add_event(notice, "face", f"the live check failed ({e.reason}); ask for a new challenge to try again")
        session.add(notice)
        record(session, Tag.NOTICE_FACE, actor_id=notice.account_id, subject=notice.id, challenge=ch.id,
               outcome=e.reason)
        return FaceOutcome(False, None, InvalidInput(f"the live check failed: {e.message}", reason=e.reason,
                                                     challenge=ch.id, challenge_spent=True))
    index = LikenessIndex(dim=live.dim)
    index.add("filer", live)
    try:
        result = scan_path(video_path, index, backend, threshold=threshold)
    except DetectorError as e:
        raise Conflict(f"the released video could not be scanned: {e}") from e
    matches = [m for m in result.matches if m.likeness_id == "filer"]
    distance = min((float(m.distance) for m in matches), default=None)
    found = bool(matches)
    notice.facts = {**notice.facts, "face_check": {"live": True, "found": found, "distance": distance,
                                                    "frames_scanned": result.frames_scanned,
                                                    "checked_at": iso(utcnow())}}
    account = _filer_account(session, notice)
    if not found:
        consume_challenge(session, ch, "verified")
        add_event(notice, "face", "your face, proven live, was not found in the video: the notice stays in the review "
                               "queue, where a person decides it")
        session.add(notice)
        record(session, Tag.NOTICE_FACE, actor_id=account.id, subject=notice.id, challenge=ch.id, found=False,
               live_check=summary)
        return FaceOutcome(False, None)
    likeness = store(session, account, Template.from_bytes(live.to_bytes()), verification=Verification.PHOTO,
                     display_name=None)
    consume_challenge(session, ch, "verified", likeness.id)
    notice.protective_likeness_id = likeness.id
    record(session, Tag.NOTICE_FACE, actor_id=account.id, subject=notice.id, challenge=ch.id, found=True,
           distance=distance, likeness=likeness.id, live_check=summary)
    gen = session.get(Generation, notice.generation_id)
    assert gen is not None
    _take_down(session, notice, gen, "face_match",
               f"the person filing notice {notice.id} proved live that the face in it is theirs")
    add_event(notice, "taken_down", "your face, proven live, was found in the video: it is taken down, and your face "
                                 "now blocks every new video showing it")
    return FaceOutcome(True, distance)


def _take_down(session: Session, notice: Notice, gen: Generation, decided_by: str, why: str) -> None:
    from governance.generations.services.generations import involved_owner_ids

    now = utcnow()
    if gen.taken_down_at is None:
        gen.taken_down_at, gen.taken_down_by, gen.updated_at = now, notice.id, now
        session.add(gen)
        record(session, Tag.GENERATION_TAKEDOWN, actor_id=None if decided_by == "face_match" else decided_by,
               subject=gen.id, reason=why, notice=notice.id)
        translog.append_event(session, gen.id, "takedown", "notice")
        # the takedown follows remix lineage: unreleased descendants are blocked, released ones are marked "an
        # ancestor was withdrawn" (no enrolled face is withdrawn here, so none is taken down for showing one)
        from governance.remix.services import withdraw

        withdraw(session, None, gen, reason=f"taken down on takedown notice {notice.id}", faces=set())
        close_on_takedown(session, gen, f"another takedown notice ({notice.id})", except_notice=notice.id)
    notice.state, notice.decided_by = NoticeState.TAKEN_DOWN, decided_by
    notice.counter_deadline = now + timedelta(days=COUNTER_DAYS)
    session.add(notice)
    record(session, Tag.NOTICE_DECIDE, actor_id=None if decided_by == "face_match" else decided_by,
           subject=notice.id, outcome="take_down", counter_deadline=iso(notice.counter_deadline))
    for account_id in sorted({gen.requester_id} | involved_owner_ids(session, gen)):
        notify(session, account_id, "generation:takedown",
               f"generation {gen.id} was taken down on takedown notice {notice.id}: {why}. Its requester may file a "
               f"counter-notice until {iso(notice.counter_deadline)} (on the page /notices/{notice.id}/counter, or "
               f"POST /v1/notices/{notice.id}/counter)",
               generation_id=gen.id)


def decide(session: Session, reviewer: Account, notice: Notice, outcome: Any, reason: Any) -> Notice:
    """A reviewer's decision on a notice in the queue: ``take_down`` or ``reject`` an open one; ``restore`` or
    ``keep_down`` a countered one. ``reason``: one line, audited and shown to the filer and the requester.
    Refused: another outcome (422), a notice not in the queue (409)."""
    allowed = OUTCOMES.get(notice.state)
    if allowed is None:
        raise Conflict(f"notice {notice.id} is {notice.state.value}: not in the review queue")
    if outcome not in allowed:
        raise InvalidInput(f"outcome must be one of {', '.join(allowed)} for a notice that is {notice.state.value}, "
                           f"got {outcome!r}")
    why = _text(reason, "reason", 3, 500)
    gen = session.get(Generation, notice.generation_id)
    assert gen is not None
    if outcome in ("take_down", "keep_down"):
        _take_down(session, notice, gen, reviewer.id, f"a reviewer decided: {why}")
        if outcome == "keep_down":
            notice.counter_deadline = None  # decided after the counter-notice: final here
        add_event(notice, "taken_down", f"a reviewer decided to take the video down: {why}")
        return notice
    now = utcnow()
    # a restore reverses this notice's takedown only: a video taken down since by one of its owners, a guardian,
    # an administrator or its remix lineage (taken_down_by is theirs now) stays down
    stays_down = outcome == "restore" and gen.taken_down_at is not None and gen.taken_down_by != notice.id
    if outcome == "restore" and gen.taken_down_by == notice.id:
        gen.taken_down_at, gen.taken_down_by, gen.updated_at = None, None, now
        session.add(gen)
        translog.append_event(session, gen.id, "restore", "notice")
        from governance.remix.services import restore as restore_lineage

        restore_lineage(session, reviewer, gen)  # the marks this takedown left on its remixes are lifted
    notice.state = NoticeState.RESTORED if outcome == "restore" else NoticeState.REJECTED
    notice.decided_by = reviewer.id
    session.add(notice)
    record(session, Tag.NOTICE_DECIDE, actor_id=reviewer.id, subject=notice.id, outcome=outcome, reason=why,
           **({"video_stays_down": True} if stays_down else {}))
    verb = "restored" if outcome == "restore" else "kept up"
    if stays_down:
        verb = ("restored as far as this notice goes, but it stays down: it was taken down again since, by "
                "someone this notice cannot overrule (one of its owners, a guardian, an administrator or its "
                "remix lineage)")
    add_event(notice, notice.state.value, f"a reviewer decided the video is {verb}: {why}")
    notify(session, gen.requester_id, "generation:notice:decided",
           f"takedown notice {notice.id} about your generation {gen.id} was decided: the video is {verb} ({why})",
           generation_id=gen.id)
    return notice


def requested_by(session: Session, account: Account, notice_id: str, *, for_update: bool = False) -> Notice:
    """The notice ``notice_id`` about a video ``account`` requested; anyone else (or an unknown id) is told 404
    alike. ``for_update`` as :func:`by_token`."""
    notice = session.get(Notice, notice_id, with_for_update=for_update, populate_existing=for_update)
    gen = session.get(Generation, notice.generation_id) if notice is not None else None
    if notice is None or gen is None or gen.requester_id != account.id:
        raise NotFound(f"no notice {notice_id!r}")
    return notice


def counter_open(notice: Notice) -> bool:
    """Whether the video's requester may still file a counter-notice on ``notice`` (taken down, deadline ahead)."""
    return notice.state is NoticeState.TAKEN_DOWN and notice.counter_deadline is not None and \
        _aware(notice.counter_deadline) > utcnow()


def counter(session: Session, account: Account, notice_id: str, body: Mapping[str, Any]) -> Notice:
    """The video's requester answers a takedown: ``{"statement", "good_faith": true}``, before the deadline.
    Someone else (or an unknown id) is told 404; a notice not taken down, or past its deadline, 409."""
    notice = requested_by(session, account, notice_id, for_update=True)
    if notice.state is not NoticeState.TAKEN_DOWN or notice.counter_deadline is None:
        raise Conflict(f"notice {notice.id} is {notice.state.value}: a counter-notice answers a takedown that is "
                       "still open to one")
    if _aware(notice.counter_deadline) <= utcnow():
        raise Conflict(f"the counter-notice deadline passed at {iso(notice.counter_deadline)}",
                       reason="deadline_passed")
    if body.get("good_faith") is not True:
        raise InvalidInput("good_faith must be true: you state in good faith that the video was taken down by "
                           "mistake or misidentification")
    notice.counter_statement = _text(body.get("statement"), "statement", MIN_STATEMENT, MAX_STATEMENT, lines=True)
    notice.state = NoticeState.COUNTERED
    session.add(notice)
    record(session, Tag.NOTICE_COUNTER, actor_id=account.id, subject=notice.id)
    add_event(notice, "countered", "the video's requester filed a counter-notice; the notice is back in the review "
                                "queue")
    return notice


def queue(session: Session, state: Any) -> list[Notice]:
    """Notices by state: ``queue`` (open and countered, the default), one :class:`NoticeState` value, or ``all``."""
    return list(session.exec(_in_state(state).order_by(Notice.created_at)).all())  # type: ignore[arg-type]


def page_queue(session: Session, state: Any, page: PageRequest) -> Page[Notice]:
    """One page of :func:`queue`, oldest first."""
    return paginate(session, _in_state(state), (SortKey(Notice.created_at), SortKey(Notice.id)), page)


_QUEUE = (NoticeState.OPEN, NoticeState.COUNTERED)


def _in_state(state: Any) -> Any:
    words = {None: _QUEUE, "": _QUEUE, "queue": _QUEUE, "all": None}
    return in_states(select(Notice), Notice.state, states_named(NoticeState, state, words))


def filer_view(notice: Notice) -> dict[str, Any]:
    """What the filer sees by the private link: the state, the timeline, the deadline; not the requester."""
    return {"id": notice.id, "state": notice.state.value, "on_behalf_of": notice.on_behalf_of.value,
            "generation": notice.generation_id, "events": list(notice.events),
            "counter_deadline": iso(notice.counter_deadline), "countered": notice.counter_statement is not None,
            **deadline_view(notice), "created_at": iso(notice.created_at)}


def reviewer_view(notice: Notice) -> dict[str, Any]:
    """What a reviewer sees: everything filed, the facts gathered and the timeline."""
    return {**filer_view(notice), "contact": notice.contact, "statement": notice.statement,
            "source": notice.source, "facts": dict(notice.facts), "counter_statement": notice.counter_statement,
            "decided_by": notice.decided_by, "protective_likeness": notice.protective_likeness_id,
            "updated_at": iso(notice.updated_at)}
