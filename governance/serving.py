"""Several API processes on one port: ``consentgate serve --workers N`` (docs/operations.md, ADR 0010).

One Python process serves at most one core of Flask and SQLAlchemy work (the GIL): measured with
``python -m bench decisions --http``, a single waitress process tops out well under what two cores give. With
``--workers N`` (N > 1) the service runs under gunicorn: a master that binds the port and keeps N worker processes
alive (a crashed one is replaced), each importing the app itself after the fork (no shared database connections,
c2pa objects or job threads), each with ``--threads`` threads (gthread). ``consentgate serve`` without
``--workers`` stays the single waitress process of the embedded setup (``make run``).

Each worker process is a whole API process: its in-process job worker (``GOVERNANCE_WORKER=thread``) runs the jobs
that process accepted, its rate limits and metrics are its own unless Redis backs them (``GOVERNANCE_REDIS_URL``),
as with several API machines (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from governance.config import Settings


def serve_many(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the app under gunicorn with ``workers`` processes of ``threads`` threads each, until stopped."""
    from gunicorn.app.base import BaseApplication

    from governance.app import create_app

    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": False,  # every worker builds its own app (connections, signer, threads) after the fork
        "timeout": 300,  # an upload being verified or enrolled may take minutes on a busy machine
        "graceful_timeout": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app({"data_dir": settings.data_dir})

    _Gunicorn().run()
