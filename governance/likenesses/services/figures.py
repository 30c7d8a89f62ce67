"""Protected public figures: an operator-maintained gallery of names and faces.

A prompt naming a figure (the disguise-tolerant matching of :func:`policies.characters.mentions`), or an output
showing a figure's face, is denied unless a live-verified likeness an admin approved as that figure consents to
the requester (:func:`policies.consent.public_figure_permits`). Enrolling a face that matches a figure opens a
review (:mod:`governance.likenesses.services.disputes`). Figures' templates sit in the runtime's face index beside the
likenesses, under their ``fig_`` ids, so changes bump the same ``likenesses`` counter.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.columns import utcnow
from governance.db import bump, counter, get_or_404
from governance.errors import InvalidInput
from governance.likenesses.models import Dispute, DisputeState, Figure, Likeness
from governance.likenesses.services.likenesses import build_template, check_consent
from governance.pagination import Page, PageRequest, SortKey, paginate
from policies.characters import CharacterMatcher, CharacterPolicy, PolicyError
from policies.consent import public_figure_permits
from policies.decisions import Decision

if TYPE_CHECKING:
    from detectors.faces import FaceBackend
    from governance.likenesses.services.enrollment import IndexNow

MAX_ALIASES = 20


def _names(name: Any, aliases: Any) -> tuple[str, list[str]]:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a figure needs a name")
    aliases = [] if aliases is None else aliases
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases) or len(aliases) > MAX_ALIASES:
        raise InvalidInput(f"aliases must be a list of at most {MAX_ALIASES} names")
    aliases = [a.strip() for a in aliases if a.strip()]
    try:
        CharacterPolicy("fig", name.strip(), tuple(aliases))  # the same name rules as characters
    except PolicyError as e:
        raise InvalidInput(str(e)) from e
    return name.strip(), aliases


def add_figure(session: Session, actor_id: str | None, name: Any, aliases: Any, images: Sequence[np.ndarray],
               backend: FaceBackend, index_now: IndexNow, threshold: float) -> tuple[Figure, list[Dispute]]:
    """Add a figure from one or more photos of them (one face each, one person: :func:`build_template`).
    ``actor_id`` is the admin's account, or ``None`` from the command line. Likenesses already enrolled with
    the figure's face (the face index ``index_now`` returns, within ``threshold``) go to ``pending_review``:
    the reviews opened are returned with the figure. Raises :class:`InvalidInput`."""
    from governance.likenesses.services.disputes import FaceMatch, open_disputes
    from governance.likenesses.services.enrollment import claim_search

    name, aliases = _names(name, aliases)
    if not images:
        raise InvalidInput("send one or more photos of the figure")
    template = build_template(images, backend)
    matches = claim_search(session, index_now, template, threshold, owner_id="")
    # a figure's photo is never composited: its row keeps the embeddings only
    figure = Figure(name=name, aliases=aliases, backend=template.backend,
                    template=template.without_reference().to_bytes(),
                    embeddings=int(template.embeddings.shape[0]), created_by=actor_id)
    session.add(figure)
    session.flush()
    _changed(session)
    record(session, Tag.FIGURE_ADD, actor_id=actor_id, subject=figure.id, name=name, aliases=aliases,
           embeddings=figure.embeddings)
    reviews = []
    for m in matches:
        likeness = session.get(Likeness, m.key) if m.owner_id is not None else None
        if likeness is not None:
            reviews.extend(open_disputes(session, likeness, [FaceMatch(figure.id, m.distance)]))
    return figure, reviews


def list_figures(session: Session) -> Sequence[Figure]:
    return session.exec(select(Figure).order_by(Figure.name)).all()  # type: ignore[arg-type]


def page_figures(session: Session, page: PageRequest) -> Page[Figure]:
    """One page of the protected public figures, by name."""
    return paginate(session, select(Figure), (SortKey(Figure.name), SortKey(Figure.id)), page)


def get_figure(session: Session, figure_id: str) -> Figure:
    return get_or_404(session, Figure, figure_id, "figure")


def remove_figure(session: Session, actor_id: str | None, figure: Figure) -> None:
    """Remove a figure from the gallery: likenesses approved as it are approved as nobody any more, and its
    open reviews are withdrawn (a likeness with nothing else against it becomes active)."""
    from governance.likenesses.services.likenesses import refresh_status

    for lk in session.exec(select(Likeness).where(Likeness.figure_id == figure.id)).all():
        lk.figure_id = None
        session.add(lk)
    session.delete(figure)
    _changed(session)
    record(session, Tag.FIGURE_REMOVE, actor_id=actor_id, subject=figure.id, name=figure.name)
    q = select(Dispute).where(Dispute.figure_id == figure.id, Dispute.state == DisputeState.OPEN)
    for d in session.exec(q).all():
        d.state, d.outcome, d.resolved_at = DisputeState.RESOLVED, "withdrawn", utcnow()
        d.reason = f"the figure {figure.name!r} was removed from the gallery"
        d.resolved_by = actor_id
        session.add(d)
        record(session, Tag.DISPUTE_RESOLVE, actor_id=actor_id, subject=d.id, outcome="withdrawn", reason=d.reason)
        claimant = session.get(Likeness, d.likeness_id)
        if claimant is not None:
            refresh_status(session, claimant)


def named_in(session: Session, prompt: str) -> list[tuple[Figure, str]]:
    """Every figure the prompt names, with the words it used (the characters' matching: spelling, spacing,
    lookalike letters, leetspeak, typos; :class:`policies.characters.CharacterMatcher`). The figures' names are
    compiled once per change of the gallery (the ``figures`` counter) and shared by the process's requests; only
    the figures a prompt names are loaded."""
    found = [(m.character.character_id, m.found.form) for m in _matcher(session).mentions(prompt)]
    out = []
    for figure_id, said in found:
        figure = session.get(Figure, figure_id)
        if figure is not None:  # removed since the matcher was built: it names nobody now
            out.append((figure, said))
    return out


def approved_ids(session: Session, figure_id: str) -> list[str]:
    """The likenesses an admin approved as the figure."""
    return sorted(session.exec(select(Likeness.id).where(Likeness.figure_id == figure_id)).all())


def decide(session: Session, figure: Figure, requester_id: str, subject: str) -> Decision:
    """Whether ``requester_id`` may show ``figure``: allowed only through a likeness approved as the figure that
    consents now (live, undisputed, and its mode or a grant admits the requester). Rule ``figure:<id>``."""
    checks = check_consent(session, approved_ids(session, figure.id), requester_id)
    return public_figure_permits(figure.id, figure.name, subject, [c.decision for c in checks])


def figure_of(rule: str) -> str | None:
    """The figure id a decision of :func:`decide` is about (rule ``figure:<id>``), or ``None``."""
    kind, _, rest = rule.partition(":")
    return rest if kind == "figure" and rest else None


# The compiled names of each database's gallery (by engine), with the "figures" counter it was built at.
_matchers: weakref.WeakKeyDictionary[Any, tuple[int, CharacterMatcher]] = weakref.WeakKeyDictionary()
_matchers_lock = threading.Lock()


def _matcher(session: Session) -> CharacterMatcher:
    """Every figure's names compiled (the characters' :func:`governance.services.characters.matcher` scheme: built
    when the ``figures`` counter moves; a session that changed the gallery itself builds its own, not kept)."""
    def build() -> CharacterMatcher:
        rows = session.exec(select(Figure.id, Figure.name, Figure.aliases)).all()  # type: ignore[call-overload]
        return CharacterMatcher.build(CharacterPolicy(fid, name, tuple(aliases or ())) for fid, name, aliases in rows)

    if session.info.get("figures_changed"):
        return build()
    engine = session.get_bind()
    with _matchers_lock:
        version = counter(session, "figures")  # read before the rows: a later change bumps it again
        kept = _matchers.get(engine)
        if kept is not None and kept[0] == version >= 0:
            return kept[1]
        built = build()
        if version >= 0:
            _matchers[engine] = (version, built)
        return built


def _changed(session: Session) -> None:
    """The gallery changed in this unit of work: the face index (``likenesses``) and the names (``figures``)."""
    bump(session, "likenesses")  # the face index holds figures too
    bump(session, "figures")
    session.info["figures_changed"] = True
