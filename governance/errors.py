"""One exception hierarchy for the service; each family knows its HTTP status and problem type.

Rendering to RFC 9457 ``application/problem+json`` happens in exactly one place: :func:`problem_response`.
"""

from __future__ import annotations

import re
from typing import Any

PROBLEM_BASE = "https://consentgate.dev/problems/"


class GovernanceError(Exception):
    status = 500
    type_ = "internal"
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(GovernanceError):
    status = 422
    type_ = "invalid-input"
    title = "The request could not be accepted"


class LimitReached(InvalidInput):
    """An upload crossed a decoding limit (``governance.admission``); ``limit`` names it."""

    type_ = "limit-exceeded"
    title = "The upload is over a decoding limit"


class BadRequest(GovernanceError):
    status = 400
    type_ = "bad-request"
    title = "The request is malformed"


class Unauthenticated(GovernanceError):
    status = 401
    type_ = "unauthenticated"
    title = "A valid API token is required"


class Forbidden(GovernanceError):
    status = 403
    type_ = "forbidden"
    title = "Not allowed for this account"


class NotFound(GovernanceError):
    status = 404
    type_ = "not-found"
    title = "No such resource"


class Conflict(GovernanceError):
    status = 409
    type_ = "conflict"
    title = "The resource is not in a state that allows this"


class Gone(GovernanceError):
    status = 410
    type_ = "gone"
    title = "The resource was taken down"


class TooLarge(GovernanceError):
    status = 413
    type_ = "too-large"
    title = "The upload is too large"


class UnsupportedMedia(GovernanceError):
    status = 415
    type_ = "unsupported-media"
    title = "The upload is not a supported image or video"


class QuotaExceeded(GovernanceError):
    status = 429
    type_ = "quota-exceeded"
    title = "Daily generation quota reached"


class Busy(GovernanceError):
    """Every slot for expensive work (verification, enrollment) in this process is taken; sent with
    ``retry_after`` (seconds) rather than queued."""

    status = 503
    type_ = "busy"
    title = "The service is busy"


class InsufficientStorage(GovernanceError):
    status = 507
    type_ = "insufficient-storage"
    title = "The service is short of storage"


class Unavailable(GovernanceError):
    status = 503
    type_ = "unavailable"
    title = "A backend the service needs is unavailable"


def problem_body(status: int, type_: str, title: str, detail: str, instance: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + type_, "title": title, "status": status,
                            "detail": public_text(detail)}
    if instance:
        body["instance"] = instance
    body.update({k: _public(v) for k, v in extra.items()})
    return body


# -- what users may see of an error ----------------------------------------------------------------------------
# A server path (``/srv/var/quarantine/x.npz``) or an object's repr (``<_io.BytesIO object at 0x7f...>``)
# tells a user nothing and an attacker where things are. Both are cut from every problem's detail and from
# every reason the gate records; the operator's log keeps the full text.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
_PATH = re.compile(r"(?<![\w:/.~-])(?:~|\.{1,2})?/(?!v1/)[^\s'\"<>,;()\[\]]+")


def public_text(text: str) -> str:
    """``text`` without server paths or object reprs (each becomes ``<path>`` / ``<object>``)."""
    return _PATH.sub("<path>", _OBJECT_REPR.sub("<object>", text))


def _public(value: Any) -> Any:
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def describe_failure(e: BaseException) -> str:
    """An unexpected error as a user may read it: an operating-system error by its cause alone
    (``OSError: No space left on device``, never the file), anything else by its type and its message
    without paths or object reprs."""
    if isinstance(e, OSError) and e.strerror:
        return f"{type(e).__name__}: {e.strerror}"
    return public_text(f"{type(e).__name__}: {e}")


def causes(e: BaseException) -> list[BaseException]:
    """``e`` and the exceptions it was raised from or during, outermost first (no cycles)."""
    seen: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and all(cur is not s for s in seen):
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


class RateLimited(GovernanceError):
    status = 429
    type_ = "rate-limited"
    title = "Too many requests"
