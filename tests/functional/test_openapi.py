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
from governance.openapi import DOCS_ASSETS

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


def test_the_document_is_openapi_3_1_and_describes_every_operation(api):
    spec = _spec(api)
    assert spec["openapi"] == "3.1.0"
    ops = _operations(spec)
    expected = {_route(p) for a, p in authz.TABLE.items() if a not in _SELF}
    assert set(ops) == expected
    assert len(ops) == len(authz.TABLE) - len(_SELF) >= 70
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                               "description": "an account's API token"}


def test_every_operation_documents_its_problem_json_errors(api):
    spec = _spec(api)
    for name, op in _operations(spec).items():
        errors = {int(s): r for s, r in op["responses"].items() if int(s) >= 400}
        assert 401 in errors, name  # a token, when sent, must be valid: every operation can answer 401
        for status, resp in errors.items():
            assert list(resp["content"]) == [PROBLEM], (name, status)
            assert resp["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert any(200 <= int(s) < 300 for s in op["responses"]), name
        if "{" in name:
            assert 404 in errors, name
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert {400, 413, 422} <= set(errors), name


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
