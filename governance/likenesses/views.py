"""HTTP API v1, likenesses: enrollment (live challenges, photo and live likenesses, upgrades), modes and grants,
disputes over a claim and the protected public-figure gallery. Views parse, call one service, commit, serialize.

Who may call what is the authorization table's (:data:`governance.authz.TABLE`): any account asks for a
challenge (bound to it) and upgrades its own likeness (another's is 404, admins' too); disputes and figures are
for admins. A likeness's generations (``/v1/likenesses/{id}/generations``) are served by
:mod:`governance.generations.views`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from governance import admission
from governance.accounts.models import Account
from governance.authz import Action
from governance.columns import iso, utcnow
from governance.errors import Conflict, InvalidInput
from governance.guardians import services as guardians_svc
from governance.likenesses import schemas as s
from governance.likenesses.models import Challenge, Dispute, Figure, Likeness
from governance.likenesses.services import disputes as disputes_svc
from governance.likenesses.services import enrollment as enrollment_svc
from governance.likenesses.services import figures as figures_svc
from governance.likenesses.services import likenesses as likenesses_svc
from governance.likenesses.services.likenesses import check_display_name, facts_of
from governance.openapi import NO_STORE, PageQuery, operation
from governance.remix import services as remix_svc
from governance.uploads import challenge_video, enrollment_frames, reference_images
from governance.web import (
    caller,
    db,
    guard,
    json_body,
    page_request,
    page_response,
    refuse_unknown_form_fields,
    runtime,
    uploaded_blobs,
)
from governance.workflows import withdrawals
from policies.consent import HOW_TO_VERIFY, Verification, can_consent

bp = Blueprint("likenesses", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


# -- views of a likeness, a challenge, a dispute, a figure ---------------------------------------------------------
def _likeness_view(lk: Likeness, grants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": lk.id, "owner": lk.owner_id, "mode": lk.mode.value, "display_name": lk.display_name,
                           "backend": lk.backend, "embeddings": lk.embeddings, "created_at": iso(lk.created_at),
                           **verification_fields(lk)}
    if grants is not None:
        out["grants"] = grants
    return out


def verification_fields(lk: Likeness) -> dict[str, Any]:
    """What every likeness view says about its claim: ``verification`` (live|photo), ``status``
    (active|disputed|pending_review), whether it ``can_consent`` (and if not, ``protective_because`` and
    ``how_to_verify``), the figure an admin approved it as, the identity verdict and the open disputes."""
    decision = can_consent(facts_of(db(), lk))
    out: dict[str, Any] = {
        "verification": lk.verification.value, "status": lk.status.value, "verified_at": iso(lk.verified_at),
        "can_consent": decision.allowed, "figure": lk.figure_id, "identity": lk.identity or None,
        "disputes": [_dispute_owner_view(d) for d in disputes_svc.for_likeness(db(), lk.id)
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


def _challenge_view(ch: Challenge) -> dict[str, Any]:
    return {"id": ch.id, "poses": list(ch.poses), "expires_at": iso(ch.expires_at), "created_at": iso(ch.created_at)}


def _dispute_admin_view(d: Dispute) -> dict[str, Any]:
    """The dispute as an admin sees it: both accounts by id and name, the figure by name."""
    parties = disputes_svc.parties(db(), d)

    def account(a: Account | None) -> dict[str, str] | None:
        return {"id": a.id, "name": a.name} if a else None

    figure = parties.figure
    return {
        "id": d.id, "kind": d.kind.value, "state": d.state.value, "likeness": d.likeness_id,
        "claimant": account(parties.claimant), "holder_likeness": d.holder_likeness_id,
        "holder": account(parties.holder),
        "figure": {"id": figure.id, "name": figure.name} if figure else ({"id": d.figure_id} if d.figure_id else None),
        "distance": d.distance, "detail": d.detail, "outcome": d.outcome, "reason": d.reason,
        "resolved_by": d.resolved_by, "created_at": iso(d.created_at), "resolved_at": iso(d.resolved_at),
        "outcomes": list(disputes_svc.OUTCOMES[d.kind]),
    }


def _dispute_owner_view(d: Dispute) -> dict[str, Any]:
    """The dispute as the claimant sees it on their likeness: never who holds the other claim."""
    return {"id": d.id, "kind": d.kind.value, "state": d.state.value, "outcome": d.outcome,
            "created_at": iso(d.created_at), "resolved_at": iso(d.resolved_at)}


def figure_view(figure: Figure) -> dict[str, Any]:
    """A protected public figure as admins (and ``consentgate figures list``) see it: never its template."""
    return {"id": figure.id, "name": figure.name, "aliases": list(figure.aliases), "embeddings": figure.embeddings,
            "backend": figure.backend, "created_at": iso(figure.created_at)}


# -- likenesses: list, read, mode, grants, delete -------------------------------------------------------------------
@bp.get("/likenesses")
@guard(Action.LIKENESS_LIST)
@operation(ok={200: s.LikenessPage}, query=PageQuery, tags=["likenesses"])
def my_likenesses() -> Response:
    """Oldest first, paged (``limit``, ``cursor``; ``next``)."""
    me_ = caller()
    page = likenesses_svc.page_owned_by(db(), me_, page_request(f"likenesses:{me_.id}"))
    return page_response("likenesses", page, _likeness_view)


@bp.get("/likenesses/<likeness_id>")
@guard(Action.LIKENESS_READ)
@operation(ok={200: s.LikenessOut}, tags=["likenesses"])
def get_likeness(likeness_id: str) -> Response:
    lk = likenesses_svc.owned_likeness(db(), caller(), likeness_id, Action.LIKENESS_READ)
    grants = [{"account": g.grantee_id, "grant": g.id, "since": iso(g.created_at)}
              for g in likenesses_svc.active_grants(db(), lk.id)]
    return jsonify(_likeness_view(lk, grants))


@bp.patch("/likenesses/<likeness_id>")
@guard(Action.LIKENESS_MODE)
@operation(ok={200: s.LikenessOut}, json=s.ModeIn, errors=[409], tags=["likenesses"])
def patch_likeness(likeness_id: str) -> Response:
    actor = caller()
    likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_MODE)
    body = json_body("mode")
    if "mode" not in body:
        raise InvalidInput("only {'mode': 'only_me'|'approved'|'mutuals'|'everyone'} can be changed")
    return jsonify(_likeness_view(change_mode(likeness_id, body["mode"])))


def change_mode(likeness_id: str, mode: Any) -> Likeness:
    """Set the caller's likeness's mode (``only_me``, ``approved``, ``mutuals``, ``everyone``), committed; remixes a
    narrower mode withdraws are swept. 404 for another's likeness, 422 for an unknown mode."""
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_MODE)
    withdrawals.set_mode(db(), actor, lk, mode)
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down
    return lk


@bp.delete("/likenesses/<likeness_id>")
@guard(Action.LIKENESS_DELETE)
@operation(ok={204: None}, tags=["likenesses"])
def delete_likeness(likeness_id: str) -> tuple[str, int]:
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_DELETE)
    withdrawals.delete_likeness(db(), actor, lk)
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down
    runtime().indexes.sync_index(db())
    return "", 204


@bp.put("/likenesses/<likeness_id>/grants/<account_ref>")
@guard(Action.LIKENESS_GRANT)
@operation(ok={200: s.GrantOut, 201: s.GrantOut, 202: s.GrantOut}, errors=[409, 422], tags=["likenesses"])
def grant(likeness_id: str, account_ref: str) -> tuple[Response, int]:
    body, status = grant_to(likeness_id, account_ref)
    return jsonify(body), status


def grant_to(likeness_id: str, account_ref: str) -> tuple[dict[str, Any], int]:
    """Grant the account ``account_ref`` the caller's likeness, committed: ``(answer, 201 new | 200 already)``; a
    minor's likeness asks the guardian first (``(answer with guardian_approval, 202)``)."""
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_GRANT)
    if guardians_svc.guardianship(db(), lk.owner_id) is not None:  # a minor's: the guardian approves it first
        a = guardians_svc.request_grant(db(), actor, lk, account_ref)
        db().commit()
        return {"likeness": lk.id, "account": a.grantee_id, "grant": None, "guardian_approval": a.id,
                "state": a.state}, 202
    g, created = likenesses_svc.grant(db(), actor, lk, account_ref)
    db().commit()
    return {"likeness": lk.id, "account": g.grantee_id, "grant": g.id}, (201 if created else 200)


@bp.delete("/likenesses/<likeness_id>/grants/<account_ref>")
@guard(Action.LIKENESS_REVOKE)
@operation(ok={204: None}, tags=["likenesses"])
def revoke(likeness_id: str, account_ref: str) -> tuple[str, int]:
    revoke_grant(likeness_id, account_ref)
    return "", 204


def revoke_grant(likeness_id: str, account_ref: str) -> None:
    """Revoke the caller's grant of their likeness to ``account_ref``, committed; the remixes it withdraws are
    swept. 404 for another's likeness or no such grant."""
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_REVOKE)
    withdrawals.revoke(db(), actor, lk, account_ref)
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down


# -- enrollment ------------------------------------------------------------------------------------------------------
@bp.post("/likenesses/challenges")
@guard(Action.LIKENESS_CHALLENGE)
@operation(ok={201: s.ChallengeOut}, errors=[409], tags=["enrollment"], headers={201: NO_STORE})
def create_challenge() -> tuple[Response, int]:
    """201 ``{id, poses, expires_at, created_at, ttl_s}``: head poses to perform in order on camera, then upload
    the video to ``POST /v1/likenesses`` (or ``/v1/likenesses/{id}/verification``) with ``challenge=<id>``."""
    resp = jsonify(new_challenge())
    resp.headers["Cache-Control"] = "no-store"
    return resp, 201


def new_challenge() -> dict[str, Any]:
    """A live challenge for the caller, committed: ``{id, poses, expires_at, created_at, ttl_s}``."""
    ttl = runtime().settings.challenge_ttl_s
    ch = enrollment_svc.create_challenge(db(), caller(), ttl)
    db().commit()
    return {**_challenge_view(ch), "ttl_s": ttl}


@bp.post("/likenesses")
@guard(Action.LIKENESS_ENROLL)
@operation(ok={201: s.EnrolledOut}, form=s.EnrollForm, errors=[404, 409, 415, 503], tags=["enrollment"])
def enroll() -> tuple[Response, int]:
    """Multipart ``media``. Photos (or a video without ``challenge``): a ``photo`` likeness, protective only. One
    selfie video with ``challenge=<id>``: verified live, a ``live`` likeness. Either is searched against every other
    claim: 201 with ``status`` ``disputed`` or ``pending_review`` when it matches another account's likeness
    or a protected figure."""
    return jsonify(_enrolled(enrolled_likeness())), 201


def enrolled_likeness() -> Likeness:
    """The likeness the request's multipart form enrolls for the caller, committed (``media``; ``challenge``,
    ``mirrored`` and ``display_name`` as :func:`enroll` says)."""
    now = utcnow()
    owner = caller()
    refuse_unknown_form_fields("display_name", "challenge", "mirrored")
    display_name = check_display_name(request.form.get("display_name") or None)
    challenge_id = request.form.get("challenge")
    if challenge_id is not None:
        return _answer(owner, challenge_id, now, None, display_name)
    rt = runtime()
    with admission.expensive(rt.throttles, "enroll") as meter:
        frames, selfie_video = enrollment_frames(uploaded_blobs(), meter)
        likeness = enrollment_svc.enroll_photos(db(), owner, frames, rt.detectors.face_backend,
                                                lambda: rt.indexes.sync_index(db()), rt.detectors.match_threshold,
                                                display_name=display_name,
                                                require_pose_change=selfie_video)
    db().commit()
    return likeness


@bp.post("/likenesses/<likeness_id>/verification")
@guard(Action.LIKENESS_VERIFY)
@operation(ok={200: s.EnrolledOut}, form=s.VerifyForm, errors=[409, 415, 503], tags=["enrollment"])
def verify_likeness(likeness_id: str) -> Response:
    """Upgrade the caller's photo likeness to ``live``: multipart ``media`` (the selfie video) and
    ``challenge``; the face must match the likeness's template (else 422 ``face_mismatch``)."""
    now = utcnow()
    owner = caller()
    lk = likenesses_svc.owned_likeness(db(), owner, likeness_id, Action.LIKENESS_VERIFY)
    refuse_unknown_form_fields("challenge", "mirrored")
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
    with admission.expensive(rt.throttles, "enroll") as meter:
        video = challenge_video(uploaded_blobs(), meter)
        outcome = enrollment_svc.verify_live(db(), owner, ch, video, backend=rt.detectors.face_backend,
                                             index_now=lambda: rt.indexes.sync_index(db()),
                                             threshold=rt.detectors.match_threshold,
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
@operation(ok={200: s.DisputePage}, query=s.DisputeQuery, errors=[422], tags=["disputes"])
def list_disputes() -> Response:
    """``?state=open`` (default), ``resolved`` or ``all``; oldest first, paged (``limit``, ``cursor``; ``next``)."""
    state = request.args.get("state", "open")
    page = disputes_svc.page_disputes(db(), state, page_request(f"disputes:{state}"))
    return page_response("disputes", page, _dispute_admin_view)


@bp.get("/disputes/<dispute_id>")
@guard(Action.DISPUTE_READ)
@operation(ok={200: s.DisputeOut}, tags=["disputes"])
def get_dispute(dispute_id: str) -> Response:
    return jsonify(_dispute_admin_view(disputes_svc.get_dispute(db(), dispute_id)))


@bp.post("/disputes/<dispute_id>/resolve")
@guard(Action.DISPUTE_RESOLVE)
@operation(ok={200: s.DisputeOut}, json=s.DisputeResolution, errors=[409], tags=["disputes"])
def resolve_dispute(dispute_id: str) -> Response:
    """``{outcome, reason}``: the outcomes a dispute's kind allows are listed in its view (``outcomes``)."""
    admin = caller()
    body = json_body("outcome", "reason")
    d = withdrawals.resolve_dispute(db(), admin, disputes_svc.get_dispute(db(), dispute_id), body.get("outcome"),
                                    body.get("reason"))
    db().commit()
    runtime().indexes.sync_index(db())  # a resolution may have deleted a likeness
    return jsonify(_dispute_admin_view(d))


# -- protected public figures (admin) -----------------------------------------------------------------------------
@bp.get("/figures")
@guard(Action.FIGURE_LIST)
@operation(ok={200: s.FigurePage}, query=PageQuery, tags=["figures"])
def list_figures() -> Response:
    """By name, paged (``limit``, ``cursor``; ``next``)."""
    return page_response("figures", figures_svc.page_figures(db(), page_request("figures")), figure_view)


@bp.post("/figures")
@guard(Action.FIGURE_ADD)
@operation(ok={201: s.FigureAdded}, form=s.FigureForm, errors=[409, 415, 503], tags=["figures"])
def add_figure() -> tuple[Response, int]:
    """Multipart: ``name``, any number of ``alias`` fields, photos of the figure in ``media``. Likenesses already
    enrolled with the figure's face go to ``pending_review`` (``reviews_opened``)."""
    admin = caller()
    refuse_unknown_form_fields("name", "alias")
    rt = runtime()
    with admission.expensive(rt.throttles, "reference") as meter:
        images = reference_images(uploaded_blobs(), meter, what="a figure is added from photos")
        figure, reviews = figures_svc.add_figure(db(), admin.id, request.form.get("name"),
                                                 request.form.getlist("alias"), images, rt.detectors.face_backend,
                                                 lambda: rt.indexes.sync_index(db()),
                                                 rt.detectors.match_threshold)
    db().commit()
    return jsonify({**figure_view(figure), "reviews_opened": [d.id for d in reviews]}), 201


@bp.delete("/figures/<figure_id>")
@guard(Action.FIGURE_REMOVE)
@operation(ok={204: None}, tags=["figures"])
def remove_figure(figure_id: str) -> tuple[str, int]:
    admin = caller()
    figures_svc.remove_figure(db(), admin.id, figures_svc.get_figure(db(), figure_id))
    db().commit()
    return "", 204
