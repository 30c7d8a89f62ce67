"""What a withdrawal does to remix lineage (no Flask): a generation taken down, or a likeness's consent withdrawn,
follows the :class:`GenerationEdge` rows down to the descendants. It builds on the generations' services (it blocks
and tells as they do); the lineage itself is read in :mod:`governance.remix.lineage`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.columns import utcnow
from governance.generations.models import NOTICE_ID_PREFIX, Generation, GenerationState
from governance.generations.services.generations import block, involved_owner_ids, taken_down_by_notice
from governance.log.services import translog
from governance.notices.timeline import close_on_takedown
from governance.remix.lineage import ancestors, descendants, shown
from governance.remix.models import GenerationEdge

# --- withdrawal follows the graph --------------------------------------------------------------------------


def withdraw(session: Session, actor: Account | None, origin: Generation, *, reason: str,
             faces: set[str]) -> list[str]:
    """Follow a withdrawal of ``origin`` (taken down, or ``faces`` withdrawn from it) down its descendants:
    unreleased ones are blocked, released ones that show one of ``faces`` are taken down, the other released
    ones are marked "an ancestor was withdrawn". Each step is audited and the people involved are told.
    A descendant down on a takedown notice alone (:func:`taken_down_by_notice`: a counter-notice may restore it)
    is treated as if it were up: it is marked, or taken down finally (the notice's restore then leaves it down).
    Returns the ids of the generations taken down here (their files are the caller's to remove)."""
    taken: list[str] = []
    now = utcnow()
    why = f"an ancestor ({origin.id}) was withdrawn: {reason}"
    for gid in descendants(session, origin.id):
        gen = session.get(Generation, gid)
        if gen is None or (gen.taken_down_at is not None and not taken_down_by_notice(gen)):
            continue
        owners = involved_owner_ids(session, gen)
        if not gen.state.terminal:
            block(session, gen, [why], stage="lineage", notify_owners=owners)
            notify(session, gen.requester_id, "generation:lineage", f"generation {gen.id} was blocked: {why}",
                   generation_id=gen.id)
            record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id if actor else None, subject=gen.id,
                   ancestor=origin.id, outcome="blocked", reason=reason)
        elif gen.state is GenerationState.RELEASED and shown(gen) & faces:
            gen.taken_down_at, gen.taken_down_by = gen.taken_down_at or now, actor.id if actor else None
            gen.updated_at = now
            session.add(gen)
            record(session, Tag.GENERATION_TAKEDOWN, actor_id=actor.id if actor else None, subject=gen.id,
                   reason=why, acting_as="lineage")
            translog.append_event(session, gen.id, "takedown", "lineage", origin_generation_id=origin.id)
            _close_notices(session, gen)
            record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id if actor else None, subject=gen.id,
                   ancestor=origin.id, outcome="taken_down", reason=reason)
            for account_id in sorted({gen.requester_id} | owners):
                notify(session, account_id, "generation:takedown",
                       f"generation {gen.id} was taken down: it shows a face withdrawn from {why}",
                       generation_id=gen.id)
            taken.append(gen.id)
        elif gen.state is GenerationState.RELEASED:
            newly = False
            for edge in session.exec(select(GenerationEdge).where(GenerationEdge.child_id == gen.id)).all():
                if edge.withdrawn_at is None:
                    edge.withdrawn_at, edge.withdrawn_reason = now, why
                    session.add(edge)
                    newly = True
            record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id if actor else None, subject=gen.id,
                   ancestor=origin.id, outcome="marked", reason=reason)
            if newly:  # the log says it once: verification reports the first withdrawal up the lineage
                translog.append_event(session, gen.id, "ancestor_withdrawn", "lineage",
                                      origin_generation_id=origin.id)
            for account_id in sorted({gen.requester_id} | owners):
                notify(session, account_id, "generation:lineage", f"generation {gen.id}: {why}",
                       generation_id=gen.id)
    return taken


def withdraw_likeness(session: Session, actor: Account, likeness_id: str, grantee_id: str | None,
                      reason: str, *, owner_id: str) -> list[str]:
    """A likeness withdrawn (a grant to ``grantee_id`` revoked; ``None``: closed to everyone but its owner
    ``owner_id``): every released remix that shows it and was requested under the withdrawn consent is taken
    down, and the withdrawal follows each one's descendants. In-flight remixes are blocked by the gate's own
    consent checks at seal and release (the lineage's likenesses are part of every remix's request).
    Returns the ids taken down."""
    remixes = session.exec(select(Generation).where(
        Generation.state == GenerationState.RELEASED,
        Generation.id.in_(select(GenerationEdge.child_id)))).all()  # type: ignore[attr-defined]
    taken: list[str] = []
    now = utcnow()
    for gen in remixes:
        if likeness_id not in shown(gen) or gen.requester_id == owner_id or \
                (grantee_id is not None and gen.requester_id != grantee_id):
            continue
        # already down finally (before, or through an ancestor met earlier in this loop); one down on a takedown
        # notice alone is taken down again, finally: the withdrawn consent is not the notice's to restore
        if gen.taken_down_at is not None and not taken_down_by_notice(gen):
            continue
        gen.taken_down_at, gen.taken_down_by, gen.updated_at = gen.taken_down_at or now, actor.id, now
        session.add(gen)
        record(session, Tag.GENERATION_TAKEDOWN, actor_id=actor.id, subject=gen.id, reason=reason,
               acting_as="lineage")
        translog.append_event(session, gen.id, "takedown", "likeness_withdrawn")
        _close_notices(session, gen)
        notify(session, gen.requester_id, "generation:takedown",
               f"generation {gen.id} was taken down: a likeness it shows was withdrawn ({reason})",
               generation_id=gen.id)
        taken.append(gen.id)
        taken += withdraw(session, actor, gen, reason=reason, faces={likeness_id})
    return taken


def sweep_withdrawn_files(session: Session, videos_dir: Path) -> int:
    """Remove the stored videos of remixes taken down finally (after the commit that took them down: a
    rolled-back withdrawal removes nothing): by a withdrawal, one of their owners or an administrator. A remix
    down on a takedown notice alone (:func:`taken_down_by_notice`) keeps its file, as every video a notice took
    down does: a counter-notice may restore it. Returns how many files were removed."""
    rows = session.exec(select(Generation.id).where(
        Generation.taken_down_at != None,  # noqa: E711
        sa.or_(col(Generation.taken_down_by).is_(None),
               sa.not_(col(Generation.taken_down_by).startswith(NOTICE_ID_PREFIX, autoescape=True))),
        Generation.id.in_(select(GenerationEdge.child_id)))).all()  # type: ignore[attr-defined]
    removed = 0
    for gid in rows:
        path = videos_dir / f"{gid}.mp4"
        if path.exists():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def restore(session: Session, actor: Account, origin: Generation) -> list[str]:
    """``origin`` was just restored (a takedown notice's takedown reversed after a counter-notice): the marks its
    takedown left down its lineage are lifted where nothing else up the lineage is still withdrawn. For each
    descendant marked "an ancestor was withdrawn" none of whose ancestors is still taken down, the marks
    (:class:`GenerationEdge` ``withdrawn_at``) are cleared, audited (``outcome: restored``), and, when it is
    released and up, a ``restore`` entry (cause ``lineage``, ``origin``'s release as the origin) is logged and
    its requester told. A descendant taken down (for a withdrawn consent, by its owner, on its own notice)
    stays down, and one the withdrawal blocked before release stays blocked (a block is final). Returns the ids
    whose marks were cleared."""
    cleared: list[str] = []
    for gid in descendants(session, origin.id):
        edges = session.exec(select(GenerationEdge).where(
            GenerationEdge.child_id == gid, GenerationEdge.withdrawn_at != None)).all()  # noqa: E711
        gen = session.get(Generation, gid)
        if gen is None or not edges or any(
                (up := session.get(Generation, a)) is not None and up.taken_down_at is not None
                for a in ancestors(session, gid)):
            continue
        for edge in edges:
            edge.withdrawn_at, edge.withdrawn_reason = None, None
            session.add(edge)
        record(session, Tag.GENERATION_LINEAGE, actor_id=actor.id, subject=gid, ancestor=origin.id,
               outcome="restored")
        if gen.state is GenerationState.RELEASED and gen.taken_down_at is None:
            translog.append_event(session, gid, "restore", "lineage", origin_generation_id=origin.id)
            notify(session, gen.requester_id, "generation:lineage",
                   f"generation {gid}: its ancestor {origin.id} was restored; nothing up its lineage is withdrawn "
                   "now", generation_id=gid)
        cleared.append(gid)
    return cleared


def _close_notices(session: Session, gen: Generation) -> None:
    """Open takedown notices about a video taken down through its lineage say so, and close."""
    close_on_takedown(session, gen, "its remix lineage (an ancestor or a face in it was withdrawn)")
