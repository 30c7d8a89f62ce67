"""My face (any account): enroll (photos, a video, or the live challenge recorded in the browser), each likeness's
status and mode, grants and their revocation, contacts, every video that shows the face (drafts and blocked ones
too) with a takedown button, and notifications. Every change goes through the helper the API's view uses
(:mod:`governance.likenesses.views`, :func:`governance.generations.views.take_down_video`)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, redirect, render_template, request, url_for

from governance import pagination
from governance.accounts import services as accounts_svc
from governance.accounts.models import Account
from governance.authz import Action
from governance.columns import iso
from governance.generations.services import generations as generations_svc
from governance.generations.views import generation_view, take_down_video
from governance.likenesses.services import likenesses as likenesses_svc
from governance.likenesses.views import (
    change_mode,
    enrolled_likeness,
    grant_to,
    new_challenge,
    revoke_grant,
    verification_fields,
)
from governance.pages.site import bp, page
from governance.restrictions import services as restrictions_svc
from governance.web import caller, db, runtime
from policies.consent import LikenessMode, Verification
from policies.restrictions import Category

_VIDEOS = 20  # the newest videos shown per likeness
_NOTES = 20  # the newest notifications shown

MODES = {LikenessMode.ONLY_ME.value: "Only me", LikenessMode.APPROVED.value: "People I approve",
         LikenessMode.MUTUALS.value: "People I approve and mutual contacts",
         LikenessMode.EVERYONE.value: "Everyone"}

#: What the green "Done" alert may say after a change, by the code the redirect carries in ``done``: a link cannot
#: put its own words there (an unknown code shows nothing).
DONE = {f"enrolled-{v.value}": f"enrolled ({v.value} verification)" for v in Verification} | {
    "mode": "mode changed", "guardian-asked": "your guardian was asked to approve the grant", "granted": "granted",
    "revoked": "revoked", "taken-down": "taken down", "contact-listed": "contact listed",
    "contact-removed": "contact removed", "notifications-read": "notifications marked read",
    "restricted": "restrictions saved"}

#: The categories an owner can restrict, in the order the form lists them, with their words.
CATEGORIES = {c.value: c.described for c in Category}


def _likenesses(me: Account) -> list[dict[str, Any]]:
    out = []
    for lk in likenesses_svc.owned_by(db(), me):
        grants = []
        for g in likenesses_svc.active_grants(db(), lk.id):
            who = db().get(Account, g.grantee_id)
            grants.append({"account": g.grantee_id, "name": who.name if who else g.grantee_id,
                           "since": iso(g.created_at)})
        req = pagination.PageRequest(f"likeness-generations:{lk.id}|{me.id}", runtime().keys.cursor_key,
                                     limit=_VIDEOS)
        videos = [generation_view(g, generations_svc.visibility_for(db(), me, g))
                  for g in generations_svc.page_for_likeness_owner(db(), lk, req).items]
        _lk, restricted = restrictions_svc.read(db(), me, lk.id)
        out.append({"id": lk.id, "display_name": lk.display_name, "mode": lk.mode.value,
                    "created_at": iso(lk.created_at), "grants": grants, "videos": videos,
                    "restrictions": {**restricted.to_dict(),
                                     "draft_approval": restrictions_svc.draft_approval(db(), lk.id)},
                    **verification_fields(lk)})
    return out


@bp.get("/me/face")
@page(Action.LIKENESS_LIST)
def my_face() -> str:
    me = caller()
    notes = accounts_svc.list_notifications(db(), me.id, limit=_NOTES)
    contacts = accounts_svc.list_contacts(db(), me)
    return render_template("face.html", likenesses=_likenesses(me), modes=MODES, notes=notes,
                           contacts=contacts, categories=CATEGORIES, done=DONE.get(request.args.get("done", "")))


def _back(done: str) -> Response:
    """Back to the page, its "Done" alert saying :data:`DONE`'s message for the code ``done``."""
    assert done in DONE, done
    return redirect(url_for("pages.my_face", done=done), 303)  # type: ignore[return-value]


@bp.post("/me/face/enroll")
@page(Action.LIKENESS_ENROLL)
def face_enroll() -> Response:
    """Photos or a video (``media``), or the live challenge's recording with ``challenge``: the API's enrollment."""
    lk = enrolled_likeness()
    return _back(f"enrolled-{lk.verification.value}")


@bp.post("/me/face/challenge")
@page(Action.LIKENESS_CHALLENGE)
def face_challenge() -> Response:
    """A new live challenge for the recorder on the page (JSON: ``id``, ``poses``, ``ttl_s``...)."""
    resp = jsonify(new_challenge())
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/me/face/<likeness_id>/mode")
@page(Action.LIKENESS_MODE)
def face_mode(likeness_id: str) -> Response:
    change_mode(likeness_id, request.form.get("mode"))
    return _back("mode")


@bp.post("/me/face/<likeness_id>/restrictions")
@page(Action.LIKENESS_RESTRICTIONS_SET)
def face_restrictions(likeness_id: str) -> Response:
    """The form as the API's body (``PUT /v1/likenesses/<id>/restrictions``): ``categories`` (checkboxes),
    ``phrases`` (one per line; blank lines dropped), ``note``, ``draft_approval`` (a checkbox). The service's
    refusal (422, naming what is wrong) is the page's, and nothing is stored then."""
    f = request.form
    body = {"categories": f.getlist("categories"),
            "phrases": [line.strip() for line in f.get("phrases", "").splitlines() if line.strip()],
            "note": f.get("note", ""), "draft_approval": f.get("draft_approval") == "on"}
    restrictions_svc.update(db(), caller(), likeness_id, body)
    db().commit()
    return _back("restricted")


@bp.post("/me/face/<likeness_id>/grants")
@page(Action.LIKENESS_GRANT)
def face_grant(likeness_id: str) -> Response:
    body, status = grant_to(likeness_id, request.form.get("account", "").strip())
    return _back("guardian-asked" if status == 202 else "granted")


@bp.post("/me/face/<likeness_id>/grants/<account_ref>/revoke")
@page(Action.LIKENESS_REVOKE)
def face_revoke(likeness_id: str, account_ref: str) -> Response:
    revoke_grant(likeness_id, account_ref)
    return _back("revoked")


@bp.post("/me/face/videos/<generation_id>/take-down")
@page(Action.GENERATION_TAKEDOWN)
def face_take_down(generation_id: str) -> Response:
    take_down_video(generation_id, request.form.get("reason") or None)
    return _back("taken-down")


@bp.post("/me/contacts")
@page(Action.CONTACT_ADD)
def face_contact_add() -> Response:
    """List an account by name (the page says the same whether the name exists or not, as the API does)."""
    accounts_svc.add_contact(db(), caller(), request.form.get("name", "").strip())
    db().commit()
    return _back("contact-listed")


@bp.post("/me/contacts/<name>/remove")
@page(Action.CONTACT_REMOVE)
def face_contact_remove(name: str) -> Response:
    accounts_svc.remove_contact(db(), caller(), name)
    db().commit()
    return _back("contact-removed")


@bp.post("/me/notifications/read")
@page(Action.NOTIFICATION_READ)
def face_notifications_read() -> Response:
    accounts_svc.mark_read(db(), caller())
    db().commit()
    return _back("notifications-read")
