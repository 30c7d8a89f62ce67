"""The HTTP plumbing every domain's views share: the per-request session, authentication and the authorization
guard, JSON bodies and uploads, and the one place errors become problem+json (RFC 9457)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request, send_file
from sqlmodel import Session

from governance import authz, pagination
from governance.accounts.models import Account
from governance.accounts.services import authenticate
from governance.container import Runtime
from governance.errors import BadRequest, InvalidInput, PreconditionFailed, Unauthenticated, problem_for
from governance.logs import request_target

PROBLEM_JSON = "application/problem+json"


def runtime() -> Runtime:
    """This app's composition root: views take the resources they hand to a service from it."""
    rt: Runtime = current_app.extensions["consentgate"]
    return rt


def db() -> Session:
    if "db" not in g:
        g.db = runtime().session()
    session: Session = g.db
    return session


def _close_db(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.rollback()  # anything not committed by the view is discarded
        session.close()


def current_account() -> Account:
    """The account the request's bearer token belongs to (401 without a valid one). Who may do what is
    :func:`guard`'s business, from :data:`governance.authz.TABLE`: no role passes a check by itself."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    account = authenticate(db(), token.strip())
    if account is None:
        raise Unauthenticated("the API token is not valid")
    return account


def optional_account() -> Account | None:
    return current_account() if request.headers.get("Authorization") else None


View = TypeVar("View", bound=Callable[..., Any])


def guard(action: authz.Action) -> Callable[[View], View]:
    """Admit the caller to ``action`` per the authorization table before the view runs (a principal the
    action is never for is refused before anything is parsed or looked up); the view reads the caller
    with :func:`caller`. The action is kept on the view, so a test can tell every route is guarded."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.caller = authz.admit(action, optional_account())
            return view(*args, **kwargs)

        guarded.authz_action = action  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def caller() -> Account:
    """The account :func:`guard` admitted."""
    account = optional_caller()
    if account is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    return account


def optional_caller() -> Account | None:
    """The account :func:`guard` admitted, or None for an anonymous caller of an action open to anyone."""
    account: Account | None = g.get("caller")
    return account


def json_body(*allowed: str) -> dict[str, Any]:
    """The request's JSON object; with ``allowed``, any other field is refused (a typo must not be ignored)."""
    if not request.is_json:
        raise BadRequest("expected a JSON object body with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=True), parse_constant=_not_json)
    except RecursionError as e:  # the decoder gives up on deep nesting with an error that is not a ValueError
        raise BadRequest("the JSON body is nested too deeply") from e
    except UnicodeDecodeError as e:
        raise BadRequest(f"malformed JSON: the body is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except ValueError as e:  # json.JSONDecodeError
        where = f" at line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        raise BadRequest(f"malformed JSON{where}: {msg}") from e
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object, got {_json_kind(body)}")
    unknown = set(body) - set(allowed) if allowed else set()
    if unknown:
        raise InvalidInput(f"unknown fields: {sorted(unknown)}; expected some of {sorted(allowed)}")
    _check_text(body, "")
    return body


def _not_json(word: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``: Python's decoder takes them, JSON (RFC 8259) has no such values."""
    raise ValueError(f"{word} is not a JSON value (RFC 8259 has no NaN or Infinity)")


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _check_text(value: Any, where: str) -> None:
    """Refuse strings no database or file can hold: a lone UTF-16 surrogate (``\\ud800``, which JSON allows
    but UTF-8 cannot encode) and NUL (which PostgreSQL's text refuses), anywhere in the body (422)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{where or 'the body'} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInput(f"{where or 'the body'} contains a lone surrogate (U+{ord(value[e.start]):04X}), "
                               "which is not text") from e
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, f"a field name in {where or 'the body'}")
            _check_text(v, f"field {k!r}" if not where else f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, f"{where or 'the body'}[{i}]")


def page_request(list_name: str) -> pagination.PageRequest:
    """The request's ``limit`` and ``cursor`` for the list ``list_name`` as the caller reads it (400 when either
    is bad): a cursor is bound to the list and to the reader it was given to (another reader's is refused,
    even for a list both may read), and signed with the service's cursor key."""
    reader = optional_caller()
    return pagination.parse_page(request.args, f"{list_name}|{reader.id if reader else 'anonymous'}",
                                 runtime().keys.cursor_key)


def page_response(items_key: str, page: pagination.Page[Any], render: Callable[[Any], Any],
                  **extra: Any) -> Response:
    """``{items_key: [...], "next": URL or null}`` with the next page also in a ``Link: <URL>; rel="next"``
    header (RFC 8288)."""
    link = pagination.next_link(request.path, request.args, page)
    resp = jsonify({items_key: [render(x) for x in page.items], **extra, "next": link})
    if link is not None:
        resp.headers["Link"] = f'<{link}>; rel="next"'
    return resp


def uploaded_blobs(field: str = "media") -> list[bytes]:
    files = request.files.getlist(field)
    if not files:
        raise InvalidInput(f"send the file(s) in the multipart form field {field!r}")
    return [f.read() for f in files]


def send_download(path: Path, *, mimetype: str, download_name: str, etag: str | bool = True) -> Response:
    """The file at ``path`` as an attachment named ``download_name`` (``send_file``: its ``ETag``, ``Last-Modified``,
    ``Cache-Control: no-cache``), honouring conditional and range requests: 206 with ``Content-Range`` for a
    satisfiable ``Range``, 304 for a matching ``If-None-Match`` / ``If-Modified-Since``, 416 (problem+json
    ``range-not-satisfiable`` with ``Content-Range: bytes */<size>``, from :func:`problem`) for an unsatisfiable
    one. The one answer werkzeug would give with the file as its body, a 412 (an ``If-Match`` sent along with
    validators that find the file unchanged), is raised as :class:`~governance.errors.PreconditionFailed` (412,
    problem+json ``precondition-failed``)."""
    resp = send_file(path, mimetype=mimetype, as_attachment=True, download_name=download_name, etag=etag,
                     conditional=True)
    if resp.status_code == 412:
        resp.close()
        raise PreconditionFailed("If-Match names no current version of the file")
    return resp


def problem(e: BaseException) -> Response:
    """The problem+json answer to ``e`` (:func:`governance.errors.problem_for`), with ``WWW-Authenticate`` on a 401,
    ``Allow`` on a 405, ``Retry-After`` when the error says when to come back and ``Content-Range: bytes */<size>``
    on a 416 (an unsatisfiable range of a download, RFC 9110 15.5.17); a bug is logged with its traceback."""
    found = problem_for(e, max_upload_bytes=runtime().settings.max_upload_bytes)
    if not found.expected:
        current_app.logger.error("unhandled error (%s)", found.type_, exc_info=e)
    target = request_target()  # the asterisk-form's "*" names no resource: no instance
    resp = jsonify(found.body(instance=None if target == "*" else target))
    resp.status_code = found.status
    resp.mimetype = PROBLEM_JSON
    if found.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="consentgate"'
    if "retry_after" in found.extra:
        resp.headers["Retry-After"] = str(found.extra["retry_after"])
    valid_methods = getattr(e, "valid_methods", None)  # werkzeug's 405 knows the methods the path takes
    if found.status == 405 and valid_methods:
        resp.headers["Allow"] = ", ".join(sorted(valid_methods))  # RFC 9110 15.5.6: a 405 MUST send Allow
    length = getattr(e, "length", None)  # werkzeug's 416 knows the file's size
    if found.status == 416 and isinstance(length, int):
        resp.headers["Content-Range"] = f"{getattr(e, 'units', 'bytes')} */{length}"
    return resp


def refuse_unknown_form_fields(*allowed: str) -> None:
    """Refuse (422) a multipart form field other than ``allowed`` and the files' ``media``: a typo in a form must
    not be ignored any more than in a JSON body. A page's form (the ``pages`` blueprint) also carries its CSRF token,
    ``csrf_token``, which the pages check before any view code runs."""
    known = set(allowed) | {"media"} | ({"csrf_token"} if request.blueprint == "pages" else set())
    unknown = (set(request.form) | set(request.files)) - known
    if unknown:  # a part's name can be anything a client sends, None included: shown escaped
        names = sorted("(unnamed)" if k is None else ascii(k) for k in unknown)
        raise InvalidInput(f"unknown form fields: [{', '.join(names)}]; expected 'media'"
                           + (f" and some of {sorted(allowed)}" if allowed else ""))


def options_response() -> Response:
    """The automatic answer to ``OPTIONS``: ``Allow`` lists the methods of the route the path matched, not those of
    every route whose pattern the path also fits (``/v1/likenesses/challenges`` takes POST; that
    ``/v1/likenesses/<likeness_id>`` would also read it as an id does not make GET a method of the challenges)."""
    rule = request.url_rule
    methods = {m for r in current_app.url_map.iter_rules() if rule is not None and r.rule == rule.rule
               for m in (r.methods or ())}
    resp = current_app.response_class()
    resp.allow.update(methods | {"OPTIONS"})
    return resp


def asterisk_refusal(method: str) -> str:
    """The detail of the 400 (problem+json ``bad-request``) to a request whose target is ``*`` and whose method is
    not OPTIONS (RFC 9112 section 3.2.4: "The asterisk-form of request-target is only used for a server-wide OPTIONS
    request"), under either server: the app's (:func:`server_options`) and gunicorn's parser's
    (``governance.serving.problem_worker``)."""
    return (f"the request target '*' (asterisk-form) is only for OPTIONS, asking what the server supports (RFC 9112 "
            f"section 3.2.4); {method[:32]!r} came: send it to a resource's path")


def server_options() -> Response | None:
    """``OPTIONS *``, a request about the server rather than a resource (RFC 9110 section 9.3.7: "applies to the
    server in general"; RFC 9112 section 3.2.4): 200, no content (``Content-Length: 0``, as RFC 9110 section 9.3.7
    requires of a successful answer without content) and ``Allow`` listing every method some route of the service
    takes (``OPTIONS`` among them), sorted. Any other method with the target ``*`` is a 400 problem
    (:func:`asterisk_refusal`). None (a ``before_request`` hook's "go on") for every other target. Without it
    werkzeug read ``*`` as the path ``/*``: 404 to the OPTIONS, 404 to the rest. ``OPTIONS http://host`` (the
    absolute-form with an empty path) is this same request (:func:`governance.logs.asterisk_form`)."""
    if request_target() != "*":
        return None
    if request.method != "OPTIONS":
        raise BadRequest(asterisk_refusal(request.method))
    methods = {m for rule in current_app.url_map.iter_rules() for m in (rule.methods or ())} | {"OPTIONS"}
    resp = current_app.response_class()
    resp.headers["Allow"] = ", ".join(sorted(methods))
    return resp


def init_app(app: Flask) -> None:
    app.make_default_options_response = options_response  # type: ignore[method-assign]
    app.before_request(server_options)
    app.teardown_appcontext(_close_db)
    app.register_error_handler(Exception, problem)  # every error, werkzeug's HTTP answers included: one place
