"""Awaiting you (any account): the questions only this account can answer, with the evidence the API shows it, and
the buttons that answer them.

- a generation held for your approval because its prompt may break a restriction on your likeness (the prompt and
  the restriction it may break; approve or deny);
- a held generation whose sealed draft you asked to approve (the draft to watch; approve or reject);
- a held generation that may show your face (the frames the face is in; "it is me" blocks it, "not me" lets the
  gate go on);
- as a guardian, the grants your ward asked for (:func:`guardian`; approve or deny).

Each list is the services' own (``waiting_for`` in :mod:`governance.restrictions.services`,
:mod:`governance.restrictions.drafts` and :mod:`governance.generations.services.reviews`;
:func:`governance.guardians.services.pending_for`); each generation is read through
:func:`~governance.generations.services.generations.generation_for` with the action of the API's view, so the page
shows what the API would show this account and nothing else (no other person's likeness id: the prompt and the
questions asked of you only). Each answer goes through the API view's own helper
(:func:`governance.generations.views.answer_held`, :func:`governance.restrictions.views.answer_draft`,
:func:`governance.guardians.services.decide`): the same refusals (422 for an unknown decision, 409 once answered,
404 for a generation or a request that is not yours).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, g, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from governance.accounts.models import Account
from governance.authz import Action
from governance.columns import iso
from governance.errors import NotFound
from governance.generations.models import Generation
from governance.generations.services import generations as generations_svc
from governance.generations.services import reviews as reviews_svc
from governance.generations.views import answer_held, review_view
from governance.guardians import services as guardians_svc
from governance.pages.site import bp, page
from governance.restrictions import approvals as approvals_svc
from governance.restrictions import drafts
from governance.restrictions import services as restrictions_svc
from governance.restrictions.views import answer_draft, draft_download
from governance.web import caller, db
from policies.restrictions import Category

#: The "Done" alert's words, by the code the redirect carries in ``done`` (an unknown code shows nothing).
DONE = {"approved": "you approved the use of your face", "denied": "you denied it: the generation is blocked",
        "draft-approved": "you approved the draft", "draft-rejected": "you rejected the draft: it is blocked",
        "confirmed": "you said the face is yours: the generation is blocked",
        "dismissed": "you said the face is not yours", "ward-approved": "approved: the grant is made",
        "ward-denied": "denied: no grant is made"}

CATEGORIES = {c.value: c.described for c in Category}


def _held(me: Account, ids: list[str], action: Action) -> list[Generation]:
    """The generations ``ids`` (held, as the services' ``waiting_for`` lists them), read as the API's view for
    ``action`` reads them (one the account may no longer see is left out, as the API would answer 404)."""
    out = []
    for gid in ids:
        try:
            out.append(generations_svc.generation_for(db(), me, gid, action))
        except NotFound:
            continue
    return out


def _item(gen: Generation, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """What a card shows: the generation's id, prompt and when it was asked, and the questions asked of the reader
    (each about one of the reader's own likenesses). Nothing else of the generation: its reasons and likenesses
    may name other people's."""
    return {"id": gen.id, "prompt": gen.prompt, "created_at": iso(gen.created_at), "questions": questions}


def waiting(me: Account) -> dict[str, list[dict[str, Any]]]:
    """Everything held for ``me``: ``approvals``, ``drafts``, ``reviews`` (each a list of :func:`_item`)."""
    s = db()
    return {
        "approvals": [_item(g, [restrictions_svc.view(r) for r in restrictions_svc.for_account(s, me, g)
                                if r.decision == "pending"])
                      for g in _held(me, restrictions_svc.waiting_for(s, me), Action.GENERATION_APPROVALS)],
        "drafts": [_item(g, [drafts.view(r) for r in drafts.for_account(s, me, g) if r.decision == "pending"])
                   for g in _held(me, drafts.waiting_for(s, me), Action.GENERATION_DRAFT)],
        "reviews": [_item(g, [review_view(r, with_frames=True) for r in reviews_svc.for_account(s, me, g)
                              if r.decision == "pending"])
                    for g in _held(me, reviews_svc.waiting_for(s, me), Action.GENERATION_REVIEWS)],
    }


def waiting_count(me: Account | None) -> int:
    """How many questions wait for ``me`` (the nav's count): held generations and wards' requests."""
    if me is None:
        return 0
    s = db()
    held = {*restrictions_svc.waiting_for(s, me), *drafts.waiting_for(s, me), *reviews_svc.waiting_for(s, me)}
    return len(held) + len(guardians_svc.pending_for(s, me))


@bp.app_context_processor
def _count() -> dict[str, Any]:
    """``waiting_count()`` for the nav: asked only when the template draws it (a signed-in page). The error page
    draws the nav too, sometimes after the database failed the request (a transaction to roll back, a database
    gone): there the count is left out (0) rather than failing the error page itself."""

    def count() -> int:
        if "waiting_count" not in g:  # once per request: the nav and My face's notifications both ask
            try:
                g.waiting_count = waiting_count(g.get("page_account"))
            except SQLAlchemyError:
                g.waiting_count = 0
        n: int = g.waiting_count
        return n

    return {"waiting_count": count}


@bp.get("/me/requests")
@page(Action.GENERATION_APPROVALS)
def awaiting() -> str:
    me = caller()
    return render_template("awaiting.html", held=waiting(me), categories=CATEGORIES,
                           wards=len(guardians_svc.pending_for(db(), me)), done=DONE.get(request.args.get("done", "")))


def _back(done: str, endpoint: str = "pages.awaiting") -> Response:
    assert done in DONE, done
    return redirect(url_for(endpoint, done=done), 303)  # type: ignore[return-value]


def _decision() -> Callable[[], Any]:
    return lambda: request.form.get("decision")


def _answer(generation_id: str, action: Action, decide: Callable[..., bool | None], yes: str,
            done: tuple[str, str]) -> Response:
    """The form's ``decision`` to a held generation's question, through the API's own
    :func:`~governance.generations.views.answer_held`; back to the page saying ``done[0]`` when it was ``yes``,
    ``done[1]`` otherwise."""
    answer_held(generation_id, action, decide, _decision())
    return _back(done[0] if request.form.get("decision") == yes else done[1])


@bp.post("/me/requests/<generation_id>/approval")
@page(Action.GENERATION_APPROVE)
def awaiting_approve(generation_id: str) -> Response:
    """``decision``: ``approve`` or ``deny`` (the API's ``POST /v1/generations/<id>/approval``)."""
    return _answer(generation_id, Action.GENERATION_APPROVE, approvals_svc.decide, "approve", ("approved", "denied"))


@bp.get("/me/requests/<generation_id>/draft.mp4")
@page(Action.GENERATION_DRAFT)
def awaiting_draft(generation_id: str) -> Response:
    """The sealed draft to watch (the API's ``GET /v1/generations/<id>/draft``)."""
    return draft_download(generation_id)


@bp.post("/me/requests/<generation_id>/draft")
@page(Action.GENERATION_DRAFT_DECIDE)
def awaiting_draft_decide(generation_id: str) -> Response:
    """``decision``: ``approve`` or ``reject`` (the API's ``POST /v1/generations/<id>/draft``)."""
    answer_draft(generation_id, _decision())
    return _back("draft-approved" if request.form.get("decision") == "approve" else "draft-rejected")


@bp.post("/me/requests/<generation_id>/review")
@page(Action.GENERATION_REVIEW)
def awaiting_review(generation_id: str) -> Response:
    """``decision``: ``confirm`` (it is me) or ``dismiss`` (not me) (the API's ``POST /v1/generations/<id>/review``)."""
    return _answer(generation_id, Action.GENERATION_REVIEW, reviews_svc.decide, "confirm", ("confirmed", "dismissed"))


@bp.get("/me/guardian")
@page(Action.GUARDIAN_APPROVALS)
def guardian() -> str:
    """The grants your wards asked for, waiting for you, oldest first (the API's ``GET /v1/guardian/approvals``)."""
    rows = [guardians_svc.view(a, db()) for a in guardians_svc.pending_for(db(), caller())]
    return render_template("guardian.html", approvals=rows, done=DONE.get(request.args.get("done", "")))


@bp.post("/me/guardian/approvals/<approval_id>")
@page(Action.GUARDIAN_DECIDE)
def guardian_decide(approval_id: str) -> Response:
    """``decision``: ``approve`` (the grant is made) or ``deny`` (the API's ``POST /v1/guardian/approvals/<id>``)."""
    guardians_svc.decide(db(), caller(), approval_id, request.form.get("decision"))
    db().commit()
    return _back("ward-approved" if request.form.get("decision") == "approve" else "ward-denied", "pages.guardian")
