"""HTTP views of the restrictions domain: a likeness's restrictions, and the approvals of held generations."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, send_file

from governance.authz import Action
from governance.generations.services import generations as generations_svc
from governance.restrictions import drafts
from governance.restrictions import services as restrictions_svc
from governance.web import caller, db, guard, json_body, runtime

bp = Blueprint("restrictions", __name__)  # nested in the v1 blueprint: /v1/...


@bp.get("/likenesses/<likeness_id>/restrictions")
@guard(Action.LIKENESS_RESTRICTIONS_READ)
def read_restrictions(likeness_id: str) -> Response:
    likeness, restrictions = restrictions_svc.read(db(), caller(), likeness_id)
    return jsonify({"likeness": likeness.id, **restrictions.to_dict(),
                    "draft_approval": restrictions_svc.draft_approval(db(), likeness.id)})


@bp.put("/likenesses/<likeness_id>/restrictions")
@guard(Action.LIKENESS_RESTRICTIONS_SET)
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
def approvals(generation_id: str) -> Response:
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_APPROVALS)
    rows = restrictions_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value, "prompt": gen.prompt,
                    "approvals": [restrictions_svc.view(r) for r in rows]})


@bp.post("/generations/<generation_id>/approval")
@guard(Action.GENERATION_APPROVE)
def approve(generation_id: str) -> Response:
    """``{"decision": "approve"}`` (the job runs once every owner asked approved) or ``{"decision": "deny"}``
    (blocked)."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_APPROVE)
    body = json_body("decision")
    submit = restrictions_svc.decide(db(), account, gen, body.get("decision"))
    db().commit()
    if submit:
        runtime().pipeline.submit(gen.id)
    rows = restrictions_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "approvals": [restrictions_svc.view(r) for r in rows]})


@bp.get("/generations/<generation_id>/draft")
@guard(Action.GENERATION_DRAFT)
def draft(generation_id: str) -> Response:
    """The sealed draft (visible label, watermark, manifest) an owner who approves drafts is asked about."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_DRAFT)
    videos = runtime().settings.videos_dir
    path = drafts.preview(db(), account, gen, videos)
    if path is None:
        db().commit()
        raise drafts.gone(gen)
    return send_file(path, mimetype="video/mp4", as_attachment=True, download_name=f"{gen.id}.draft.mp4")


@bp.post("/generations/<generation_id>/draft")
@guard(Action.GENERATION_DRAFT_DECIDE)
def decide_draft(generation_id: str) -> Response:
    """``{"decision": "approve"}`` (released once every owner asked approved) or ``{"decision": "reject"}``."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_DRAFT_DECIDE)
    body = json_body("decision")
    submit = drafts.decide(db(), account, gen, body.get("decision"), runtime().settings.videos_dir)
    db().commit()
    if submit is None:
        raise drafts.gone(gen)
    if submit:
        runtime().pipeline.submit(gen.id)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "drafts": [drafts.view(r) for r in drafts.for_account(db(), account, gen)]})
