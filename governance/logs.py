"""Log records of the service and its workers: every record made while a job runs carries its generation id.

``configure(settings)`` installs one handler on the root logger: text lines (``[gen_...]`` after the logger
name) or, with ``GOVERNANCE_LOG_FORMAT=json``, one JSON object a line with ``generation_id``, ``worker`` and
any ``stage``, ``seconds`` and ``state`` the pipeline attached::

    {"ts": "2026-12-01T10:00:00.123Z", "level": "INFO", "logger": "governance.generations.pipeline", "worker": "gpu0",
     "generation_id": "gen_0123456789abcdef", "stage": "scanning", "seconds": 2.14,
     "message": "generation gen_0123456789abcdef: scanning done in 2.14 s"}
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

#: The generation the current thread works on (set by the pipeline around each try).
GENERATION: ContextVar[str | None] = ContextVar("consentgate_generation", default=None)
_EXTRAS = ("stage", "seconds", "state")


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
