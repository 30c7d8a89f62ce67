"""``create_app`` is the only place where the service is wired together.

    >>> from governance.app import create_app
    >>> import tempfile  # a fresh data dir: a kept one may hold another revision's schema
    >>> app = create_app({"data_dir": tempfile.mkdtemp(), "worker": "none"})
    >>> app.test_client().get("/healthz").json["status"]
    'ok'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, jsonify

from governance import logs, openapi, pages, web
from governance.accounts import views as accounts_views
from governance.characters import views as characters_views
from governance.config import Settings
from governance.container import Runtime
from governance.generations import views as generations_views
from governance.guardians import views as guardians_views
from governance.likenesses import views as likenesses_views
from governance.log import views as log_views
from governance.notices import views as notices_views
from governance.ops import schemas as ops_schemas
from governance.ops import views as ops_views
from governance.restrictions import views as restrictions_views
from governance.softbinding import views as softbinding_views
from governance.verification import views as verification_views


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    settings = Settings.from_env().with_overrides(test_config or {})
    rt = Runtime(settings)
    try:
        rt.start()
    except BaseException:
        rt.close()
        raise
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["consentgate"] = rt

    logs.init_app(app)  # first: its clock starts before any other hook runs
    web.init_app(app)
    v1 = Blueprint("v1", __name__, url_prefix="/v1")  # every domain's views, so every API endpoint is v1.<domain>.*
    for views in (accounts_views, likenesses_views, generations_views, characters_views, verification_views,
                  log_views, restrictions_views, notices_views, guardians_views):
        v1.register_blueprint(views.bp)
    app.register_blueprint(v1)
    app.register_blueprint(softbinding_views.bp)  # the C2PA Soft Binding Resolution API under its own prefix
    ops_views.init_app(app)
    pages.init_app(app)  # the pages at /: a second front door onto the same services
    openapi.init_app(app)  # /openapi.json and /docs

    @app.get("/healthz")
    @openapi.operation(ok={200: ops_schemas.HealthOut}, checks_token=False, tags=["operations"])
    def healthz() -> Response:
        """Liveness: 200 while the process serves HTTP (no token is read), to any request the server takes: one
        it refuses first (an HTTP/1.1 request without ``Host``, a malformed header) gets the server's 400."""
        return jsonify({"status": "ok", "generator": settings.generator, "face_backend": settings.face_backend})

    if settings.worker == "thread" and settings.queue == "inprocess":
        rt.pipeline.resume_unfinished()
    # with a broker, `consentgate worker` processes run the jobs; their leases and sweeps bring back interrupted ones
    return app
