"""``create_app`` is the only place where the service is wired together.

    >>> from governance.app import create_app
    >>> app = create_app({"data_dir": "/tmp/cg-doc", "worker": "none"})
    >>> app.test_client().get("/healthz").json["status"]
    'ok'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify

from governance.config import Settings
from governance.runtime import Runtime, initialise


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    settings = Settings.from_env().with_overrides(test_config or {})
    rt = Runtime(settings)
    try:
        initialise(settings, rt)
    except BaseException:
        rt.close()
        raise
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["consentgate"] = rt

    from governance.api import common, ops, views

    common.init_app(app)
    app.register_blueprint(views.bp)
    from governance.softbinding import views as sbr_views

    app.register_blueprint(sbr_views.bp)
    ops.init_app(app)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "generator": settings.generator, "face_backend": settings.face_backend})

    if settings.worker == "thread" and settings.queue == "inprocess":
        rt.pipeline.resume_unfinished()
    # with a broker, `consentgate worker` processes run the jobs; their leases and sweeps bring back interrupted ones
    return app
