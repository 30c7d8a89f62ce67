"""A notice's timeline, and the notices a takedown by another route closes: the part of
:mod:`governance.notices.services` that the other takedown routes (an owner's or an admin's,
:mod:`governance.workflows.takedowns`; the remix lineage's, :mod:`governance.remix.services`) need. It reads and
writes notices alone, so that those routes need not import the notices' services, which build on theirs."""

from __future__ import annotations

from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.generations.models import Generation
from governance.notices.models import Notice, NoticeState

__all__ = ["add_event", "close_on_takedown"]


def add_event(notice: Notice, kind: str, text: str) -> None:
    """Append ``{"at", "kind", "text"}`` to the notice's timeline (which the filer reads by the private link)."""
    notice.events = [*notice.events, {"at": iso(utcnow()), "kind": kind, "text": text}]
    notice.updated_at = utcnow()


def close_on_takedown(session: Session, gen: Generation, by: str, *, except_notice: str | None = None) -> None:
    """``gen`` was just taken down by another route (``by``: who, in words: its owner, a guardian, an admin, its
    remix lineage, another notice): every notice about it still in the review queue is closed as
    ``taken_down`` with no counter-notice window (the notice did not take it down), and its timeline, which the
    filer reads by the private link, says so. Audited as a decision (``outcome: taken_down_elsewhere``)."""
    open_ = session.exec(select(Notice).where(
        Notice.generation_id == gen.id,
        Notice.state.in_([NoticeState.OPEN, NoticeState.COUNTERED]))  # type: ignore[attr-defined]
        .with_for_update().execution_options(populate_existing=True)).all()
    for notice in open_:
        if notice.id == except_notice:
            continue
        notice.state, notice.decided_by, notice.counter_deadline = NoticeState.TAKEN_DOWN, by, None
        add_event(notice, "taken_down", f"the video was taken down by {by}; this notice is closed")
        session.add(notice)
        record(session, Tag.NOTICE_DECIDE, actor_id=None, subject=notice.id, outcome="taken_down_elsewhere",
               by=by)
