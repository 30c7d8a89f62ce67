"""Operations endpoints: ``GET /metrics`` (Prometheus) and ``GET /readyz`` (readiness), outside ``/v1``.

Both are open like ``/healthz`` (see :data:`governance.authz.TABLE`); the request hooks here also count every
answer by status (``consentgate_http_responses_total``) and time and count ``POST /v1/verify`` for the metrics.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, g, jsonify, request

from governance import metrics
from governance.authz import Action
from governance.errors import Unavailable
from governance.openapi import operation
from governance.ops import schemas as s
from governance.web import guard, runtime

bp = Blueprint("ops", __name__)


@bp.get("/metrics")
@guard(Action.METRICS)
@operation(media={200: "text/plain"}, tags=["operations"],
           headers={200: {"Cache-Control": "no-store: counts change with every request"}})
def prometheus() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    rt = runtime()
    return Response(metrics.exposition(rt.engine, rt.indexes, rt.pipeline.engine),
                    mimetype=CONTENT_TYPE_LATEST.split(";")[0], headers={"Cache-Control": "no-store"})


@bp.get("/readyz")
@guard(Action.READINESS)
@operation(ok={200: s.ReadyOut}, errors=[503], tags=["operations"])
def readyz() -> Response:
    """200 when this process can serve: the database answers, the job broker answers, the signer signs.
    503 (problem+json, each failing check named) otherwise, so a load balancer stops sending it traffic."""
    checks = runtime().readiness()
    failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
    if failing:
        raise Unavailable("not ready: " + "; ".join(failing), checks=checks, retry_after=5)
    return jsonify({"status": "ready", "checks": checks})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_clock() -> None:
        if request.endpoint == "v1.verification.verify":
            g.verify_started = time.perf_counter()

    @app.after_request
    def _count(resp: Response) -> Response:
        metrics.responded(resp.status_code)
        started = g.pop("verify_started", None)
        if started is not None:
            metrics.VERIFY_REQUESTS.labels(status=f"{resp.status_code // 100}xx").inc()
            metrics.VERIFY_SECONDS.observe(time.perf_counter() - started)
        return resp
