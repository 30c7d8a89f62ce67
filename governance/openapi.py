"""The API's contract: an OpenAPI 3.1 document generated from the pydantic models each view is decorated with
(:func:`operation`, read by spectree: ``docs/adr/0013-openapi-contract.md``), served at ``GET /openapi.json``,
and browsable at ``GET /docs`` with Swagger UI's files from the ``flask-swagger-ui`` package, served by this app
under ``/docs/assets/`` (no CDN: the service runs offline).

The models only describe: the views keep parsing and refusing input themselves (``governance.web.json_body``
and the services), so a refusal keeps the house's problem+json (RFC 9457) shape and wording; the schemathesis
test (``tests/functional/test_openapi_contract.py``) holds the two to each other.

Each operation's responses are its success models plus every problem+json error it can answer with, derived
from the code: 401 everywhere (a token, when sent, must be valid; :func:`governance.web.guard`), 403 where the
authorization table refuses some role, 404 where the path names something, 400/413/422 where a body is parsed,
400 where a list is paged, and the ``errors`` the view's own code raises. The servers' own answers
(``governance.serving``: a malformed request line or header, a request without ``Host`` (400), a body over the
server's bound (413), a request line too long (414), an ``Expect`` not met (417), header fields too large (431), a
transfer coding other than ``chunked`` (501)) can come to any operation before it runs, and so can a 500 (the
service's unexpected-error handler, ``governance.web.problem``: problem+json ``internal`` or a failing component's
type, the detail naming no cause; the servers' own when serving raised): each of those statuses is one shared
response in ``components/responses`` (:data:`SERVER_RESPONSES`) that every operation references, the operation's
own 400 or 413 included (one answer, one model, for a client generated from the document).

Each response also declares the headers the service sets on it (OpenAPI's ``headers``, a schema and a description
each): derived ones (:func:`_derived_headers`: ``WWW-Authenticate`` on every 401, ``Retry-After`` on 429 and 503,
``Link`` on a paged list's 200, what ``send_file`` sets on a file's download) and the view's own, given to
:func:`operation` as ``headers`` (``Location`` on a 202, ``Cache-Control: no-store`` on an answer carrying a token...).
The API adds no header to every response beyond HTTP's own (``Content-Type``, ``Content-Length``, ``Date``,
``Server``): those are not declared (:data:`GENERIC_HEADERS`). ``GET /healthz`` is in the document like every route
a client calls; the document and its reference pages (``/openapi.json``, ``/docs``) and the HTML pages are not.

    >>> from governance.app import create_app
    >>> import tempfile  # a fresh data dir: a kept one may hold another revision's schema
    >>> app = create_app({"data_dir": tempfile.mkdtemp(), "worker": "none"})
    >>> spec = app.test_client().get("/openapi.json").json
    >>> spec["openapi"], sorted(spec["paths"]["/v1/me"]["get"]["responses"])
    ('3.1.0', ['200', '400', '401', '413', '414', '417', '431', '500', '501'])
    >>> spec["paths"]["/v1/me"]["get"]["responses"]["431"]
    {'$ref': '#/components/responses/HeadersTooLarge'}
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, send_file
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as SpecResponse
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.metadata import register_validated_function
from spectree.models import SecureType

from governance import authz
from governance.authz import Action, Principal
from governance.errors import PROBLEM_BASE, NotFound, problem_types
from governance.pagination import MAX_LIMIT
from governance.web import guard

# 1.1.0: a problem type per status, the servers' own answers declared, quota.left is what a client may still send
# 1.2.0: the 500 declared on every operation (components/responses/Internal): an answer added, none changed
API_VERSION = "1.2.0"
BEARER = "bearer"
PROBLEM_MEDIA = "application/problem+json"
_ROLES = frozenset(p for p in Principal if p is not Principal.ANONYMOUS)
#: Headers HTTP itself puts on every answer, left undeclared (lower-case): the body's framing, the date, the server.
GENERIC_HEADERS = frozenset({"content-type", "content-length", "date", "server", "connection", "vary",
                             "transfer-encoding", "keep-alive"})


class Problem(BaseModel):
    """An RFC 9457 problem, as every error of this API is answered (``application/problem+json``): ``type`` is
    ``https://consentgate.dev/problems/<slug>``, one slug per status (the slugs and their statuses are listed in
    docs/security.md and in this schema's ``type``), ``detail`` says what was expected and what came; some problems
    add members (``retry_after`` seconds, ``limit``, ``state``...)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def _component_name(model: Any) -> str:
    return str(getattr(model, "__name__", model))


api = SpecTree(
    "flask",
    title="ConsentGate API",
    version=API_VERSION,
    description="A consent, rights and provenance gate in front of an AI video generator. Errors are "
                "application/problem+json (RFC 9457). Send `Authorization: Bearer <token>`; operations open to "
                "anyone accept no token, but a token sent must be valid.",
    openapi_version="3.1.0",
    mode="strict",
    annotations=False,
    naming_strategy=_component_name,
    nested_naming_strategy=lambda _parent, child: child,
    validation_error_model=Problem,
    validation_error_status=422,
    security_schemes=[SecurityScheme(name=BEARER, data=SecuritySchemeData(
        type=SecureType.HTTP, scheme="bearer", description="an account's API token"))],
)

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Doc:
    """What :func:`operation` adds to what spectree makes of the models."""

    ok: tuple[int, ...]
    errors: frozenset[int]
    media: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # binary answers: status -> media types
    body_media: tuple[str, ...] = ()  # a raw binary request body's media types
    json_body: bool = False
    form: bool = False
    paged: bool = False
    optional_body: bool = False
    headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)  # status -> {header: description}
    checks_token: bool = True  # False: not guarded, no token is read (GET /healthz)


_DOCS: dict[Callable[..., Any], _Doc] = {}


def operation(*, ok: Mapping[int, type[BaseModel] | None] | None = None, query: type[BaseModel] | None = None,
              json: type[BaseModel] | None = None, form: type[BaseModel] | None = None,
              media: Mapping[int, str | tuple[str, ...]] | None = None, body_media: tuple[str, ...] = (),
              errors: Iterable[int] = (), tags: Iterable[str] = (), optional_body: bool = False,
              paged: bool = False,
              headers: Mapping[int, Mapping[str, str]] | None = None,
              checks_token: bool = True) -> Callable[[View], View]:
    """Describe a view for the OpenAPI document (put it under ``@guard``; nothing changes at run time).

    ``ok``: success status -> JSON model (None: no body, as a 204); ``media``: success status -> binary media
    type(s) (a video, a PEM file); ``query``/``json``/``form``: the request's models (a form is
    ``multipart/form-data``; files are ``format: binary`` fields); ``body_media``: a raw binary body's types;
    ``errors``: the statuses the view's own code answers with, beyond those derived (module docstring);
    ``paged``: the list takes ``limit`` and ``cursor``; ``optional_body``: the JSON body may be left out;
    ``headers``: status -> {header name: description} the view itself sets on that answer, beyond the derived ones
    (module docstring; declared as strings); ``checks_token=False``: a view outside the authorization table that
    reads no token (no security, no 401: ``GET /healthz``)."""

    def decorate(view: View) -> View:
        responses = {f"HTTP_{status}": model for status, model in (ok or {}).items()}
        for status in media or {}:
            responses.setdefault(f"HTTP_{status}", None)
        wrapper = api.validate(query=query, json=json, form=form, resp=SpecResponse(**responses),
                               tags=list(tags), skip_validation=True)(view)
        # spectree's wrapper would re-make each response (reading a sent file into memory): keep the view as it is
        # and hand spectree's record of the operation over to it
        metadata = api._function_metadata.pop(wrapper)
        api._function_metadata[view] = metadata
        medias = {s: (m,) if isinstance(m, str) else tuple(m) for s, m in (media or {}).items()}
        is_paged = paged or (query is not None and "limit" in query.model_fields)
        _DOCS[view] = _Doc(tuple(sorted({*(ok or {}), *medias})), frozenset(errors), medias, body_media,
                           json is not None, form is not None, is_paged, optional_body,
                           {status: dict(h) for status, h in (headers or {}).items()}, checks_token)
        register_validated_function(view)
        return view

    return decorate


def _doc_of(view: Callable[..., Any]) -> tuple[_Doc | None, Action | None]:
    action = getattr(view, "authz_action", None)
    fn: Any = view
    while fn is not None:
        if fn in _DOCS:
            return _DOCS[fn], action
        fn = getattr(fn, "__wrapped__", None)
    return None, action


def _problem_ref() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Problem"}


_REASONS = {401: "No valid API token (problem+json)",
            403: "Not allowed for this account (problem+json)", 404: "No such resource, or not yours (problem+json)",
            405: "Method not allowed (problem+json)", 409: "Not in a state that allows this (problem+json)",
            410: "Taken down or gone (problem+json)",
            412: "If-Match names no current version (problem+json `precondition-failed`)",
            416: "No range asked for lies within the file (problem+json `range-not-satisfiable`; Content-Range: "
                 "bytes */<size>)",
            415: "Not a supported image or video (problem+json)", 422: "Invalid input (problem+json)",
            429: "Too many requests or quota reached (problem+json; Retry-After)",
            503: "Busy or unavailable (problem+json; Retry-After)", 507: "Short of storage (problem+json)"}


#: The servers' own answers, which any operation may get before it runs (``governance.serving``), and the 500 any
#: operation may answer (the unexpected-error handler, ``governance.web.problem``; the servers' own when serving
#: raised), as shared responses (``components/responses``): status -> (name, description). An operation's own 400
#: or 413 is the same answer.
SERVER_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Malformed request (problem+json `bad-request`): a request line, header or chunk the server "
                        "cannot parse, an HTTP/1.1 request without `Host` or with two; where the operation reads a "
                        "JSON body, malformed JSON or a wrong `Content-Type`; where it pages, a bad `limit` or "
                        "`cursor`"),
    413: ("TooLarge", "The request body is over the upload limit (problem+json `too-large`; the detail says the "
                      "limit): the operation's own answer, or the server's for a body far over it"),
    414: ("UriTooLong", "The request line is over the server's limit (problem+json `uri-too-long`)"),
    417: ("ExpectationFailed", "An `Expect` other than `100-continue` (problem+json `expectation-failed`)"),
    431: ("HeadersTooLarge", "The request's header fields are over the server's bound (problem+json "
                             "`headers-too-large`)"),
    500: ("Internal", "The service failed, not the request (problem+json `internal`, an unexpected error: the "
                      "detail names no cause, the operator's log has it; or the type of a part that failed on input "
                      "the service had accepted: `configuration`, `reference-unavailable`, `log-damaged`, "
                      "`detector-failed`, `provenance-failed`, `generator-failed`)"),
    501: ("NotImplemented", "A transfer coding other than `chunked` (problem+json `not-implemented`): send the body "
                           "chunked or with a `Content-Length`"),
}


def _server_responses() -> dict[str, Any]:
    """:data:`SERVER_RESPONSES` as ``components/responses``."""
    return {name: {"description": text, "content": {PROBLEM_MEDIA: {"schema": _problem_ref()}}}
            for name, text in SERVER_RESPONSES.values()}


def _derived_errors(doc: _Doc, action: Action | None, path: str) -> set[int]:
    out = set(SERVER_RESPONSES)  # the servers' own, before any operation
    if doc.checks_token:
        out.add(401)  # guard: anonymous where an account is needed, or a bad token sent
    if action is not None:
        perm = authz.TABLE[action]
        if not _ROLES <= perm.anyone:
            out.add(403)
        if perm.resource is not None and not _ROLES <= perm.other:
            out.add(403)  # someone else's resource that the caller may see anyway (authz.require)
    if "{" in path:
        out.add(404)
    if doc.json_body:
        out |= {400, 413, 422}
    if doc.form or doc.body_media:
        out |= {413, 422}
    if doc.paged:
        out.add(400)
    return out


#: What ``send_file`` (a download's answer, ``media``) sets: the file's name, its validators and caching.
FILE_HEADERS = {"Content-Disposition": "attachment; filename=\"<id>.mp4\" (a draft's: <id>.draft.mp4)",
                "ETag": "the file's validator (a released video's: its SHA-256)",
                "Last-Modified": "when the file was written", "Cache-Control": "no-cache: revalidate before reuse",
                "Accept-Ranges": "bytes: a range of the file may be asked for"}

#: A download (``governance.web.send_download``) honours conditional and range requests: its answers by status,
#: the file's media on 200 and 206 (a range), :data:`NOT_MODIFIED` (304: no body) and :data:`DOWNLOAD_ERRORS`
#: (412, 416: problem+json), each with the headers it carries (:data:`DOWNLOAD_HEADERS`).
DOWNLOAD_MEDIA = {200: "video/mp4", 206: "video/mp4"}
NOT_MODIFIED: dict[int, type[BaseModel] | None] = {304: None}
DOWNLOAD_ERRORS = (412, 416)
DOWNLOAD_HEADERS = {
    200: FILE_HEADERS,
    206: {**FILE_HEADERS, "Content-Range": "bytes <first>-<last>/<size>: the range sent, of the whole file's size"},
    304: {name: FILE_HEADERS[name] for name in ("Content-Disposition", "ETag", "Cache-Control", "Accept-Ranges")},
    416: {"Content-Range": "bytes */<size>: the file's size (no range asked for lies within it)"},
}

#: ``Cache-Control: no-store`` on an answer carrying a secret (a token, a challenge, a private link): no cache keeps it.
NO_STORE = {"Cache-Control": "no-store: the answer carries a secret or a private record; no cache may keep it"}


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


def _derived_headers(doc: _Doc, code: int) -> dict[str, dict[str, Any]]:
    """The headers ``governance.web`` sets on answer ``code`` of an operation described by ``doc``."""
    out: dict[str, dict[str, Any]] = {}
    if code == 401:
        out["WWW-Authenticate"] = _header('Bearer realm="consentgate": send an API token')
    if code in (429, 503):
        out["Retry-After"] = _header("seconds to wait before retrying, when the service knows",
                                     {"type": "string", "pattern": "^[0-9]+$"})
    if code == 200 and doc.paged:
        out["Link"] = _header('<URL>; rel="next": the next page (RFC 8288), absent on the last page')
    return out


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without pydantic's ``anyOf [..., null]`` for an optional value (a query string
    has no null: the parameter is simply left out)."""
    variants = schema.get("anyOf")
    if isinstance(variants, list):
        rest = [v for v in variants if v != {"type": "null"}]
        out = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
        if len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
        return out
    return schema


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app`` (computed once per app): spectree's paths and components, then each
    operation's security, problem+json errors and binary media completed from :func:`operation` and the
    authorization table."""
    cached = app.extensions.get("consentgate.openapi")
    if cached is not None:
        return dict(cached)
    with app.app_context():
        spec = copy.deepcopy(api._generate_spec())
    views = {(_openapi_path(str(rule)), method.lower()): app.view_functions[rule.endpoint]
             for rule in app.url_map.iter_rules() for method in (rule.methods or ())}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            doc, action = _doc_of(views[(path, method)])
            assert doc is not None, f"{method.upper()} {path} is not described"
            assert action is not None or not doc.checks_token, f"{method.upper()} {path} is not guarded"
            _complete(op, doc, action, path)
    for form in _multipart_schemas(spec):  # a form field is sent or left out: it has no null
        form["properties"] = {name: _strip_null(prop) for name, prop in form.get("properties", {}).items()}
    spec["security"] = [{BEARER: []}]
    spec["components"]["responses"] = _server_responses()
    problem = spec["components"]["schemas"]["Problem"]["properties"]["type"]
    problem["description"] = (f"{PROBLEM_BASE} and one of these slugs (status): " + ", ".join(
        f"{slug} ({status})" for slug, status in sorted(problem_types().items(), key=lambda t: (t[1], t[0]))))
    spec["paths"] = dict(sorted(spec["paths"].items()))
    spec["tags"] = sorted(spec["tags"], key=lambda t: t["name"])
    app.extensions["consentgate.openapi"] = spec
    return dict(spec)


def _multipart_schemas(spec: dict[str, Any]) -> list[dict[str, Any]]:
    refs = {op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
            for ops in spec["paths"].values() for op in ops.values()
            if "multipart/form-data" in op.get("requestBody", {}).get("content", {})}
    return [spec["components"]["schemas"][ref] for ref in sorted(refs)]


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def _complete(op: dict[str, Any], doc: _Doc, action: Action | None, path: str) -> None:
    perm = authz.TABLE[action] if action is not None else None
    if not doc.checks_token:
        op["security"] = [{}]  # no token is read
    elif perm is not None and Principal.ANONYMOUS in perm.anyone:
        op["security"] = [{}, {BEARER: []}]  # open to anyone; a token, if sent, must be valid
    else:
        op["security"] = [{BEARER: []}]
    default = re.fullmatch(r"(\w+) <[A-Z]+>", op.get("summary", ""))
    if default:  # spectree's placeholder for a view without a docstring: its name, read as words
        op["summary"] = default.group(1).replace("_", " ").capitalize()
    for key in ("summary", "description"):  # docstrings are reStructuredText; the reference reads Markdown
        if op.get(key):
            op[key] = op[key].replace("``", "`")
    if perm is not None and perm.note:
        op["description"] = (op.get("description") or "") + f"\n\nWho may call it: {perm.note}."
    responses: dict[str, Any] = {}
    for status, resp in op["responses"].items():
        code = int(status)
        if code in doc.ok:
            if code in doc.media:
                resp = {"description": resp.get("description") or "OK",
                        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in doc.media[code]}}
            elif code == 204:
                resp = {"description": "No content"}
            elif code == 304:
                resp = {"description": "Not modified: the copy the request's If-None-Match / If-Modified-Since "
                                       "names is current (no body)"}
            responses[status] = resp
    for code in sorted(_derived_errors(doc, action, path) | doc.errors):
        if code in SERVER_RESPONSES:
            responses[str(code)] = {"$ref": f"#/components/responses/{SERVER_RESPONSES[code][0]}"}
        else:
            responses[str(code)] = {"description": _REASONS.get(code, "Error (problem+json)"),
                                    "content": {PROBLEM_MEDIA: {"schema": _problem_ref()}}}
    for status, resp in responses.items():
        headers = {**_derived_headers(doc, int(status)),
                   **{name: _header(text) for name, text in doc.headers.get(int(status), {}).items()}}
        if headers:
            assert "$ref" not in resp, f"{path}: a shared response ({status}) carries no headers of an operation's"
            resp["headers"] = dict(sorted(headers.items()))
    op["responses"] = responses
    for param in op.get("parameters", []):
        param["schema"] = _strip_null(param["schema"])
        if param.get("description") == "":
            del param["description"]
        if param["in"] == "path":
            param["schema"].setdefault("minLength", 1) if param["schema"].get("type") == "string" else None
    body = op.get("requestBody")
    if body is not None:
        if doc.optional_body:
            body["required"] = False
    if doc.body_media:
        op["requestBody"] = {"required": True, "content": {m: {"schema": {"type": "string", "format": "binary"}}
                                                            for m in doc.body_media}}


# -- the routes: /openapi.json, /docs and its assets ---------------------------------------------------------------
bp = Blueprint("openapi", __name__)

#: The Swagger UI files /docs references, all from the flask-swagger-ui package (its ``dist``: Swagger UI 5).
DOCS_ASSETS = ("swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
               "favicon-32x32.png", "docs-init.js")
_PACKAGE_ASSETS = frozenset(DOCS_ASSETS) - {"docs-init.js"}

_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ConsentGate API</title>
  <link rel="stylesheet" href="/docs/assets/index.css">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <main id="swagger-ui" aria-label="ConsentGate API reference"></main>
  <noscript><p>The API reference needs JavaScript; the contract itself is at <a href="/openapi.json">/openapi.json</a>.
  </p></noscript>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/docs-init.js"></script>
</body>
</html>
"""

# Kept in a file of its own (not inline), so the page works under a Content-Security-Policy without 'unsafe-inline'
_DOCS_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""


def _swagger_dist() -> Any:
    return resources.files("flask_swagger_ui") / "dist"


@bp.get("/openapi.json")
@guard(Action.OPENAPI)
def openapi_json() -> Response:
    """This API's OpenAPI 3.1 document."""
    resp = jsonify(build_spec(current_app))
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/docs")
@guard(Action.DOCS)
def docs_page() -> Response:
    """The API reference (Swagger UI), browsable; every file it loads is served by this app."""
    return Response(_DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/assets/<name>")
@guard(Action.DOCS_ASSET)
def docs_asset(name: str) -> Response:
    """One of :data:`DOCS_ASSETS` (404 for any other name: nothing else of the package is served)."""
    if name == "docs-init.js":
        return Response(_DOCS_INIT, mimetype="text/javascript")
    if name not in _PACKAGE_ASSETS:
        raise NotFound(f"no docs asset {name!r}")
    with resources.as_file(_swagger_dist() / name) as path:
        return send_file(path, max_age=86400)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


# -- shapes every domain shares ----------------------------------------------------------------------------------
class PageQuery(BaseModel):
    """A page of a list (:mod:`governance.pagination`): ``limit`` rows (1-500, default 100) after ``cursor`` (the
    ``next`` of the previous page; opaque, signed, bound to the list and the reader)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, min_length=1, max_length=1024)


class Page(BaseModel):
    """A page: the list's items under its own key, and ``next``, the URL of the next page (null on the last)."""

    next: str | None
