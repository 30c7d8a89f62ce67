"""HTTP views of takedown notices: filing (anyone), the filer's private link and live challenge, the review
queue (admins decide, regulators read) and the requester's counter-notice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from governance import admission
from governance.authz import Action
from governance.columns import iso
from governance.errors import InvalidInput, RateLimited
from governance.notices import schemas as s
from governance.notices import services as notices_svc
from governance.notices.models import Notice
from governance.openapi import NO_STORE, operation
from governance.ratelimit import retry_after
from governance.uploads import challenge_video, media_kind
from governance.web import (
    caller,
    db,
    guard,
    json_body,
    optional_caller,
    page_request,
    page_response,
    refuse_unknown_form_fields,
    runtime,
    uploaded_blobs,
)

bp = Blueprint("notices", __name__)  # nested in the v1 blueprint: /v1/...


def _form_or_json() -> tuple[dict[str, Any], bool]:
    """The filing's fields (JSON, or a multipart form with the file in ``media``) and whether a file came."""
    if request.mimetype == "multipart/form-data":
        body: dict[str, Any] = {k: request.form.get(k) for k in request.form}
        unknown = set(body) - {"contact", "on_behalf_of", "good_faith", "statement", "generation_id", "content_id"}
        if unknown:
            raise InvalidInput(f"unknown fields: {sorted(unknown)}")
        return body, bool(request.files.getlist("media"))
    return json_body("contact", "on_behalf_of", "good_faith", "statement", "generation_id", "content_id"), False


def file_from(read: Callable[[], tuple[dict[str, Any], bool]], *, form: bool) -> tuple[Notice, str]:
    """File a notice for the caller of this request (an account, or anonymous by address), committed: the rate
    limit is taken first, then ``read()`` gives the filing's fields and whether a file came in ``media`` (``form``:
    a multipart form's text fields, where ``good_faith`` is the text ``true``). Returns the notice and its private
    token (shown once). Raises what the API answers: 429, 422 (nothing stored), 409 (already taken down). Shared by
    ``POST /v1/notices`` and the report page."""
    account = optional_caller()
    client = f"account:{account.id}" if account else f"addr:{request.remote_addr}"
    wait = runtime().throttles.verify.acquire(client)  # anonymous: filings share the verification rate limit
    if wait:
        raise RateLimited(f"at most {runtime().settings.verify_per_minute} filings or verifications a minute per "
                          f"client; retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    body, uploaded = read()
    filing = notices_svc.Filing.parse(body, uploaded=uploaded, form=form)
    report = None
    if filing.video is None:
        from governance.verification.views import report_of

        with admission.expensive(runtime().throttles, "verify", client) as meter:
            blobs = uploaded_blobs()
            if len(blobs) != 1:
                raise InvalidInput("send exactly one file in the multipart field 'media'")
            media_kind(blobs[0])
            report = report_of(blobs[0], meter)
        gen, source = notices_svc.resolve_report(db(), report), "upload"
    else:
        gen, source = notices_svc.resolve_named(db(), *filing.video), filing.video[0]
    notice, token = notices_svc.file(db(), filing, gen, source, notices_svc.facts_of(db(), gen, report))
    db().commit()
    return notice, token


@bp.post("/notices")
@guard(Action.NOTICE_FILE)
@operation(ok={201: s.NoticeFiled}, json=s.NoticeIn, form=s.NoticeForm, errors=[409, 415, 429, 503], tags=["notices"],
           headers={201: NO_STORE})
def file_notice() -> tuple[Response, int]:
    """201 ``{id, state, token, link, ...}``: the private link is shown once. A video not released here: 422,
    nothing stored (an uploaded file is read like ``/v1/verify`` and never kept)."""
    notice, token = file_from(_form_or_json, form=request.mimetype == "multipart/form-data")
    resp = jsonify({**notices_svc.filer_view(notice), "token": token,
                    "link": f"/v1/notices/{notice.id}/status?token={token}"})
    resp.headers["Cache-Control"] = "no-store"
    return resp, 201


def _token() -> Any:
    return request.args.get("token") or request.headers.get("X-Notice-Token")


@bp.get("/notices/<notice_id>/status")
@guard(Action.NOTICE_STATUS)
@operation(ok={200: s.NoticeOut}, query=s.TokenQuery, tags=["notices"], headers={200: NO_STORE})
def notice_status(notice_id: str) -> Response:
    """The filer's private link (``?token=`` or the ``X-Notice-Token`` header): the state and the timeline."""
    resp = jsonify(notices_svc.filer_view(notices_svc.by_token(db(), notice_id, _token())))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/notices/<notice_id>/challenge")
@guard(Action.NOTICE_CHALLENGE)
@operation(ok={201: s.ChallengeOut}, query=s.TokenQuery, errors=[409], tags=["notices"], headers={201: NO_STORE})
def notice_challenge(notice_id: str) -> tuple[Response, int]:
    """201 ``{id, poses, expires_at, ttl_s}``: the live challenge of enrollment, for a filer on their own behalf."""
    resp = jsonify(issue_challenge(notice_id, _token()))
    resp.headers["Cache-Control"] = "no-store"
    return resp, 201


def issue_challenge(notice_id: str, token: Any) -> dict[str, Any]:
    """A live challenge for the filer of ``notice_id`` (its private ``token``), committed: ``{id, poses, expires_at,
    created_at, ttl_s}``. 404 a wrong token; 409 not filed for ``self`` or no longer open. Shared with the pages."""
    notice = notices_svc.by_token(db(), notice_id, token, for_update=True)
    ttl = runtime().settings.challenge_ttl_s
    ch = notices_svc.challenge(db(), notice, ttl)
    db().commit()
    return {"id": ch.id, "poses": list(ch.poses), "expires_at": iso(ch.expires_at), "created_at": iso(ch.created_at),
            "ttl_s": ttl}


@bp.post("/notices/<notice_id>/face")
@guard(Action.NOTICE_FACE)
@operation(ok={200: s.NoticeFaceOut}, query=s.TokenQuery, form=s.FaceForm, errors=[409, 415, 503], tags=["notices"])
def notice_face(notice_id: str) -> Response:
    """Multipart ``challenge`` and ``media`` (the selfie video performing it): the face found in the video takes
    it down at once; not found, the notice stays in the queue. A used or expired challenge: 409, nothing
    changed; a failed live check: 422, the challenge spent."""
    notice, outcome = answer_challenge(notice_id, _token())
    return jsonify({**notices_svc.filer_view(notice), "face_found": outcome.found})


def answer_challenge(notice_id: str, token: Any) -> tuple[Notice, notices_svc.FaceOutcome]:
    """This request's multipart ``challenge``, ``media`` (the selfie video) and optional ``mirrored`` answer the
    live challenge of ``notice_id``'s filer (its private ``token``), committed. 404 a wrong token or challenge;
    409 used or expired (nothing decoded); a failed live check: 422 raised after the spent challenge is committed.
    Shared with the pages."""
    notice = notices_svc.by_token(db(), notice_id, token, for_update=True)
    refuse_unknown_form_fields("challenge", "mirrored")
    ch = notices_svc.open_challenge(db(), notice, request.form.get("challenge"))
    raw = request.form.get("mirrored", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidInput(f"mirrored must be true or false, got {raw!r}")
    rt = runtime()
    path = rt.settings.videos_dir / f"{notice.generation_id}.mp4"
    with admission.expensive(rt.throttles, "enroll") as meter:
        video = challenge_video(uploaded_blobs(), meter)
        outcome = notices_svc.prove_face(db(), notice, ch, video, path, backend=rt.detectors.face_backend,
                                         threshold=rt.detectors.match_threshold, mirrored=raw in ("true", "1"))
    db().commit()
    if outcome.refusal is not None:
        raise outcome.refusal
    return notice, outcome


@bp.get("/notices")
@guard(Action.NOTICE_LIST)
@operation(ok={200: s.NoticePage}, query=s.NoticeListQuery, errors=[422], tags=["notices"])
def list_notices() -> Response:
    """``?state=queue`` (open and countered; the default), ``all`` or one state; oldest first, paged (``limit``,
    ``cursor``; ``next``)."""
    state = request.args.get("state")
    page = notices_svc.page_queue(db(), state, page_request(f"notices:{state or 'queue'}"))
    return page_response("notices", page, notices_svc.reviewer_view)


@bp.get("/notices/<notice_id>")
@guard(Action.NOTICE_READ)
@operation(ok={200: s.NoticeReviewed}, tags=["notices"])
def read_notice(notice_id: str) -> Response:
    return jsonify(notices_svc.reviewer_view(notices_svc.reviewed(db(), notice_id)))


@bp.post("/notices/<notice_id>/decision")
@guard(Action.NOTICE_DECIDE)
@operation(ok={200: s.NoticeReviewed}, json=s.NoticeDecision, errors=[409], tags=["notices"])
def decide_notice(notice_id: str) -> Response:
    """``{"outcome": "take_down"|"reject"|"restore"|"keep_down", "reason"}`` (which ones depend on the state)."""
    body = json_body("outcome", "reason")
    notice = notices_svc.decide(db(), caller(), notices_svc.reviewed(db(), notice_id, for_update=True),
                                body.get("outcome"), body.get("reason"))
    db().commit()
    return jsonify(notices_svc.reviewer_view(notice))


@bp.post("/notices/<notice_id>/counter")
@guard(Action.NOTICE_COUNTER)
@operation(ok={200: s.NoticeOut}, json=s.CounterNotice, errors=[409], tags=["notices"])
def counter_notice(notice_id: str) -> Response:
    """The requester of the video: ``{"statement", "good_faith": true}`` before the deadline."""
    body = json_body("statement", "good_faith")
    notice = notices_svc.counter(db(), caller(), notice_id, body)
    db().commit()
    return jsonify(notices_svc.filer_view(notice))
