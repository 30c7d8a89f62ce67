"""The API describes itself: ``/openapi.json`` (OpenAPI 3.1 from the views' models) and ``/docs`` (Swagger UI, every
file it loads served by the app from a Python package, so it works offline). The behaviour behind the document
is fuzzed in test_openapi_contract.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

from governance import authz
from governance.authz import Action, Principal
from governance.errors import problem_types
from governance.openapi import API_VERSION, DOCS_ASSETS, GENERIC_HEADERS, SERVER_RESPONSES

PROBLEM = "application/problem+json"
_SELF = {Action.OPENAPI, Action.DOCS, Action.DOCS_ASSET}  # the document and its pages are not in the document


def _spec(api: Any) -> dict[str, Any]:
    r = api.call("GET", "/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    spec: dict[str, Any] = r.get_json()
    return spec


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{method.upper()} {path}": op for path, ops in spec["paths"].items() for method, op in ops.items()}


def _route(p: authz.Permission) -> str:
    method, path = p.route.split()
    return method + " " + re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"{\1}", path)


#: Routes a client calls that are outside the authorization table (no token is read).
_UNGUARDED = {"GET /healthz"}


def test_the_document_is_openapi_3_1_and_describes_every_operation(api):
    spec = _spec(api)
    assert spec["openapi"] == "3.1.0"
    ops = _operations(spec)
    expected = {_route(p) for a, p in authz.TABLE.items() if a not in _SELF} | _UNGUARDED
    assert set(ops) == expected
    assert len(ops) == len(authz.TABLE) - len(_SELF) + len(_UNGUARDED) >= 71
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                               "description": "an account's API token"}


def _app_routes(api: Any) -> set[str]:
    """Every route the app serves to API clients, as the document names it: all but the HTML pages (their own
    front door, ``governance.pages``), the static files and the document's own (``/openapi.json``, ``/docs``)."""
    out = set()
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith(("pages.", "openapi.")):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add(method + " " + re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"{\1}", rule.rule))
    return out


def test_every_route_a_client_calls_is_in_the_document(api):
    ops = set(_operations(_spec(api)))
    routes = _app_routes(api)
    assert routes - ops == set(), "routes missing from /openapi.json"
    assert ops == routes
    assert "GET /healthz" in ops  # registered by create_app itself, outside any domain's blueprint


def _resolve(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """A response, or the shared one (``components/responses``) it references."""
    ref = response.get("$ref")
    if ref is None:
        return response
    assert ref.startswith("#/components/responses/") and set(response) == {"$ref"}, response
    shared: dict[str, Any] = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
    return shared


def test_healthz_is_documented_as_open_and_reading_no_token(api):
    op = _operations(_spec(api))["GET /healthz"]
    assert op["security"] == [{}] and [s for s in op["responses"] if int(s) < 400] == ["200"]
    assert set(op["responses"]) - {"200"} == {str(s) for s in SERVER_RESPONSES}  # the servers' own, only
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HealthOut"}
    r = api.call("GET", "/healthz", "cg_not-a-token")  # no token is read: a load balancer's probe always passes
    assert r.status_code == 200 and r.get_json()["status"] == "ok"


def test_every_operation_documents_its_problem_json_errors(api):
    spec = _spec(api)
    for name, op in _operations(spec).items():
        errors = {int(s): r for s, r in op["responses"].items() if int(s) >= 400}
        if name in _UNGUARDED:
            continue
        assert 401 in errors, name  # a token, when sent, must be valid: every operation can answer 401
        for status, resp in errors.items():
            resp = _resolve(spec, resp)
            assert resp["description"], (name, status)
            assert list(resp["content"]) == [PROBLEM], (name, status)
            assert resp["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert any(200 <= int(s) < 300 for s in op["responses"]), name
        if "{" in name:
            assert 404 in errors, name
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert {400, 413, 422} <= set(errors), name


def test_every_operation_declares_the_servers_own_answers_through_one_shared_response(api):
    """What waitress and gunicorn answer before any operation runs (a malformed request or no ``Host``: 400; a body
    over the server's bound: 413; a request line too long: 414; an ``Expect`` not met: 417; headers too large: 431;
    a transfer coding besides chunked: 501) and the 500 of the unexpected-error handler can come to every operation:
    each status is one entry of ``components/responses``, referenced by every operation (its own 400 or 413
    included), problem+json."""
    spec = _spec(api)
    shared = spec["components"]["responses"]
    assert set(shared) == {name for name, _ in SERVER_RESPONSES.values()}
    assert set(SERVER_RESPONSES) == {400, 413, 414, 417, 431, 500, 501}
    internal = shared[SERVER_RESPONSES[500][0]]["description"]
    for slug in sorted(t for t, status in problem_types().items() if status == 500):  # each 500 type is named
        assert f"`{slug}`" in internal, slug
    for name, resp in shared.items():
        assert resp["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, name
        assert "problem+json `" in resp["description"], name  # names its problem type
    for label, op in _operations(spec).items():
        for status, (name, _) in SERVER_RESPONSES.items():
            assert op["responses"].get(str(status)) == {"$ref": f"#/components/responses/{name}"}, (label, status)
    problem_type = spec["components"]["schemas"]["Problem"]["properties"]["type"]["description"]
    for slug in ("uri-too-long (414)", "headers-too-large (431)", "not-implemented (501)",
                 "range-not-satisfiable (416)", "precondition-failed (412)", "expectation-failed (417)"):
        assert slug in problem_type


def _sql(api: Any, statement: str) -> None:
    import sqlalchemy as sa

    with api.rt.engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_a_500_of_the_unexpected_error_handler_is_the_declared_internal_response(api):
    """The reported case: an operation that fails unexpectedly answers 500 problem+json (``governance.web.problem``)
    and no operation declared it. Here a table is gone from under the service (a restore gone wrong): the answer is
    the shared ``Internal`` response, its body the ``Problem`` schema, the cause not named, and the document's
    version says an answer was added (1.1.0 to 1.2.0, a minor step: nothing a client relied on changed)."""
    from jsonschema import Draft202012Validator

    spec = _spec(api)
    assert spec["info"]["version"] == API_VERSION == "1.2.0"
    assert api.call("GET", "/v1/log").status_code == 200
    _sql(api, "DROP TABLE logentry")
    r = api.call("GET", "/v1/log")
    assert r.status_code == 500 and r.mimetype == PROBLEM
    body = r.get_json()
    assert body["type"].endswith("/internal") and "logentry" not in r.get_data(as_text=True)
    declared = spec["paths"]["/v1/log"]["get"]["responses"]["500"]
    assert declared == {"$ref": "#/components/responses/Internal"}
    assert list(_resolve(spec, declared)["content"]) == [PROBLEM]
    schema = {**spec["components"]["schemas"]["Problem"], "$defs": {}}
    assert list(Draft202012Validator(schema).iter_errors(body)) == []
    assert list(Draft202012Validator(schema).iter_errors({"type": body["type"]}))  # the schema does find faults


def test_who_may_call_is_the_authorization_tables(api):
    ops = _operations(_spec(api))
    for action, p in authz.TABLE.items():
        if action in _SELF:
            continue
        op = ops[_route(p)]
        if Principal.ANONYMOUS in p.anyone:
            assert op["security"] == [{}, {"bearer": []}], p.route
        else:
            assert op["security"] == [{"bearer": []}], p.route
        refused_roles = {r for r in Principal if r is not Principal.ANONYMOUS} - set(p.anyone)
        if refused_roles:
            assert "403" in op["responses"], p.route


def test_uploads_are_documented_as_multipart_and_binary_answers_by_media_type(api):
    ops = _operations(_spec(api))
    schemas = _spec(api)["components"]["schemas"]
    for name in ("POST /v1/likenesses", "POST /v1/verify", "POST /v1/figures",
                 "POST /v1/characters/{character_id}/references", "POST /v1/likenesses/{likeness_id}/verification",
                 "POST /v1/notices/{notice_id}/face", "POST /v1/notices"):
        content = ops[name]["requestBody"]["content"]
        assert "multipart/form-data" in content, name
        ref = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
        media = schemas[ref]["properties"]["media"]
        binary = media.get("items", media) if "anyOf" not in media else media["anyOf"][0]
        assert binary.get("format") == "binary", (name, media)
    assert set(ops["POST /sbr/v1/matches/byContent"]["requestBody"]["content"]) == {"video/mp4", "image/jpeg",
                                                                                     "image/png"}
    assert list(ops["GET /v1/generations/{generation_id}/video"]["responses"]["200"]["content"]) == ["video/mp4"]
    assert list(ops["GET /v1/log/trust-anchor"]["responses"]["200"]["content"]) == ["application/x-pem-file"]


def _fetch(api: Any, path: str, token: str | None = None) -> tuple[int, str, bytes]:
    """Status, media type and body of a GET, the response closed (a sent file stays open until then)."""
    r = api.call("GET", path, token)
    try:
        return r.status_code, r.mimetype, r.get_data()
    finally:
        r.close()


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value and tag in ("script", "link"):
                self.refs.append(value)


def test_docs_loads_everything_from_the_app_and_nothing_from_a_cdn(api):
    r = api.call("GET", "/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    parser = _Refs()
    parser.feed(r.get_data(as_text=True))
    assert len(parser.refs) == len(DOCS_ASSETS)  # every asset the page names, and only those
    for ref in parser.refs:
        assert ref.startswith("/docs/assets/"), ref  # same origin: no CDN, no other host
        status, _, data = _fetch(api, ref)
        assert status == 200 and data, ref
        name = ref.rsplit("/", 1)[1]
        if name != "docs-init.js":  # the rest are the package's own bytes
            assert data == (resources.files("flask_swagger_ui") / "dist" / name).read_bytes(), ref
    assert b'url: "/openapi.json"' in _fetch(api, "/docs/assets/docs-init.js")[2]
    assert b"SwaggerUIBundle" in _fetch(api, "/docs/assets/swagger-ui-bundle.js")[2]


def test_only_the_listed_docs_assets_are_served(api):
    for name in ("VERSION", "LICENSE", "..%2F__init__.py", "swagger-ui.js.map", "index.template.html"):
        status, mimetype, _ = _fetch(api, f"/docs/assets/{name}")
        assert status == 404 and mimetype == PROBLEM, name
    assert _fetch(api, "/docs/assets/../__init__.py")[0] == 404


def test_the_docs_and_the_document_are_public_but_a_bad_token_is_refused(api):
    for path in ("/openapi.json", "/docs", "/docs/assets/swagger-ui.css"):
        assert _fetch(api, path)[0] == 200
        status, mimetype, _ = _fetch(api, path, "cg_not-a-token")
        assert status == 401 and mimetype == PROBLEM


def test_the_document_is_valid_against_the_openapi_3_1_schema(api):
    # the OpenAPI Initiative's schema of 3.1 documents, as schemathesis ships it
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    spec = _spec(api)
    errors = [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(spec)]
    assert not errors, errors[:5]
    broken = {"paths": {"/v1/me": {"get": {"responses": {"200": {"content": 1}}}}}}
    assert list(OPENAPI_31_VALIDATOR.iter_errors({**spec, **broken}))  # the validator does find faults


# -- the headers each answer carries are declared on its response ---------------------------------------------------
def _declared(spec: dict[str, Any], api: Any, method: str, path: str, status: int) -> set[str]:
    """The headers (lower-case) the document declares on ``method path``'s answer ``status``."""
    rule = api.app.url_map.bind("localhost").match(path.split("?")[0], method, return_rule=True)[0]
    template = re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"{\1}", rule.rule)
    response = spec["paths"][template][method.lower()]["responses"][str(status)]
    for name, header in response.get("headers", {}).items():
        assert header["description"] and header["schema"], (method, path, name)
    return {name.lower() for name in response.get("headers", {})}


def _undeclared(spec: dict[str, Any], api: Any, method: str, path: str, r: Any) -> set[str]:
    sent = {name.lower() for name in r.headers.keys()}
    return sent - GENERIC_HEADERS - _declared(spec, api, method, path, r.status_code)


def test_every_header_a_view_sets_is_declared_on_its_response(make_api):
    """Each branch of the code that sets a header, driven for real; the contract test (test_openapi_contract.py)
    checks the same on every answer schemathesis gets. HTTP's own headers (``GENERIC_HEADERS``) are not declared:
    the API adds none of its own to every answer."""
    api = make_api(verify_per_minute=1)
    spec = _spec(api)
    creator, admin = api.account("hd-creator"), api.account("hd-admin", "admin")
    first = api.generate(creator, "a lighthouse at dusk")
    api.generate(creator, "a harbour at dawn")
    assert api.wait(creator, first["id"])["state"] == "released"
    # a download honours range and conditional requests (send_download): each answer is the declared one
    video = f"/v1/generations/{first['id']}/video"
    r = api.call("GET", video, creator)
    assert r.status_code == 200, r.get_data()[:300]
    etag, size = r.headers["ETag"], len(r.get_data())
    r.close()
    downloads: list[tuple[dict[str, str], int, dict[str, str], str | None]] = [
        # request headers, status, headers and their values, body's media type
        ({"Range": "bytes=0-9"}, 206, {"content-range": f"bytes 0-9/{size}", "etag": etag}, "video/mp4"),
        ({"Range": "bytes=0-9", "If-Range": etag}, 206, {"content-range": f"bytes 0-9/{size}"}, "video/mp4"),
        ({"If-None-Match": etag}, 304, {"etag": etag}, None),
        ({"Range": f"bytes={size + 10}-"}, 416, {"content-range": f"bytes */{size}"}, PROBLEM),
        ({"If-None-Match": etag, "If-Match": '"another"'}, 412, {}, PROBLEM),
    ]
    for sent, status, present_values, media in downloads:
        r = api.call("GET", video, creator, headers=dict(sent))
        try:
            assert r.status_code == status, (sent, r.get_data()[:300])
            got = {name.lower(): value for name, value in r.headers.items()}
            assert present_values.items() <= got.items(), (sent, got)
            assert _undeclared(spec, api, "GET", video, r) == set(), (sent, got)
            declared = spec["paths"]["/v1/generations/{generation_id}/video"]["get"]["responses"][str(status)]
            assert set(declared.get("content", {})) == ({media} if media else set())
            assert r.mimetype == (media or r.mimetype) and (media is not None or r.get_data() == b"")
            if media == PROBLEM:
                assert r.get_json()["status"] == status
        finally:
            r.close()
    calls: list[tuple[str, str, str | None, dict[str, Any], int, set[str]]] = [
        # method, path, token, request, status, headers that must be there
        ("GET", "/healthz", None, {}, 200, set()),
        ("GET", "/v1/me", "cg_not-a-token", {}, 401, {"www-authenticate"}),
        ("GET", "/v1/generations?limit=1", creator, {}, 200, {"link"}),
        ("GET", "/v1/accounts?limit=1", admin, {}, 200, {"link"}),
        ("GET", f"/v1/generations/{first['id']}/video", creator, {}, 200,
         {"content-disposition", "etag", "cache-control", "last-modified", "accept-ranges"}),
        ("GET", "/v1/log", None, {}, 200, {"link"}),
        ("GET", "/v1/log/trust-anchor", None, {}, 200, {"content-disposition", "x-certificate-sha256"}),
        ("GET", "/metrics", None, {}, 200, {"cache-control"}),
        ("GET", "/readyz", None, {}, 200, set()),
        ("POST", "/v1/likenesses/challenges", creator, {}, 201, {"cache-control"}),
        ("POST", "/v1/generations", creator, {"json": {"prompt": "a quiet field", "likenesses": []}}, 202,
         {"location"}),
        ("GET", "/v1/generations/gen_nope", creator, {}, 404, set()),
        ("POST", "/v1/me/token", creator, {}, 200, {"cache-control"}),
    ]
    for method, path, token, kw, status, present in calls:
        r = api.call(method, path, token, **kw)
        try:
            assert r.status_code == status, (method, path, r.get_data()[:300])
            assert present <= {name.lower() for name in r.headers.keys()}, (method, path, dict(r.headers))
            assert _undeclared(spec, api, method, path, r) == set(), (method, path, dict(r.headers))
        finally:
            r.close()
    for _ in range(2):  # a verification allowance of one a minute: the second is refused with Retry-After
        r = api.verify(b"not a video", "x.mp4")
    assert r.status_code == 429 and "retry-after" in {n.lower() for n in r.headers.keys()}
    assert _undeclared(spec, api, "POST", "/v1/verify", r) == set()


def test_an_undeclared_header_is_caught(make_api):
    """The comparison above does fail: a header the document does not declare on that answer is reported."""
    api = make_api()
    spec = _spec(api)
    r = api.call("GET", "/v1/log")
    r.headers["X-Surprise"] = "1"
    assert _undeclared(spec, api, "GET", "/v1/log", r) == {"x-surprise"}
    r = api.call("GET", "/v1/me", "cg_not-a-token")
    r.headers["Retry-After"] = "5"  # declared on 429 and 503, not on a 401
    assert _undeclared(spec, api, "GET", "/v1/me", r) == {"retry-after"}
