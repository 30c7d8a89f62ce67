"""HTTP API v1, generations: requests, their state as each reader may see it, held generations' reviews, the
consent record, the download and takedowns; and the generations a likeness is in. Views parse, call one service,
commit, serialize; the gate itself runs in :mod:`governance.generations.pipeline`."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlmodel import Session

from governance import metrics
from governance.accounts.models import Account
from governance.authz import Action
from governance.characters.views import label_font
from governance.columns import iso
from governance.errors import Conflict, Gone
from governance.generations import schemas as s
from governance.generations.models import Generation, GenerationReview, GenerationState
from governance.generations.services import consent_record as consent_record_svc
from governance.generations.services import generations as generations_svc
from governance.generations.services import reviews as reviews_svc
from governance.generations.services.generations import Visibility
from governance.likenesses.services import likenesses as likenesses_svc
from governance.openapi import (
    DOWNLOAD_ERRORS,
    DOWNLOAD_HEADERS,
    DOWNLOAD_MEDIA,
    NO_STORE,
    NOT_MODIFIED,
    PageQuery,
    operation,
)
from governance.remix import services as remix_svc
from governance.runtime import require_free_space
from governance.web import caller, db, guard, json_body, page_request, page_response, runtime, send_download
from governance.workflows import takedowns

log = logging.getLogger("governance.generations.pipeline")  # the gate's stage lines, the precheck's included
bp = Blueprint("generations", __name__)  # nested in the v1 blueprint (governance.app): /v1/...

_LIKENESS_ID = re.compile(r"\blk_[0-9a-f]{16}\b")
_GRANT_ID = re.compile(r"\bgr_[0-9a-f]{16}\b")
OTHER_PERSON = "another enrolled person"


def generation_view(gen: Generation, seen: Visibility) -> dict[str, Any]:
    """The generation as its reader may see it (:func:`~governance.generations.services.generations.visibility_for`):
    any likeness id the reader may not know, in the lists and in the reasons, becomes "another enrolled person", so
    that a generation's requester or a likeness owner in it learns nobody else's likeness (nor, without
    ``seen.grants``, any grant id)."""
    visible = seen.likenesses

    def text(s: str) -> str:
        if visible is not None:
            s = _LIKENESS_ID.sub(lambda m: m.group(0) if m.group(0) in visible else OTHER_PERSON, s)
        return s if seen.grants else _GRANT_ID.sub("a grant", s)

    def decision(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, **{k: text(d[k]) for k in ("reason", "rule") if isinstance(d.get(k), str)}}

    faces = [f if visible is None or f.get("likeness") in visible else {**f, "likeness": None}
             for f in gen.faces_found]
    out: dict[str, Any] = {
        "id": gen.id, "state": gen.state.value, "reasons": [text(r) for r in gen.reasons], "prompt": gen.prompt,
        "seed": gen.seed, "likenesses": [x for x in gen.likeness_ids if visible is None or x in visible],
        "decisions": [decision(d) for d in gen.decisions], "faces_found": faces, "created_at": iso(gen.created_at),
        "taken_down": gen.taken_down_at is not None,
    }
    if gen.content_id:
        out["content_id"] = gen.content_id
    if gen.released_at:
        out["released_at"] = iso(gen.released_at)
    return out


def _view_for(reader: Account, gen: Generation) -> dict[str, Any]:
    return generation_view(gen, generations_svc.visibility_for(db(), reader, gen))


def review_view(row: GenerationReview, *, with_frames: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"likeness": row.likeness_id, "decision": row.decision, "distance": round(row.distance, 4),
                           "first_frame": row.first_frame, "last_frame": row.last_frame, "pose": row.pose,
                           "box": list(row.box), "created_at": iso(row.created_at)}
    if row.decided_at is not None:
        out["decided_at"] = iso(row.decided_at)
    if with_frames:
        out["frames"] = list(row.frames)
    return out


# -- generations -----------------------------------------------------------------------------------------
@bp.post("/generations")
@guard(Action.GENERATION_CREATE)
@operation(ok={202: s.GenerationAccepted}, json=s.GenerationCreate, errors=[404, 409, 429, 507], tags=["generations"],
           headers={202: {"Location": "/v1/generations/<id>: where to follow the generation"}})
def create_generation() -> tuple[Response, int]:
    gen = start_generation(caller(), json_body("prompt", "likenesses", "seed", "remix_of"))
    resp = jsonify({"id": gen.id, "state": gen.state.value, "reasons": gen.reasons})
    resp.headers["Location"] = f"/v1/generations/{gen.id}"
    return resp, 202


def start_generation(requester: Account, body: dict[str, Any]) -> Generation:
    """Request a generation (``body``: ``prompt``, ``likenesses``, ``seed``, ``remix_of``), commit its precheck and
    hand it to the pipeline when it passed (the API's and the generate page's one way in). Raises what
    :func:`~governance.generations.services.generations.request_generation` raises, and 507 on a full disk."""
    rt = runtime()
    require_free_space(rt.settings)  # 507 rather than a job that fails on a full disk
    started = time.monotonic()
    gen = generations_svc.request_generation(db(), requester, body.get("prompt"), body.get("likenesses"),
                                             body.get("seed"), default_quota=rt.settings.daily_quota,
                                             restriction_hold=rt.settings.restriction_model_hold,
                                             remix_of=body.get("remix_of"), label=label_font(),
                                             asynchronously=rt.settings.request_commit == "asynchronous")
    db().commit()
    seconds = time.monotonic() - started
    metrics.decisions(gen.decisions)
    log.info("generation %s: precheck done in %.2f s: %s", gen.id, seconds, gen.state.value,
             extra={"generation_id": gen.id, "stage": "precheck", "seconds": round(seconds, 3),
                    "state": gen.state.value})
    if gen.state is GenerationState.PRECHECKED:
        rt.pipeline.submit(gen.id)
    else:
        metrics.finished(gen.state.value, "precheck", None)
    return gen


@bp.get("/generations")
@guard(Action.GENERATION_LIST)
@operation(ok={200: s.GenerationPage}, query=s.GenerationQuery, tags=["generations"])
def list_generations() -> Response:
    """Newest first, paged (``limit``, ``cursor``; ``next``). A regulator lists everyone's generations, anyone else
    those they requested; ``state``, ``since`` (inclusive) and ``until`` (exclusive) filter by state and by when
    they were requested."""
    reader = caller()
    filters = generations_svc.GenerationFilter.parse(request.args.get("state"), request.args.get("since"),
                                                     request.args.get("until"))
    page = generations_svc.list_generations(db(), reader, page_request("generations"), filters)
    return page_response("generations", page, lambda g: _view_for(reader, g))


@bp.get("/generations/<generation_id>")
@guard(Action.GENERATION_READ)
@operation(ok={200: s.GenerationOut}, tags=["generations"])
def get_generation(generation_id: str) -> Response:
    gen = generations_svc.generation_for(db(), caller(), generation_id, Action.GENERATION_READ)
    return jsonify(_view_for(caller(), gen))


@bp.get("/generations/<generation_id>/review")
@guard(Action.GENERATION_REVIEWS)
@operation(ok={200: s.ReviewsOut}, tags=["held generations"])
def generation_reviews(generation_id: str) -> Response:
    """The questions about a held generation put to the caller (the owner of a likeness it may show), with
    the frames the face is in (base64 JPEG); nobody else's."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_REVIEWS)
    return _reviews_answer(account, gen, with_frames=True)


@bp.post("/generations/<generation_id>/review")
@guard(Action.GENERATION_REVIEW)
@operation(ok={200: s.ReviewsOut}, json=s.ReviewDecision, errors=[409], tags=["held generations"])
def review_generation(generation_id: str) -> Response:
    """``{"decision": "confirm"}`` (it is me: blocked) or ``{"decision": "dismiss"}`` (not me: the gate goes on,
    consent checked again at every stage)."""
    account, gen, _ = answer_held(generation_id, Action.GENERATION_REVIEW, reviews_svc.decide)
    return _reviews_answer(account, gen, with_frames=False)


def answer_held(generation_id: str, action: Action,
                decide: Callable[[Session, Account, Generation, Any], bool | None],
                decision: Callable[[], Any] | None = None) -> tuple[Account, Generation, bool | None]:
    """A held generation's question answered (a face's review, a prompt's approval, a draft's): the caller's
    decision through ``decide``, committed, and the job submitted when ``decide`` says it must run again
    (True). The decision is read, once the generation is found, by ``decision`` (the pages: their form's field),
    by default the API's JSON body ``{"decision"}``. Returns the caller, the generation and what ``decide``
    returned."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, action)
    answer = decision() if decision is not None else json_body("decision").get("decision")
    submit = decide(db(), account, gen, answer)
    db().commit()
    if submit:
        runtime().pipeline.submit(gen.id)
    return account, gen, submit


def _reviews_answer(account: Account, gen: Generation, *, with_frames: bool) -> Response:
    """The questions about ``gen`` put to ``account``, as both review endpoints answer them."""
    rows = reviews_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "reviews": [review_view(r, with_frames=with_frames) for r in rows]})


@bp.get("/generations/<generation_id>/consent-record")
@guard(Action.GENERATION_CONSENT_RECORD)
@operation(ok={200: s.ConsentRecordOut}, errors=[409], tags=["generations"], headers={200: NO_STORE})
def consent_record(generation_id: str) -> Response:
    """The openings of a sealed generation's public commitments: all of them for regulators and admins, their
    own to the requester and to owners of a likeness in it (404 to anyone who may not see the generation)."""
    actor = caller()
    gen = generations_svc.generation_for(db(), actor, generation_id, Action.GENERATION_CONSENT_RECORD)
    body = consent_record_svc.open_record(db(), actor, gen)
    db().commit()  # the audit event of the opening
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/generations/<generation_id>/video")
@guard(Action.GENERATION_VIDEO)
@operation(media=DOWNLOAD_MEDIA, ok=NOT_MODIFIED, errors=[409, 410, *DOWNLOAD_ERRORS], headers=DOWNLOAD_HEADERS,
           tags=["generations"])
def download(generation_id: str) -> Response:
    return video_download(generation_id)


def video_download(generation_id: str) -> Response:
    """The caller's released video as an attachment (``<id>.mp4``, its SHA-256 as the ETag); refusals as
    :func:`sealed_video`. The API's download and the pages' both answer with it."""
    gen, path = sealed_video(generation_id)
    return send_download(path, mimetype="video/mp4", download_name=f"{gen.id}.mp4", etag=gen.video_sha256 or True)


def sealed_video(generation_id: str) -> tuple[Generation, Path]:
    """The caller's released generation and its sealed file: 404 as for reading it, 410 once taken down or gone
    from storage, 409 (with the state and reasons) while it is not released."""
    gen = generations_svc.generation_for(db(), caller(), generation_id, Action.GENERATION_VIDEO)
    _ensure_downloadable(gen)
    path = (runtime().settings.videos_dir / f"{gen.id}.mp4").resolve()
    if not path.is_file():
        raise Gone(f"the video of generation {gen.id} is no longer stored")
    return gen, path


def _ensure_downloadable(gen: Generation) -> None:
    if gen.taken_down_at is not None:
        raise Gone(f"generation {gen.id} was taken down")
    if gen.state is not GenerationState.RELEASED:
        raise Conflict(f"generation {gen.id} is {gen.state.value}; only released videos can be downloaded",
                       state=gen.state.value, reasons=gen.reasons)


@bp.delete("/generations/<generation_id>")
@guard(Action.GENERATION_TAKEDOWN)
@operation(ok={204: None}, json=s.Takedown, query=s.TakedownQuery, optional_body=True, errors=[409, 410],
           tags=["generations"])
def take_down(generation_id: str) -> tuple[str, int]:
    """Take a video down. An admin who is not in it and did not request it must say why (JSON
    ``{"reason": ...}`` or ``?reason=``): the reason is audited and sent to everyone involved."""
    actor = caller()
    generations_svc.generation_for(db(), actor, generation_id, Action.GENERATION_TAKEDOWN)
    body = json_body("reason") if request.get_data(cache=True) else {}
    take_down_video(generation_id, body.get("reason", request.args.get("reason")))
    return "", 204


def take_down_video(generation_id: str, reason: Any = None) -> None:
    """Take the caller's video down (see :func:`take_down`), committed; its file and the remixes the takedown
    withdrew are deleted. 404 for a generation the caller may not see."""
    actor = caller()
    gen = generations_svc.generation_for(db(), actor, generation_id, Action.GENERATION_TAKEDOWN)
    takedowns.take_down(db(), actor, gen, reason)
    db().commit()
    (runtime().settings.videos_dir / f"{gen.id}.mp4").unlink(missing_ok=True)
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down


@bp.get("/likenesses/<likeness_id>/generations")
@guard(Action.LIKENESS_GENERATIONS)
@operation(ok={200: s.GenerationPage}, query=PageQuery, tags=["likenesses"])
def likeness_generations(likeness_id: str) -> Response:
    lk = likenesses_svc.owned_likeness(db(), caller(), likeness_id, Action.LIKENESS_GENERATIONS)
    page = generations_svc.page_for_likeness_owner(db(), lk, page_request(f"likeness-generations:{lk.id}"))
    return page_response("generations", page, lambda g: _view_for(caller(), g))
