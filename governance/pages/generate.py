"""Generate (creators): request a generation, watch its stages (the status fragment is polled by htmx every
second until the gate's answer is final), read the reasons when it is blocked or held, download it once released.
The request and the download go through the API's own helpers (:func:`governance.generations.views.start_generation`,
:func:`~governance.generations.views.sealed_video`), the reading through the same view of a generation the API
serializes (:func:`~governance.generations.views.generation_view`)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
from flask import Response, redirect, render_template, request, url_for

from governance import pagination
from governance.authz import Action
from governance.columns import utcnow
from governance.errors import Gone, InvalidInput
from governance.generations.models import NOTICE_ID_PREFIX, GenerationState
from governance.generations.services import generations as generations_svc
from governance.generations.views import generation_view, sealed_video, start_generation, video_download
from governance.likenesses.services import likenesses as likenesses_svc
from governance.pages.site import bp, page
from governance.web import caller, db, runtime

#: The gate's stages in order, as the page draws them.
STAGES = (GenerationState.REQUESTED, GenerationState.PRECHECKED, GenerationState.GENERATING,
          GenerationState.SCANNING, GenerationState.SEALING, GenerationState.RELEASED)
_RECENT = 10


def _recent() -> list[dict[str, Any]]:
    me = caller()
    req = pagination.PageRequest(f"generations|{me.id}", runtime().keys.cursor_key, limit=_RECENT)
    return [generation_view(g, generations_svc.visibility_for(db(), me, g))
            for g in generations_svc.list_generations(db(), me, req).items]


def _form_page(form: Any, status: int = 200, **extra: Any) -> tuple[str, int]:
    """The generate page: the form, the caller's own likenesses to pick from, today's quota and recent requests."""
    me = caller()
    quota = generations_svc.quota_for(db(), me, default_quota=runtime().settings.daily_quota)
    own = [lk for lk in likenesses_svc.owned_by(db(), me)]
    return render_template("generate.html", recent=_recent(), form=form, quota=quota, own=own,
                           picked=set(form.getlist("likenesses") if hasattr(form, "getlist") else []),
                           **extra), status


@bp.get("/generate")
@page(Action.GENERATION_CREATE)
def generate_form() -> tuple[str, int]:
    return _form_page({})


def _form() -> dict[str, Any]:
    """The form as the API's body: likeness ids (comma or space separated), and an optional whole-number seed."""
    f = request.form
    typed = [x for x in f.get("other_likenesses", "").replace(",", " ").split() if x]
    likenesses = list(dict.fromkeys([*f.getlist("likenesses"), *typed]))
    body: dict[str, Any] = {"prompt": f.get("prompt", ""), "likenesses": likenesses}
    seed = f.get("seed", "").strip()
    if seed:
        try:
            body["seed"] = int(seed)
        except ValueError as e:
            raise InvalidInput(f"the seed must be a whole number, got {seed!r}") from e
    return body


@bp.post("/generate")
@page(Action.GENERATION_CREATE)
def generate_post() -> Response | tuple[str, int]:
    try:
        gen = start_generation(caller(), _form())
    except InvalidInput as e:  # the form again, with what to fix
        return _form_page(request.form, 422, error=e.detail)
    return redirect(url_for("pages.generation", generation_id=gen.id), 303)  # type: ignore[return-value]


def _stages(state: str) -> list[tuple[str, str]]:
    """``(stage, done|current|todo|failed)`` for each stage of the gate; a blocked or held generation ends with
    its state (the gate's reasons say at which check)."""
    order = [s.value for s in STAGES]
    if state in order:
        at = order.index(state)
        return [(s, "done" if i < at or state == "released" else "current" if i == at else "todo")
                for i, s in enumerate(order)]
    return [(order[0], "done"), (state, "failed" if state == "blocked" else "current")]


#: How often the status fragment asks again (seconds): every second while the gate works on the generation; while
#: it is held for a person (up to days: ``GOVERNANCE_DRAFT_APPROVAL_TTL_S``), a tenth of the time it has been held,
#: from :data:`POLL_HELD_MIN_S` to :data:`POLL_HELD_MAX_S` (a tab left open asks 144 times a day, not 86,400).
POLL_ACTIVE_S, POLL_HELD_MIN_S, POLL_HELD_MAX_S = 1, 15, 600


def poll_seconds(state: GenerationState, final: bool, held_for_s: float) -> int | None:
    """Seconds until the status fragment asks again, None once the answer is final (see :data:`POLL_ACTIVE_S`).

    >>> poll_seconds(GenerationState.SCANNING, False, 0), poll_seconds(GenerationState.HELD, False, 30)
    (1, 15)
    >>> poll_seconds(GenerationState.HELD, False, 3600), poll_seconds(GenerationState.HELD, False, 86400)
    (360, 600)
    >>> poll_seconds(GenerationState.RELEASED, True, 0) is None
    True
    """
    if final:
        return None
    if state is not GenerationState.HELD:
        return POLL_ACTIVE_S
    return int(min(POLL_HELD_MAX_S, max(POLL_HELD_MIN_S, held_for_s / 10)))


def _view(generation_id: str) -> dict[str, Any]:
    me = caller()
    gen = generations_svc.generation_for(db(), me, generation_id, Action.GENERATION_READ)
    out = generation_view(gen, generations_svc.visibility_for(db(), me, gen))
    out["final"] = gen.state.terminal or gen.taken_down_at is not None
    out["can_download"] = gen.state is GenerationState.RELEASED and gen.taken_down_at is None
    out["stages"] = _stages(gen.state.value)
    # taken down on a takedown notice: its requester may answer it (the counter-notice page)
    out["notice"] = gen.taken_down_by if gen.taken_down_by and gen.taken_down_by.startswith(NOTICE_ID_PREFIX) \
        and gen.requester_id == me.id else None
    since = gen.updated_at if gen.updated_at.tzinfo else gen.updated_at.replace(tzinfo=UTC)  # SQLite: naive UTC
    out["poll_s"] = poll_seconds(gen.state, out["final"], (utcnow() - since).total_seconds())
    return out


@bp.get("/generations/<generation_id>")
@page(Action.GENERATION_READ)
def generation(generation_id: str) -> str:
    return render_template("generation.html", gen=_view(generation_id))


@bp.get("/generations/<generation_id>/status")
@page(Action.GENERATION_READ)
def generation_status(generation_id: str) -> str:
    """The status fragment htmx swaps in; it stops asking once the answer is final."""
    return render_template("_generation_status.html", gen=_view(generation_id))


#: The thumbnail: the frame this far into the video (frames), at most this many pixels on its longer side.
THUMB_FRAME, THUMB_SIDE = 12, 240


@bp.get("/generations/<generation_id>/thumbnail.jpg")
@page(Action.GENERATION_VIDEO)
def generation_thumbnail(generation_id: str) -> Response:
    """A small JPEG of a released video (whoever may download it may see it; 409 while not released, 410 once taken
    down), decoded from the sealed file: nothing more is stored. Its ETag is the video's SHA-256, so a browser that
    holds it gets a 304 without the video being decoded again."""
    import cv2

    from media.video import iter_frames

    gen, path = sealed_video(generation_id)
    etag = gen.video_sha256 or gen.id
    if etag in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": "private, max-age=300"})
    frame = None
    for _index, read in iter_frames(path, max_frames=THUMB_FRAME):  # the last one read is the thumbnail's
        frame = read
    if frame is None:
        raise Gone(f"the video of generation {generation_id} has no frame to show")
    h, w = frame.shape[:2]
    k = THUMB_SIDE / max(h, w)
    small = cv2.resize(frame, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(small[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise Gone(f"the video of generation {generation_id} has no frame to show")
    resp = Response(jpeg.tobytes(), mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "private, max-age=300"
    resp.set_etag(etag)
    return resp


@bp.get("/generations/<generation_id>/video")
@page(Action.GENERATION_VIDEO)
def generation_video(generation_id: str) -> Response:
    return video_download(generation_id)
