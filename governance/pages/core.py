"""Home, sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from governance.errors import Unauthenticated
from governance.pages import sessions
from governance.pages.site import bp, end_session, page, start_session
from governance.web import db


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path (with its query) of a page of this site, or the home page. Anything
    else goes home: a full URL or ``//host``, a backslash, and any space or control character (browsers and
    Werkzeug drop tabs and newlines, turning ``/\\t/evil.example`` into ``//evil.example``, and a newline would
    split the ``Location`` header)."""
    home = url_for("pages.home")
    if not target or not all(33 <= ord(c) < 127 for c in target) or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return home
    try:
        current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:
        return home
    return target


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
