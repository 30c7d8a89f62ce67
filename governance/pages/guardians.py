"""Guardians (admins): mark an account a minor's and link its guardian, unlink a guardian, end a minority when its
holder came of age. Each form calls what the API's view calls (:func:`governance.guardians.views.link_guardian_of`,
:func:`governance.guardians.services.unlink`, :func:`~governance.guardians.services.end_minority`), with the same
refusals: an unknown account 404, a bad guardian or reason 422 (nothing written), an admin acting on their own
account 403. Who is a minor's and whose guardian is whose is in the audit log and the accounts' own pages; this
page only acts."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from governance.authz import Action
from governance.guardians import services as guardians_svc
from governance.guardians.views import link_guardian_of
from governance.pages.site import bp, page
from governance.web import caller, db

#: The "Done" alert's words, by the code the redirect carries in ``done`` (an unknown code shows nothing).
DONE = {"linked": "the account is a minor's, and its guardian is linked (both were told)",
        "unlinked": "the guardian is unlinked (they were told)",
        "majority": "the account is no longer a minor's (holder and guardian were told)"}


def _back(done: str) -> Response:
    assert done in DONE, done
    return redirect(url_for("pages.admin_guardians", done=done), 303)  # type: ignore[return-value]


@bp.get("/admin/guardians")
@page(Action.GUARDIAN_LINK)
def admin_guardians() -> str:
    return render_template("admin_guardians.html", done=DONE.get(request.args.get("done", "")))


@bp.post("/admin/guardians/link")
@page(Action.GUARDIAN_LINK)
def admin_guardians_link() -> Response:
    """``account`` and ``guardian`` (names or ids): the API's ``PUT /v1/accounts/<ref>/guardian``."""
    link_guardian_of(request.form.get("account", "").strip(), request.form.get("guardian", "").strip())
    return _back("linked")


@bp.post("/admin/guardians/unlink")
@page(Action.GUARDIAN_UNLINK)
def admin_guardians_unlink() -> Response:
    """``account``: the API's ``DELETE /v1/accounts/<ref>/guardian``."""
    guardians_svc.unlink(db(), caller(), request.form.get("account", "").strip())
    db().commit()
    return _back("unlinked")


@bp.post("/admin/guardians/majority")
@page(Action.MINORITY_END)
def admin_guardians_majority() -> Response:
    """``account`` and ``reason`` (how the holder's age was checked): the API's ``POST /v1/accounts/<ref>/majority``."""
    guardians_svc.end_minority(db(), caller(), request.form.get("account", "").strip(), request.form.get("reason"))
    db().commit()
    return _back("majority")
