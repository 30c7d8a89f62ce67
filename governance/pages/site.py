"""The pages' plumbing: the blueprint, the signed session cookie, CSRF tokens, the page guard and the one place a
page's error becomes an HTML answer.

A browser signs in once with its account token (:mod:`governance.pages.sessions`); Flask's session cookie,
signed with ``keys/session.key`` (itsdangerous, HMAC), then carries the session's random secret. The cookie is
HttpOnly, SameSite=Lax, and Secure whenever the request came over HTTPS. The API never reads it: its views
authenticate the ``Authorization: Bearer`` header only (:func:`governance.web.current_account`).

Every form carries a CSRF token (Flask-WTF's ``generate_csrf``/``validate_csrf``, kept in the same signed
session, docs/adr/0014-pages.md); :func:`page` refuses an unsafe request without a valid one (400) before the
view runs. Who may open a page is :data:`governance.authz.TABLE`'s answer for the action of the service the page
calls, exactly as for the API.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, g, make_response, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from governance import authz
from governance.accounts.models import Account
from governance.authz import Action
from governance.errors import BadRequest, Unauthenticated, problem_for
from governance.keyfiles import load_or_create_secret
from governance.pages import sessions
from governance.web import db, runtime

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/pages")

#: The session cookie's name.
COOKIE = "consentgate_session"
#: Bytes of the key the session cookie (and the CSRF token in it) is signed with (``keys/session.key``).
SESSION_KEY_BYTES = 32
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: The vendored htmx, pinned: its file name and SHA-256 (tests/pages/test_site.py checks the file against it).
HTMX_FILE = "htmx-2.0.4.min.js"
HTMX_SHA256 = "e209dda5c8235479f3166defc7750e1dbcd5a5c1808b7792fc2e6733768fb447"


class _Cookies(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure on every answer to a request that came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or super().get_cookie_secure(app))


def init_app(app: Flask) -> None:
    """Key the session cookie, set its attributes, and register the pages at ``/``."""
    keys = app.extensions["consentgate"].settings.keys_dir
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    app.secret_key = load_or_create_secret(keys / "session.key", lambda: os.urandom(SESSION_KEY_BYTES))
    app.session_interface = _Cookies()
    app.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=sessions.MAX_AGE, WTF_CSRF_TIME_LIMIT=None)
    app.jinja_env.globals.update(csrf_token=generate_csrf, htmx_file=HTMX_FILE,
                                 has_page=lambda endpoint: endpoint in app.view_functions)
    app.register_blueprint(bp)


def signed_in() -> Account | None:
    """The account this browser signed in as, or None (no cookie, a session signed out or expired). Read once per
    request."""
    if "page_account" not in g:
        secret = session.get("sid")
        g.page_account = sessions.account_for(db(), secret) if isinstance(secret, str) else None
        db().commit()  # an expired session found here is ended for good
    account: Account | None = g.page_account
    return account


def start_session(secret: str) -> None:
    session.clear()  # a fresh session (and CSRF token) at every sign-in: no fixation
    session.permanent = True
    session["sid"] = secret


def end_session() -> None:
    secret = session.get("sid")
    if isinstance(secret, str):
        sessions.sign_out(db(), secret)
        db().commit()
    session.clear()


View = TypeVar("View", bound=Callable[..., Any])


def page(action: Action | None) -> Callable[[View], View]:
    """Guard a page: a caller :func:`governance.authz.admit` refuses for ``action`` is sent to sign in (anonymous)
    or shown 403; ``None`` marks a page open to anyone (home, sign-in, verify). An unsafe method needs the form's
    (or the ``X-CSRFToken`` header's) CSRF token. The action is kept on the view (``authz_action``) so a test can
    tell every page is guarded; the admitted caller is on ``g.caller``, as :func:`governance.web.caller` reads it."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if request.method not in _SAFE:
                try:
                    validate_csrf(request.form.get("csrf_token") or request.headers.get("X-CSRFToken"))
                except ValidationError as e:
                    raise BadRequest(f"the form's security token is missing or stale ({e}); reload the page "
                                     "and send it again") from e
            account = signed_in()
            g.caller = authz.admit(action, account) if action is not None else account
            return view(*args, **kwargs)

        guarded.authz_action = action  # type: ignore[attr-defined]
        guarded.page_guarded = True  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


@bp.app_context_processor
def _context() -> dict[str, Any]:
    return {"me": g.get("page_account") if request.blueprint == "pages" else None}


@bp.errorhandler(Exception)
def _error(e: Exception) -> Response | tuple[str, int]:
    """A page's error as a page: sign in when it needs an account, otherwise the problem's title and detail
    with its status (the same mapping as the API's problem+json), and, when the problem says when to come back
    (``retry_after``, seconds: a rate limit, a quota), the API's ``Retry-After`` header and a line saying when."""
    if isinstance(e, Unauthenticated) and request.method in _SAFE:
        return redirect(url_for("pages.sign_in", next=request.full_path.rstrip("?")))  # type: ignore[return-value]
    if isinstance(e, CSRFError):
        e = BadRequest(str(e.description))
    found = problem_for(e, max_upload_bytes=runtime().settings.max_upload_bytes)
    if not found.expected:
        from flask import current_app

        current_app.logger.error("unhandled error on a page (%s)", found.type_, exc_info=e)
    retry = found.extra.get("retry_after")
    resp = make_response(render_template("error.html", status=found.status, title=found.title, detail=found.detail,
                                         retry_after=retry), found.status)
    if retry is not None:
        resp.headers["Retry-After"] = str(retry)
    return resp
