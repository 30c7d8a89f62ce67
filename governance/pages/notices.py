"""Takedown notices (docs/notices.md) for people in a browser: anyone reports a video released here (no account),
follows the notice by its private link and, filing for themselves, proves their face with the live challenge of
enrollment; reviewers read the queue and decide; the video's requester answers a takedown with a counter-notice.
Filing and the live challenge go through the API's own helpers (:func:`governance.notices.views.file_from`,
:func:`~governance.notices.views.issue_challenge`, :func:`~governance.notices.views.answer_challenge`), the rest
through :mod:`governance.notices.services`, as the API's views do.

The private link is the status page's address, ``/notices/<id>?token=...``: its answers are never cached and send
no ``Referer`` (``Referrer-Policy: no-referrer``), so the token does not leave the page it is in."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, make_response, redirect, render_template, request, url_for

from governance import authz, pagination
from governance.authz import Action
from governance.errors import InvalidInput
from governance.notices import services as notices_svc
from governance.notices.models import Notice, NoticeState, OnBehalfOf
from governance.notices.views import answer_challenge, file_from, issue_challenge
from governance.pages.site import bp, page
from governance.web import caller, db, page_request

#: The choices of "on whose behalf", as the form words them.
BEHALF = {OnBehalfOf.SELF.value: "Myself: the video shows my face",
          OnBehalfOf.MINOR_IN_CARE.value: "A child in my care",
          OnBehalfOf.DECEASED_RELATIVE.value: "A relative who has died",
          OnBehalfOf.UNABLE_TO_FILE.value: "Someone who cannot file this themselves"}
#: The report form's fields (the API's multipart fields; the file comes in ``media``).
FIELDS = ("contact", "on_behalf_of", "good_faith", "statement", "generation_id", "content_id")
#: What the green "Done" alert may say on the status page, by the code the redirect carries in ``done``.
DONE = {"filed": "your notice is filed", "face-found": "your face was found in the video: it is taken down",
        "face-not-found": "your face was not found in the video: a reviewer will decide the notice"}
#: The state of a notice, in words.
STATES = {NoticeState.OPEN.value: "open: in the review queue", NoticeState.TAKEN_DOWN.value: "taken down",
          NoticeState.REJECTED.value: "rejected: the video stays up",
          NoticeState.COUNTERED.value: "countered: back in the review queue",
          NoticeState.RESTORED.value: "restored: the video is back up"}
#: The review queue's filters, as the API's ``state`` takes them.
FILTERS = {"queue": "To decide (open and countered)", "all": "All", **{s.value: s.value.replace("_", " ")
                                                                         for s in NoticeState}}
#: A reviewer's outcomes, in words.
OUTCOMES = {"take_down": "Take the video down", "reject": "Reject the notice (the video stays up)",
            "restore": "Restore the video", "keep_down": "Keep the video down"}


def _private(resp: Response) -> Response:
    """An answer carrying a private token: never cached, and no ``Referer`` to leak it from."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _report_form(status: int = 200, **extra: Any) -> Response:
    resp = make_response(render_template("report.html", form=extra.pop("form", {}), behalf=BEHALF, **extra), status)
    return _private(resp)


@bp.get("/report")
@page(Action.NOTICE_FILE)
def report_form() -> Response:
    return _report_form(form={"generation_id": request.args.get("generation_id", "")})


def _filing() -> tuple[dict[str, Any], bool]:
    """The report form as the API's multipart filing: its fields (a checkbox left unticked sends nothing) and
    whether a file was chosen (a browser sends an empty part, with no file name, for a file input left empty)."""
    body: dict[str, Any] = {k: request.form.get(k, "").strip() for k in FIELDS if k in request.form}
    chosen = [f for f in request.files.getlist("media") if f.filename]
    return body, bool(chosen)


@bp.post("/report")
@page(Action.NOTICE_FILE)
def report_post() -> Response:
    """File the notice (the API's filing); bad input shows the form again with what to fix (422, nothing stored)."""
    try:
        notice, token = file_from(_filing, form=True)
    except InvalidInput as e:
        return _report_form(422, error=e.detail, form=request.form)
    return _private(redirect(url_for("pages.notice_status", notice_id=notice.id, token=token, done="filed"),
                             303))  # type: ignore[arg-type]


def _token() -> Any:
    return request.args.get("token")


def _status_url(notice: Notice, done: str) -> str:
    assert done in DONE, done
    return url_for("pages.notice_status", notice_id=notice.id, token=_token(), done=done)


@bp.get("/notices/<notice_id>")
@page(Action.NOTICE_STATUS)
def notice_status(notice_id: str) -> Response:
    """The filer's private link: the state, the timeline, the reviewers' deadline, and the live challenge when the
    notice is theirs to prove (filed for themselves and still open). A wrong token: 404, as the API."""
    notice = notices_svc.by_token(db(), notice_id, _token())
    view = notices_svc.filer_view(notice)
    link = url_for("pages.notice_status", notice_id=notice.id, token=_token(), _external=True)
    live = notice.on_behalf_of is OnBehalfOf.SELF and notice.state is NoticeState.OPEN
    return _private(make_response(render_template(
        "notice_status.html", notice=view, link=link, live=live, states=STATES,
        done=DONE.get(request.args.get("done", "")), token=_token())))


@bp.post("/notices/<notice_id>/challenge")
@page(Action.NOTICE_CHALLENGE)
def notice_challenge(notice_id: str) -> Response:
    """A new live challenge for the recorder on the status page (JSON, as the face page's)."""
    return _private(jsonify(issue_challenge(notice_id, _token())))


@bp.post("/notices/<notice_id>/face")
@page(Action.NOTICE_FACE)
def notice_face(notice_id: str) -> Response:
    """The recorder's upload (``challenge``, ``media``): back to the status page saying what was found; a failed
    live check is the error page (422), whose alert the recorder shows."""
    notice, outcome = answer_challenge(notice_id, _token())
    return _private(redirect(_status_url(notice, "face-found" if outcome.found else "face-not-found"),
                             303))  # type: ignore[arg-type]


@bp.get("/review/notices")
@page(Action.NOTICE_LIST)
def review_notices() -> str:
    """The review queue (``?state=`` as the API's, queue by default), oldest first, paged."""
    state = request.args.get("state") or "queue"
    found = notices_svc.page_queue(db(), state, page_request(f"notices:{state}"))
    nxt = pagination.next_link(request.path, request.args, found)
    return render_template("notices.html", notices=[notices_svc.reviewer_view(n) for n in found.items],
                           next=nxt, state=state, filters=FILTERS, states=STATES)


def _review_page(notice_id: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    notice = notices_svc.reviewed(db(), notice_id)
    may_decide = authz.principal(caller()) in authz.TABLE[Action.NOTICE_DECIDE].anyone
    return render_template("notice.html", notice=notices_svc.reviewer_view(notice), states=STATES,
                           outcomes={o: OUTCOMES[o] for o in notices_svc.OUTCOMES.get(notice.state, ())},
                           may_decide=may_decide, **extra), status


@bp.get("/review/notices/<notice_id>")
@page(Action.NOTICE_READ)
def review_notice(notice_id: str) -> tuple[str, int]:
    return _review_page(notice_id, done=request.args.get("done") == "decided")


@bp.post("/review/notices/<notice_id>/decision")
@page(Action.NOTICE_DECIDE)
def review_decide(notice_id: str) -> Response | tuple[str, int]:
    """An admin's decision (the API's); a missing outcome or reason shows the page again (422, nothing changed)."""
    try:
        notices_svc.decide(db(), caller(), notices_svc.reviewed(db(), notice_id, for_update=True),
                           request.form.get("outcome"), request.form.get("reason"))
    except InvalidInput as e:
        db().rollback()
        return _review_page(notice_id, 422, error=e.detail, form=request.form)
    db().commit()
    return redirect(url_for("pages.review_notice", notice_id=notice_id, done="decided"), 303)  # type: ignore[return-value]


def _counter_page(notice_id: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    notice = notices_svc.requested_by(db(), caller(), notice_id)
    return render_template("counter.html", notice=notices_svc.filer_view(notice), states=STATES,
                           open=notices_svc.counter_open(notice), **extra), status


@bp.get("/notices/<notice_id>/counter")
@page(Action.NOTICE_COUNTER)
def counter_form(notice_id: str) -> tuple[str, int]:
    """The requester's counter-notice form (anyone else: 404, as the API)."""
    return _counter_page(notice_id, done=request.args.get("done") == "countered")


@bp.post("/notices/<notice_id>/counter")
@page(Action.NOTICE_COUNTER)
def counter_post(notice_id: str) -> Response | tuple[str, int]:
    """The counter-notice (the API's): the ticked box is the API's ``good_faith: true``; bad input shows the form
    again (422, nothing changed); past the deadline or nothing to answer: 409."""
    body = {"statement": request.form.get("statement", ""), "good_faith": request.form.get("good_faith") == "true"}
    try:
        notices_svc.counter(db(), caller(), notice_id, body)
    except InvalidInput as e:
        db().rollback()
        return _counter_page(notice_id, 422, error=e.detail, form=request.form)
    db().commit()
    return redirect(url_for("pages.counter_form", notice_id=notice_id, done="countered"), 303)  # type: ignore[return-value]
