"""Home, sign-in and sign-out."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from governance.errors import Unauthenticated
from governance.pages import sessions
from governance.pages.site import bp, end_session, page, start_session
from governance.web import db


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a full URL)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.home")


@bp.get("/")
@page(None)
def home() -> str:
    return render_template("home.html")


@bp.get("/sign-in")
@page(None)
def sign_in() -> str:
    return render_template("sign_in.html", next=_safe_next(request.args.get("next")))


@bp.post("/sign-in")
@page(None)
def sign_in_post() -> Response | tuple[str, int]:
    """Exchange the account token typed in for a session cookie; a wrong token shows the form again (401)."""
    try:
        _account, secret = sessions.sign_in(db(), request.form.get("token", ""))
    except Unauthenticated as e:
        return render_template("sign_in.html", next=_safe_next(request.form.get("next")), error=e.detail), 401
    db().commit()
    start_session(secret)
    return redirect(_safe_next(request.form.get("next")), 303)  # type: ignore[return-value]


@bp.post("/sign-out")
@page(None)
def sign_out() -> Response:
    end_session()
    return redirect(url_for("pages.home"), 303)  # type: ignore[return-value]
