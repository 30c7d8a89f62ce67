"""HTTP API v1: enrollment (live challenges, photo and live likenesses, upgrades), disputes and the protected
public-figure gallery. Views parse, call one service, commit, serialize.

Who may call what is the authorization table's (:data:`governance.authz.TABLE`): any account asks for a
challenge (bound to it) and upgrades its own likeness (another's is 404, admins' too); disputes and figures are
for admins. The blueprint is nested in ``v1`` (:mod:`governance.api.views`), so its endpoints are ``v1.*``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from governance import admission
from governance.api.common import caller, db, guard, json_body, runtime, uploaded_blobs
from governance.authz import Action
from governance.errors import Conflict, InvalidInput
from governance.models import Account, Likeness, iso, utcnow
from governance.services import disputes as disputes_svc
from governance.services import enrollment as enrollment_svc
from governance.services import figures as figures_svc
from governance.services import likenesses as likenesses_svc
from governance.services.likenesses import check_display_name, facts_of
from governance.uploads import challenge_video, check_photos, decode_image, enrollment_frames, media_kind
from policies.consent import HOW_TO_VERIFY, Verification, can_consent

bp = Blueprint("enrollment", __name__)  # nested in views.bp: /v1/...


# -- views of a likeness ------------------------------------------------------------------------------------------
def verification_fields(lk: Likeness) -> dict[str, Any]:
    """What every likeness view says about its claim: ``verification`` (live|photo), ``status``
    (active|disputed|pending_review), whether it ``can_consent`` (and if not, ``protective_because`` and
    ``how_to_verify``), the figure an admin approved it as, the identity verdict and the open disputes."""
    decision = can_consent(facts_of(db(), lk))
    out: dict[str, Any] = {
        "verification": lk.verification.value, "status": lk.status.value, "verified_at": iso(lk.verified_at),
        "can_consent": decision.allowed, "figure": lk.figure_id, "identity": lk.identity or None,
        "disputes": [disputes_svc.owner_view(d) for d in disputes_svc.for_likeness(db(), lk.id)
                     if d.state.value == "open"],
    }
    if not decision.allowed:
        out["protective_because"] = decision.reason
        if lk.verification is not Verification.LIVE:
            out["how_to_verify"] = HOW_TO_VERIFY.replace("{id}", lk.id)
    return out


def _enrolled(lk: Likeness) -> dict[str, Any]:
    return {"id": lk.id, "owner": lk.owner_id, "mode": lk.mode.value, "display_name": lk.display_name,
            "embeddings": lk.embeddings, "created_at": iso(lk.created_at),
            **verification_fields(lk)}


# -- enrollment ------------------------------------------------------------------------------------------------------
@bp.post("/likenesses/challenges")
@guard(Action.LIKENESS_CHALLENGE)
def create_challenge() -> tuple[Response, int]:
    """201 ``{id, poses, expires_at, created_at, ttl_s}``: head poses to perform in order on camera, then upload
    the video to ``POST /v1/likenesses`` (or ``/v1/likenesses/{id}/verification``) with ``challenge=<id>``."""
    owner = caller()
    ttl = runtime().settings.challenge_ttl_s
    ch = enrollment_svc.create_challenge(db(), owner, ttl)
    db().commit()
    resp = jsonify({**enrollment_svc.challenge_view(ch), "ttl_s": ttl})
    resp.headers["Cache-Control"] = "no-store"
    return resp, 201


def enroll_likeness() -> tuple[Response, int]:
    """``POST /v1/likenesses`` (the route and its guard are in :mod:`governance.api.views`): multipart
    ``media``. Photos (or a video without ``challenge``): a ``photo`` likeness, protective only. One selfie
    video with ``challenge=<id>``: verified live, a ``live`` likeness. Either is searched against every other
    claim: 201 with ``status`` ``disputed`` or ``pending_review`` when it matches another account's likeness
    or a protected figure."""
    now = utcnow()
    owner = caller()
    display_name = check_display_name(request.form.get("display_name") or None)
    challenge_id = request.form.get("challenge")
    if challenge_id is not None:
        return jsonify(_enrolled(_answer(owner, challenge_id, now, None, display_name))), 201
    rt = runtime()
    with admission.expensive(rt, "enroll") as meter:
        frames, selfie_video = enrollment_frames(uploaded_blobs(), meter)
        likeness = enrollment_svc.enroll_photos(db(), owner, frames, rt.face_backend, lambda: rt.sync_index(db()),
                                                rt.match_threshold, display_name=display_name,
                                                require_pose_change=selfie_video)
    db().commit()
    return jsonify(_enrolled(likeness)), 201


@bp.post("/likenesses/<likeness_id>/verification")
@guard(Action.LIKENESS_VERIFY)
def verify_likeness(likeness_id: str) -> Response:
    """Upgrade the caller's photo likeness to ``live``: multipart ``media`` (the selfie video) and
    ``challenge``; the face must match the likeness's template (else 422 ``face_mismatch``)."""
    now = utcnow()
    owner = caller()
    lk = likenesses_svc.owned_likeness(db(), owner, likeness_id, Action.LIKENESS_VERIFY)
    if lk.verification is Verification.LIVE:
        raise Conflict(f"likeness {lk.id} is already verified live", reason="already_live")
    return jsonify(_enrolled(_answer(owner, request.form.get("challenge"), now, lk, None)))


def _answer(owner: Account, challenge_id: Any, now: datetime, likeness: Likeness | None,
            display_name: str | None) -> Likeness:
    """Check the challenge and the video (malformed: refused, the challenge untouched), then verify: the
    challenge is spent and committed whether the check passes or not. Form field ``mirrored=true``: the
    video is the mirror image a client previewed (browsers' MediaRecorder and phone cameras store the
    camera's view, the default)."""
    mirrored = _flag("mirrored")
    ch = enrollment_svc.open_challenge(db(), owner, challenge_id, now)
    rt = runtime()
    with admission.expensive(rt, "enroll") as meter:
        video = challenge_video(uploaded_blobs(), meter)
        outcome = enrollment_svc.verify_live(db(), owner, ch, video, backend=rt.face_backend,
                                             index_now=lambda: rt.sync_index(db()), threshold=rt.match_threshold,
                                             identity=rt.identity_proof, likeness=likeness,
                                             display_name=display_name, mirrored=mirrored)
    db().commit()
    if outcome.refusal is not None:
        raise outcome.refusal
    assert outcome.likeness is not None
    return outcome.likeness


def _flag(name: str) -> bool:
    raw = request.form.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidInput(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


# -- disputes (admin) -----------------------------------------------------------------------------------------------
@bp.get("/disputes")
@guard(Action.DISPUTE_LIST)
def list_disputes() -> Response:
    """``?state=open`` (default), ``resolved`` or ``all``."""
    rows = disputes_svc.list_disputes(db(), request.args.get("state", "open"))
    return jsonify({"disputes": [disputes_svc.admin_view(db(), d) for d in rows]})


@bp.get("/disputes/<dispute_id>")
@guard(Action.DISPUTE_READ)
def get_dispute(dispute_id: str) -> Response:
    return jsonify(disputes_svc.admin_view(db(), disputes_svc.get_dispute(db(), dispute_id)))


@bp.post("/disputes/<dispute_id>/resolve")
@guard(Action.DISPUTE_RESOLVE)
def resolve_dispute(dispute_id: str) -> Response:
    """``{outcome, reason}``: the outcomes a dispute's kind allows are listed in its view (``outcomes``)."""
    admin = caller()
    body = json_body("outcome", "reason")
    d = disputes_svc.resolve(db(), admin, disputes_svc.get_dispute(db(), dispute_id), body.get("outcome"),
                             body.get("reason"))
    db().commit()
    runtime().sync_index(db())  # a resolution may have deleted a likeness
    return jsonify(disputes_svc.admin_view(db(), d))


# -- protected public figures (admin) -----------------------------------------------------------------------------
@bp.get("/figures")
@guard(Action.FIGURE_LIST)
def list_figures() -> Response:
    return jsonify({"figures": [figures_svc.view(f) for f in figures_svc.list_figures(db())]})


@bp.post("/figures")
@guard(Action.FIGURE_ADD)
def add_figure() -> tuple[Response, int]:
    """Multipart: ``name``, any number of ``alias`` fields, photos of the figure in ``media``. Likenesses already
    enrolled with the figure's face go to ``pending_review`` (``reviews_opened``)."""
    admin = caller()
    rt = runtime()
    with admission.expensive(rt, "reference") as meter:
        blobs = uploaded_blobs()
        check_photos(len(blobs), meter)
        images = []
        for blob in blobs:
            if media_kind(blob) != "image":
                raise InvalidInput("a figure is added from photos (JPEG, PNG, WebP, HEIF, AVIF), not videos")
            images.append(decode_image(blob, meter))
        figure, reviews = figures_svc.add_figure(db(), admin.id, request.form.get("name"),
                                                 request.form.getlist("alias"), images, rt.face_backend,
                                                 lambda: rt.sync_index(db()), rt.match_threshold)
    db().commit()
    return jsonify({**figures_svc.view(figure), "reviews_opened": [d.id for d in reviews]}), 201


@bp.delete("/figures/<figure_id>")
@guard(Action.FIGURE_REMOVE)
def remove_figure(figure_id: str) -> tuple[str, int]:
    admin = caller()
    figures_svc.remove_figure(db(), admin.id, figures_svc.get_figure(db(), figure_id))
    db().commit()
    return "", 204
