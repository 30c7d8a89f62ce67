"""Log records of the service and its workers: every record made while a job runs carries its generation id.

``configure(settings)`` installs one handler on the root logger: text lines (``[gen_...]`` after the logger
name) or, with ``GOVERNANCE_LOG_FORMAT=json``, one JSON object a line with ``generation_id``, ``worker`` and
any ``stage``, ``seconds`` and ``state`` the pipeline attached::

    {"ts": "2026-12-01T10:00:00.123Z", "level": "INFO", "logger": "governance.generations.pipeline", "worker": "gpu0",
     "generation_id": "gen_0123456789abcdef", "stage": "scanning", "seconds": 2.14,
     "message": "generation gen_0123456789abcdef: scanning done in 2.14 s"}

Every HTTP request ends with one record of the ``governance.request`` logger (:func:`log_request`: the app's
answers through :func:`init_app`, and those the servers' front gives itself, ``governance.serving.RequireHost``)
carrying ``method``, ``path`` (never the query string; ``*`` for the asterisk-form of ``OPTIONS *``), ``status``,
``duration_ms`` and ``account_id`` (``-`` when no valid token was sent). No header is logged, so never a token::

    {"ts": "...", "level": "INFO", "logger": "governance.request", "worker": "api:8080", "generation_id": "-",
     "method": "GET", "path": "/v1/me", "status": 200, "duration_ms": 3.1, "account_id": "acc_0123456789abcdef",
     "message": "GET /v1/me 200 3.1 ms"}
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

#: The generation the current thread works on (set by the pipeline around each try).
GENERATION: ContextVar[str | None] = ContextVar("consentgate_generation", default=None)
_EXTRAS = ("stage", "seconds", "state", "method", "path", "status", "duration_ms", "account_id")
#: The logger of the one record each HTTP request ends with.
REQUEST_LOGGER = "governance.request"


class _Context(logging.Filter):
    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "generation_id"):
            record.generation_id = GENERATION.get() or "-"
        record.worker = self.worker
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "worker": getattr(record, "worker", ""),
            "generation_id": getattr(record, "generation_id", "-"),
        }
        out.update({k: getattr(record, k) for k in _EXTRAS if hasattr(record, k)})
        out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_request(method: str, path: str, status: int, started: float | None, account_id: str = "-") -> None:
    """The one record a request ends with (module docstring): ``method``, ``path`` (no query string), ``status``,
    the time since ``started`` (a ``time.perf_counter()`` reading; None: 0.0) in milliseconds rounded to 0.1, and
    ``account_id`` (``-``: no valid token was read)."""
    ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else 0.0
    logging.getLogger(REQUEST_LOGGER).info("%s %s %d %.1f ms", method, path, status, ms,
                                           extra={"method": method, "path": path, "status": status,
                                                  "duration_ms": ms, "account_id": account_id})


def asterisk_form(environ: Mapping[str, Any]) -> bool:
    """Whether a request's target is the asterisk-form, ``*`` (RFC 9112 section 3.2.4), as the client sent it:
    waitress and werkzeug keep it in ``REQUEST_URI``, gunicorn in ``RAW_URI`` (``PATH_INFO`` where neither is set).
    Its ``PATH_INFO`` is ``*`` too, which werkzeug's ``request.path`` reads as ``/*``, another target.

    An ``OPTIONS`` whose target is the absolute-form of an ``http`` or ``https`` URI with an empty path and no
    query (``OPTIONS http://host:8080 HTTP/1.1``) is the same request: RFC 9112 section 3.2.4, the last proxy
    forwards it as ``OPTIONS *``; RFC 9110 section 7.1, the asterisk-form's target URI has an empty path. (Both
    servers take the absolute-form, section 3.2.2; werkzeug read its empty path as ``/``, and redirected there.) With
    another method that target is the origin's ``/`` (RFC 9112 section 3.2.1), not the asterisk."""
    target = environ.get("REQUEST_URI", environ.get("RAW_URI", environ.get("PATH_INFO")))
    if target == "*":
        return True
    if environ.get("REQUEST_METHOD") != "OPTIONS" or not isinstance(target, str):
        return False
    scheme, sep, authority = target.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(authority) and not any(
        c in authority for c in "/?#")


def request_target() -> str:
    """The current request's target for logs and problems: ``request.path`` (no query string), or ``*`` for the
    asterisk-form (:func:`asterisk_form`)."""
    return "*" if asterisk_form(request.environ) else request.path


def init_app(app: Flask) -> None:
    """Log one record per request when its response is ready (errors included: they are responses by then). Call it
    before the other ``init_app``: its clock then starts before their hooks run."""

    @app.before_request
    def _start_clock() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        caller = g.get("caller")
        log_request(request.method, request_target(), response.status_code, g.get("request_started"),
                    getattr(caller, "id", None) or "-")
        return response


def configure(log_format: str, worker: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_Context(worker))
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(generation_id)s]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
