"""Reviewers' decision deadline on takedown notices: a notice in the review queue (``open``, or ``countered``) is due
:data:`REVIEW_HOURS` hours after it entered the queue, and a notice still undecided then is escalated once per stay
in the queue: every administrator is told, the filer's timeline says so, it is audited (``notice:overdue``) and
counted (``consentgate_notices_escalated_total``). Reviewers see ``review_due`` and ``overdue`` on each notice.

The service does not decide for the reviewer: an overdue notice stays in the queue until a reviewer decides it
(a notice about the filer's own face that the live check confirmed is taken down at once and never waits).
The periodic sweep of every worker (:meth:`governance.generations.pipeline.Pipeline.periodic`) runs
:func:`escalate_overdue`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from governance.accounts.models import Account, Role
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.metrics import NOTICES_ESCALATED
from governance.notices.models import Notice, NoticeState

#: Hours a reviewer has to decide a queued notice. Source: the TAKE IT DOWN Act (US Pub. L. 119-12, 2025),
#: sec. 3(a)(3): a covered platform removes the depiction "as soon as possible, but not later than 48 hours after
#: receiving" a valid request.
REVIEW_HOURS = 48

#: The timeline events that put a notice (back) in the review queue, and the one that marks an escalation.
_QUEUED = ("filed", "countered")
_ESCALATED = "overdue"


def _at(event: dict[str, str]) -> datetime:
    return datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def queued_since(notice: Notice) -> datetime | None:
    """When ``notice`` last entered the review queue (UTC), or None when it is not in the queue."""
    if not notice.state.in_queue:
        return None
    entries = [e for e in notice.events if e.get("kind") in _QUEUED]
    if entries:
        return _at(entries[-1])
    created = notice.created_at
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def review_due(notice: Notice) -> datetime | None:
    """The reviewers' deadline (UTC) of a queued notice: :data:`REVIEW_HOURS` after :func:`queued_since`."""
    since = queued_since(notice)
    return None if since is None else since + timedelta(hours=REVIEW_HOURS)


def deadline_view(notice: Notice, now: datetime | None = None) -> dict[str, object]:
    """``{"review_due": ISO-8601 or None, "overdue": bool}`` for the filer's and the reviewers' views."""
    due = review_due(notice)
    return {"review_due": iso(due), "overdue": due is not None and due <= (now or utcnow())}


def _escalated_since(notice: Notice, since: datetime) -> bool:
    return any(e.get("kind") == _ESCALATED and _at(e) >= since for e in notice.events)


def escalate_overdue(session: Session, now: datetime | None = None) -> list[str]:
    """Escalate every queued notice past its deadline that was not escalated since it entered the queue: tell
    every administrator (``notice:overdue``), add an ``overdue`` event to its timeline, audit it. Returns their
    ids, oldest first. Each notice is locked (``FOR UPDATE``) and read again before it is changed, so two workers
    sweeping at once escalate it once and no event written meanwhile is lost. The caller commits."""
    now = now or utcnow()
    cutoff = now - timedelta(hours=REVIEW_HOURS)
    queued = session.exec(select(Notice).where(
        Notice.state.in_([NoticeState.OPEN, NoticeState.COUNTERED]),  # type: ignore[attr-defined]
        Notice.created_at <= cutoff).order_by(Notice.created_at)).all()  # type: ignore[arg-type]
    admins: list[str] | None = None
    done = []
    for notice in queued:
        # locked and read again: another worker's sweep, or a reviewer, may have changed it since the query
        session.refresh(notice, with_for_update=True)
        due, since = review_due(notice), queued_since(notice)
        if due is None or since is None or due > now or _escalated_since(notice, since):
            continue
        if admins is None:
            admins = list(session.exec(select(Account.id).where(Account.role == Role.ADMIN)).all())
        late = now - due
        notice.events = [*notice.events, {"at": iso(now), "kind": _ESCALATED,
                                          "text": f"no reviewer has decided within {REVIEW_HOURS} hours; every "
                                                  "administrator has been told"}]
        notice.updated_at = now
        session.add(notice)
        record(session, Tag.NOTICE_OVERDUE, actor_id=None, subject=notice.id, due=iso(due),
               late_s=round(late.total_seconds()))
        for admin_id in admins:
            notify(session, admin_id, "notice:overdue",
                   f"takedown notice {notice.id} has waited for a decision past its {REVIEW_HOURS}-hour deadline "
                   f"({iso(due)}): GET /v1/notices/{notice.id}")
        NOTICES_ESCALATED.inc()
        done.append(notice.id)
    return done
