"""Disputes: claims on a face an admin decides.

Opened at enrollment or live verification (:mod:`governance.likenesses.services.enrollment`):

- ``double_claim``: the face matches another account's likeness. The new claim is ``disputed`` (protective
  only) until resolved; the earlier one is not affected. Outcomes: ``holder`` (the earlier claim stands; the
  new likeness is deleted), ``claimant`` (the new claim is the person's; the earlier likeness is deleted; a
  photo likeness never displaces a live-verified one), ``distinct`` (two people who look alike; both stay).
- ``public_figure``: the face matches a protected public figure; ``pending_review``. Outcomes: ``approve``
  (the likeness is the figure's: it may consent for them), ``reject`` (deleted).
- ``identity``: the operator's identity proof rejected the person or could not answer; ``pending_review``.
  Outcomes: ``approve``, ``reject`` (deleted).

Both owners are notified when a dispute opens and when it is resolved; neither is told who the other is.
Every resolution needs a reason and is audited (``dispute:resolve``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.columns import utcnow
from governance.db import get_or_404
from governance.errors import Conflict, Forbidden, InvalidInput
from governance.likenesses.models import Dispute, DisputeKind, DisputeState, Figure, Likeness
from governance.likenesses.services.likenesses import FollowWithdrawal, delete_by_resolution, refresh_status
from governance.pagination import Page, PageRequest, SortKey, in_states, paginate, states_named
from policies.consent import Verification

OUTCOMES: dict[DisputeKind, tuple[str, ...]] = {
    DisputeKind.DOUBLE_CLAIM: ("holder", "claimant", "distinct"),
    DisputeKind.PUBLIC_FIGURE: ("approve", "reject"),
    DisputeKind.IDENTITY: ("approve", "reject"),
}
MAX_REASON = 1000


@dataclass(frozen=True)
class FaceMatch:
    """An enrolled face the new template matched: a likeness of another account, or a figure."""

    key: str  # likeness or figure id
    distance: float
    owner_id: str | None = None  # None for a figure


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def open_disputes(session: Session, likeness: Likeness, matches: Sequence[FaceMatch]) -> list[Dispute]:
    """Open a dispute for each matched likeness of another account and each matched figure, unless that pair
    was ever disputed before; set the statuses and notify the owners. Returns the disputes opened now.

    The claim enrolled later is always the claimant: usually ``likeness``, just enrolled. When ``likeness``
    is being upgraded and the match was enrolled after it without a dispute (both predate the search, as
    migrated likenesses do), the match is the claimant, so an unproven later claim cannot block the earlier
    one's outputs."""
    opened = []
    for m in matches:
        if m.owner_id is None:
            d = _figure_review(session, likeness, m)
        else:
            other = session.get(Likeness, m.key)
            if other is None:
                continue
            later, earlier = ((other, likeness) if _aware(other.created_at) > _aware(likeness.created_at)
                              else (likeness, other))
            d = _double_claim(session, later, earlier, m.distance)
        if d is not None:
            opened.append(d)
    refresh_status(session, likeness)
    return opened


def _ever_disputed(session: Session, likeness_id: str, key: str) -> bool:
    q = select(Dispute.id).where(Dispute.likeness_id == likeness_id,
                                 (Dispute.holder_likeness_id == key) | (Dispute.figure_id == key))
    return session.exec(q).first() is not None


def _figure_review(session: Session, likeness: Likeness, m: FaceMatch) -> Dispute | None:
    if _ever_disputed(session, likeness.id, m.key):
        return None
    figure = session.get(Figure, m.key)
    name = figure.name if figure else m.key
    d = Dispute(kind=DisputeKind.PUBLIC_FIGURE, likeness_id=likeness.id, claimant_id=likeness.owner_id,
                figure_id=m.key, distance=round(m.distance, 4),
                detail=f"the face matches the protected public figure {name!r} (distance {m.distance:.2f})")
    session.add(d)
    notify(session, likeness.owner_id, "dispute:open",
           f"Your likeness {likeness.id} matches a protected public figure; it only protects the face until an "
           f"admin reviews it (review {d.id}).", likeness_id=likeness.id)
    record(session, Tag.DISPUTE_OPEN, actor_id=None, subject=d.id, kind=d.kind.value, likeness=likeness.id,
           figure=m.key, distance=d.distance)
    return d


def _double_claim(session: Session, later: Likeness, earlier: Likeness, distance: float) -> Dispute | None:
    if _ever_disputed(session, later.id, earlier.id) or _ever_disputed(session, earlier.id, later.id):
        return None
    d = Dispute(kind=DisputeKind.DOUBLE_CLAIM, likeness_id=later.id, claimant_id=later.owner_id,
                holder_likeness_id=earlier.id, holder_id=earlier.owner_id, distance=round(distance, 4),
                detail=f"the face matches likeness {earlier.id}, enrolled earlier by another account "
                       f"(distance {distance:.2f})")
    session.add(d)
    notify(session, later.owner_id, "dispute:open",
           f"Your likeness {later.id} matches a face another account enrolled first; it only protects the face "
           f"until an admin resolves dispute {d.id}.", likeness_id=later.id)
    notify(session, earlier.owner_id, "dispute:open",
           f"Another account enrolled a face matching your likeness {earlier.id}. Your likeness is not affected; "
           f"an admin will resolve dispute {d.id}.", likeness_id=earlier.id)
    record(session, Tag.DISPUTE_OPEN, actor_id=None, subject=d.id, kind=d.kind.value, likeness=later.id,
           holder_likeness=earlier.id, distance=d.distance)
    refresh_status(session, later)
    return d


def open_identity_review(session: Session, likeness: Likeness, detail: str) -> Dispute:
    d = Dispute(kind=DisputeKind.IDENTITY, likeness_id=likeness.id, claimant_id=likeness.owner_id, detail=detail)
    session.add(d)
    notify(session, likeness.owner_id, "dispute:open",
           f"The identity check of your likeness {likeness.id} did not pass; it only protects the face until an "
           f"admin reviews it (review {d.id}).", likeness_id=likeness.id)
    record(session, Tag.DISPUTE_OPEN, actor_id=None, subject=d.id, kind=d.kind.value, likeness=likeness.id,
           detail=detail)
    refresh_status(session, likeness)
    return d


def list_disputes(session: Session, state: str | None = "open", limit: int = 500) -> Sequence[Dispute]:
    return session.exec(_disputes_in(state).order_by(Dispute.created_at).limit(limit)).all()  # type: ignore[arg-type]


def page_disputes(session: Session, state: str | None, page: PageRequest) -> Page[Dispute]:
    """One page of the disputes in ``state`` (``open``, ``resolved``, ``all`` or None: all), oldest first;
    InvalidInput (422) for another state."""
    return paginate(session, _disputes_in(state), (SortKey(Dispute.created_at), SortKey(Dispute.id)), page)


def _disputes_in(state: str | None) -> Any:
    return in_states(select(Dispute), Dispute.state, states_named(DisputeState, state, {None: None, "all": None}))


def get_dispute(session: Session, dispute_id: str) -> Dispute:
    return get_or_404(session, Dispute, dispute_id, "dispute")


def for_likeness(session: Session, likeness_id: str) -> Sequence[Dispute]:
    """The disputes on a likeness's claim (as the claimant), newest first."""
    q = select(Dispute).where(Dispute.likeness_id == likeness_id)
    return session.exec(q.order_by(Dispute.created_at.desc())).all()  # type: ignore[attr-defined]


def resolve(session: Session, admin: Account, dispute: Dispute, outcome: Any, reason: Any, *,
            follow: FollowWithdrawal) -> Dispute:
    """Decide an open dispute with one of :data:`OUTCOMES` for its kind and a reason (1-1000 characters). A
    likeness the outcome deletes is withdrawn from remixes first (``follow``:
    :class:`governance.likenesses.services.likenesses.FollowWithdrawal`).

    Raises :class:`InvalidInput` for an unknown outcome or a missing reason, :class:`Forbidden` when the admin
    owns one of the likenesses (roles never stand in for the person), :class:`Conflict` when the dispute is
    already resolved or the outcome would let a photo likeness displace a live-verified one."""
    allowed = OUTCOMES[dispute.kind]
    if outcome not in allowed:
        raise InvalidInput(f"a {dispute.kind.value} dispute is resolved with one of {list(allowed)}, got {outcome!r}")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidInput(f"say why, in a reason of 1-{MAX_REASON} characters")
    if admin.id in (dispute.claimant_id, dispute.holder_id):
        raise Forbidden(f"dispute {dispute.id} is about a likeness of yours; another admin must resolve it")
    if dispute.state is DisputeState.RESOLVED:
        raise Conflict(f"dispute {dispute.id} was already resolved ({dispute.outcome})", outcome=dispute.outcome)
    claimant = session.get(Likeness, dispute.likeness_id)
    holder = session.get(Likeness, dispute.holder_likeness_id) if dispute.holder_likeness_id else None
    if outcome == "claimant" and holder is not None and claimant is not None \
            and holder.verification is Verification.LIVE and claimant.verification is not Verification.LIVE:
        raise Conflict(f"likeness {claimant.id} was enrolled from photos and {holder.id} was verified live: a photo "
                       "likeness never displaces a live-verified one (the claimant must verify live first)",
                       reason="photo_cannot_displace_live")
    dispute.state, dispute.outcome, dispute.reason = DisputeState.RESOLVED, outcome, reason.strip()
    dispute.resolved_by, dispute.resolved_at = admin.id, utcnow()
    session.add(dispute)
    record(session, Tag.DISPUTE_RESOLVE, actor_id=admin.id, subject=dispute.id, kind=dispute.kind.value,
           outcome=outcome, reason=dispute.reason, likeness=dispute.likeness_id,
           holder_likeness=dispute.holder_likeness_id, figure=dispute.figure_id)
    said = f"Dispute {dispute.id} was resolved ({outcome}): {dispute.reason}"
    if outcome in ("holder", "reject"):
        if claimant is not None:
            notify(session, claimant.owner_id, "dispute:resolve", f"{said}. Your likeness {claimant.id} was deleted.")
            delete_by_resolution(session, admin, claimant, dispute.id, follow=follow)
    elif outcome == "claimant":
        if holder is not None:
            notify(session, holder.owner_id, "dispute:resolve", f"{said}. Your likeness {holder.id} was deleted.")
            delete_by_resolution(session, admin, holder, dispute.id, follow=follow)
    elif outcome == "approve" and dispute.kind is DisputeKind.PUBLIC_FIGURE and claimant is not None:
        claimant.figure_id = dispute.figure_id
        session.add(claimant)
    if claimant is not None and session.get(Likeness, claimant.id) is not None:
        refresh_status(session, claimant)
        notify(session, claimant.owner_id, "dispute:resolve",
               f"{said}. Your likeness {claimant.id} is now {claimant.status.value}.", likeness_id=claimant.id)
    if holder is not None and outcome != "claimant":
        notify(session, holder.owner_id, "dispute:resolve", f"{said}. Your likeness {holder.id} is not affected.",
               likeness_id=holder.id)
    return dispute


@dataclass(frozen=True)
class Parties:
    """Who a dispute is between, as an admin is shown them: the claimant's and the earlier holder's accounts
    (None once deleted, or for a kind without a holder) and the figure (None once removed from the gallery)."""

    claimant: Account | None
    holder: Account | None
    figure: Figure | None


def parties(session: Session, d: Dispute) -> Parties:
    def account(account_id: str | None) -> Account | None:
        return session.get(Account, account_id) if account_id else None

    figure = session.get(Figure, d.figure_id) if d.figure_id else None
    return Parties(account(d.claimant_id), account(d.holder_id), figure)
