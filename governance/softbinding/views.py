"""The C2PA Soft Binding Resolution API (C2PA 2.2, Decoupled section 1.3, OpenAPI 1.0.0) under ``/sbr/v1``.

Public like ``POST /v1/verify`` (no account needed; a token, if sent, must be valid) and rate limited by the
same per-client limiter. Routes, parameters and bodies are the specification's:

* ``GET /sbr/v1/matches/byBinding?alg=&value=&maxResults=`` and ``POST /sbr/v1/matches/byBinding``
  (``{"alg", "value"}``, ``maxResults`` in the query) -> ``{"matches": [{"manifestId", "similarityScore"}]}``
* ``POST /sbr/v1/matches/byContent?alg=&maxResults=`` with the asset as the body (``video/*``, ``image/*``)
* ``GET /sbr/v1/manifests/<manifestId>?returnActiveManifest=`` -> the store as ``application/c2pa``
* ``GET /sbr/v1/services/supportedAlgorithms`` -> ``{"watermarks": [{"alg"}], "fingerprints": [{"alg"}]}``

Errors are problem+json with the statuses the specification names: 400 for a bad query, 404 for an unknown
manifest, 415 for an asset that is not a video or an image.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from governance import admission
from governance.authz import Action
from governance.errors import BadRequest, RateLimited
from governance.openapi import operation
from governance.ratelimit import retry_after
from governance.softbinding import schemas as s
from governance.softbinding import services
from governance.web import db, guard, json_body, optional_caller, runtime

PREFIX = "/sbr/v1"
bp = Blueprint("sbr", __name__, url_prefix=PREFIX)


def _limit() -> str:
    account = optional_caller()
    client = f"account:{account.id}" if account else f"addr:{request.remote_addr}"
    wait = runtime().throttles.verify.acquire(client)
    if wait:
        raise RateLimited(f"at most {runtime().settings.verify_per_minute} look-ups or verifications a minute per "
                          f"client; retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    return client


def _max_results() -> int:
    raw = request.args.get("maxResults")
    if raw is None:
        return 10
    try:
        return int(raw)
    except ValueError as e:
        raise BadRequest(f"maxResults must be a whole number from 1 to 100, got {raw!r}") from e


def _matches(found: list) -> Response:  # type: ignore[type-arg]
    return jsonify({"matches": [m.to_dict() for m in found]})


@bp.get("/matches/byBinding")
@guard(Action.SBR_BY_BINDING)
@operation(ok={200: s.MatchesOut}, query=s.BindingQuery, errors=[400, 429], tags=["soft binding resolution"])
def query_by_binding() -> Response:
    _limit()
    return _matches(services.by_binding(db(), runtime().indexes, request.args.get("alg"),
                                        request.args.get("value"),
                                        _max_results()))


@bp.post("/matches/byBinding")
@guard(Action.SBR_BY_LARGE_BINDING)
@operation(ok={200: s.MatchesOut}, query=s.MaxResultsQuery, json=s.BindingIn, errors=[429],
           tags=["soft binding resolution"])
def query_by_large_binding() -> Response:
    _limit()
    body = json_body("alg", "value")
    return _matches(services.by_binding(db(), runtime().indexes, body.get("alg"), body.get("value"),
                                        _max_results()))


@bp.post("/matches/byContent")
@guard(Action.SBR_BY_CONTENT)
@operation(ok={200: s.MatchesOut}, query=s.ContentQuery, body_media=("video/mp4", "image/jpeg", "image/png"),
           errors=[400, 415, 429, 503], tags=["soft binding resolution"])
def query_by_content() -> Response:
    client = _limit()
    with admission.expensive(runtime().throttles, "verify", client) as meter:
        data = request.get_data(cache=False)
        if not data:
            raise BadRequest("send the asset as the request body (Content-Type video/* or image/*)")
        marks = runtime().keys.present()[1]
        return _matches(services.by_content(db(), runtime().indexes, marks, data, alg=request.args.get("alg"),
                                            max_results=_max_results(), meter=meter))


@bp.get("/manifests/<manifest_id>")
@guard(Action.SBR_MANIFEST)
@operation(media={200: "application/c2pa"}, query=s.ManifestQuery, errors=[400, 429], tags=["soft binding resolution"])
def manifest(manifest_id: str) -> Response:
    _limit()
    flag = request.args.get("returnActiveManifest", "false").lower()
    if flag not in ("true", "false"):
        raise BadRequest(f"returnActiveManifest must be true or false, got {flag!r}")
    store = services.manifest_store(db(), manifest_id, active_only=flag == "true")
    return Response(store, mimetype=services.MANIFEST_MIME)


@bp.get("/services/supportedAlgorithms")
@guard(Action.SBR_ALGORITHMS)
@operation(ok={200: s.AlgorithmsOut}, tags=["soft binding resolution"])
def supported_algorithms() -> Response:
    from provenance.softbinding import SUPPORTED_ALGS

    return jsonify({kind: [{"alg": alg} for alg in algs] for kind, algs in SUPPORTED_ALGS.items()})
