"""HTTP views of the restrictions domain: a likeness's restrictions, and the approvals of held generations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from governance.accounts.models import Account
from governance.authz import Action
from governance.generations.models import Generation
from governance.generations.services import generations as generations_svc
from governance.generations.views import answer_held
from governance.openapi import DOWNLOAD_ERRORS, DOWNLOAD_HEADERS, DOWNLOAD_MEDIA, NOT_MODIFIED, operation
from governance.restrictions import approvals as approvals_svc
from governance.restrictions import drafts
from governance.restrictions import schemas as s
from governance.restrictions import services as restrictions_svc
from governance.web import caller, db, guard, json_body, runtime, send_download

bp = Blueprint("restrictions", __name__)  # nested in the v1 blueprint: /v1/...


@bp.get("/likenesses/<likeness_id>/restrictions")
@guard(Action.LIKENESS_RESTRICTIONS_READ)
@operation(ok={200: s.RestrictionsOut}, tags=["likenesses"])
def read_restrictions(likeness_id: str) -> Response:
    likeness, restrictions = restrictions_svc.read(db(), caller(), likeness_id)
    return jsonify({"likeness": likeness.id, **restrictions.to_dict(),
                    "draft_approval": restrictions_svc.draft_approval(db(), likeness.id)})


@bp.put("/likenesses/<likeness_id>/restrictions")
@guard(Action.LIKENESS_RESTRICTIONS_SET)
@operation(ok={200: s.RestrictionsOut}, json=s.RestrictionsIn, tags=["likenesses"])
def set_restrictions(likeness_id: str) -> Response:
    """``{"categories": [...], "phrases": [...], "note": "...", "draft_approval": false}``: replaces the
    likeness's restrictions."""
    body = json_body("categories", "phrases", "note", "draft_approval")
    restrictions = restrictions_svc.update(db(), caller(), likeness_id, body)
    db().commit()
    return jsonify({"likeness": likeness_id, **restrictions.to_dict(),
                    "draft_approval": restrictions_svc.draft_approval(db(), likeness_id)})


@bp.get("/generations/<generation_id>/approval")
@guard(Action.GENERATION_APPROVALS)
@operation(ok={200: s.ApprovalsOut}, tags=["held generations"])
def approvals(generation_id: str) -> Response:
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_APPROVALS)
    rows = restrictions_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value, "prompt": gen.prompt,
                    "approvals": [restrictions_svc.view(r) for r in rows]})


@bp.post("/generations/<generation_id>/approval")
@guard(Action.GENERATION_APPROVE)
@operation(ok={200: s.ApprovalsOut}, json=s.ApprovalDecision, errors=[409], tags=["held generations"])
def approve(generation_id: str) -> Response:
    """``{"decision": "approve"}`` (the job runs once every owner asked approved) or ``{"decision": "deny"}``
    (blocked)."""
    account, gen, _ = answer_held(generation_id, Action.GENERATION_APPROVE, approvals_svc.decide)
    rows = restrictions_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "approvals": [restrictions_svc.view(r) for r in rows]})


@bp.get("/generations/<generation_id>/draft")
@guard(Action.GENERATION_DRAFT)
@operation(media=DOWNLOAD_MEDIA, ok=NOT_MODIFIED, errors=[409, 410, *DOWNLOAD_ERRORS], headers=DOWNLOAD_HEADERS,
           tags=["held generations"])
def draft(generation_id: str) -> Response:
    """The sealed draft (visible label, watermark, manifest) an owner who approves drafts is asked about."""
    return draft_download(generation_id)


def draft_download(generation_id: str) -> Response:
    """The sealed draft of a held generation as an attachment (``<id>.draft.mp4``), for an owner asked about it:
    404 as for reading the generation, 409 with no draft waiting for the caller, 410 once it expired (the
    generation blocked, committed). The API's draft and the pages' both answer with it."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_DRAFT)
    videos = runtime().settings.videos_dir
    path = drafts.preview(db(), account, gen, videos)
    if path is None:
        db().commit()
        raise drafts.gone(gen)
    return send_download(path, mimetype="video/mp4", download_name=f"{gen.id}.draft.mp4")


@bp.post("/generations/<generation_id>/draft")
@guard(Action.GENERATION_DRAFT_DECIDE)
@operation(ok={200: s.DraftsOut}, json=s.DraftDecision, errors=[409, 410], tags=["held generations"])
def decide_draft(generation_id: str) -> Response:
    """``{"decision": "approve"}`` (released once every owner asked approved) or ``{"decision": "reject"}``."""
    account, gen = answer_draft(generation_id)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "drafts": [drafts.view(r) for r in drafts.for_account(db(), account, gen)]})


def answer_draft(generation_id: str, decision: Callable[[], Any] | None = None) -> tuple[Account, Generation]:
    """The caller's answer to the draft of a held generation (``decision`` reads it, by default from the API's JSON
    body, see :func:`~governance.generations.views.answer_held`), committed; 410 when the draft had expired (the
    generation is blocked). Returns the caller and the generation."""
    videos = runtime().settings.videos_dir
    account, gen, submit = answer_held(generation_id, Action.GENERATION_DRAFT_DECIDE,
                                       lambda s, a, g, d: drafts.decide(s, a, g, d, videos), decision)
    if submit is None:
        raise drafts.gone(gen)
    return account, gen
