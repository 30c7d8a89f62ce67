"""The service's errors and the one place any error becomes an RFC 9457 ``application/problem+json`` answer.

Every error raised on purpose is a :class:`media.errors.ConsentGateError`. The service's own family,
:class:`GovernanceError`, carries its HTTP status, problem type and title; :class:`ConfigError` is a setting
the service cannot run with. :func:`problem_for` turns any exception into the problem to answer with: ours by
their class, the libraries' families by :data:`LIBRARY_PROBLEMS`, werkzeug's routing answers (404, 405, 413...)
by :data:`HTTP_PROBLEMS`, and anything else into ``internal`` without its text. ``docs/security.md`` lists every
problem type (``tests/governance/test_errors.py`` holds the list and the code to each other)::

    >>> from governance.errors import NotFound, problem_for
    >>> p = problem_for(NotFound("no generation gen_x"))
    >>> p.status, p.type_, p.detail
    (404, 'not-found', 'no generation gen_x')
    >>> problem_for(KeyError("secret")).detail
    'an unexpected error occurred; it has been logged'
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from media.errors import ConsentGateError, LimitExceeded, MediaError

PROBLEM_BASE = "https://consentgate.dev/problems/"
#: The type of a problem whose status has no type of its own here (RFC 9457 section 4.2.1: nothing beyond the
#: status's meaning; its title is the status's phrase). Every status the service and its servers answer today has
#: its own type (:func:`problem_types`), so none is sent; it stands for a status that comes to be answered before it
#: gets one, rather than another status's type.
BLANK = "about:blank"


class GovernanceError(ConsentGateError):
    """An answer the service gives with an HTTP ``status``, a problem ``type_`` (under :data:`PROBLEM_BASE`) and
    ``title``; ``detail`` says what was expected and what came, ``extra`` fields go into the problem body."""

    status = 500
    type_ = "internal"
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ConfigError(ConsentGateError, ValueError):
    """A setting has a value the service cannot run with. At start it stops the service with one line; met
    inside a request it answers 500 ``configuration`` saying which setting (a ``ValueError`` too, as it was)."""

    status = 500
    type_ = "configuration"
    title = "The service is misconfigured"


class MethodNotAllowed(GovernanceError):
    status = 405
    type_ = "method-not-allowed"
    title = "The resource does not take this method"


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


class PreconditionFailed(GovernanceError):
    """A conditional request's precondition is false: on a download, an ``If-Match`` naming no current version of
    the file (``governance.web.send_download``)."""

    status = 412
    type_ = "precondition-failed"
    title = "A precondition of the request is not met"


class RangeNotSatisfiable(GovernanceError):
    """No range a download's ``Range`` asks for lies within the file (RFC 9110 15.5.17); the answer carries
    ``Content-Range: bytes */<size>``."""

    status = 416
    type_ = "range-not-satisfiable"
    title = "No range asked for lies within the file"


# The servers' own answers (waitress's and gunicorn's parsers, governance.serving), before any operation runs.
class UriTooLong(GovernanceError):
    """The request line is longer than the server reads (gunicorn's ``limit_request_line``)."""

    status = 414
    type_ = "uri-too-long"
    title = "The request's target is too long"


class ExpectationFailed(GovernanceError):
    """An ``Expect`` the server cannot meet (anything but ``100-continue``: gunicorn)."""

    status = 417
    type_ = "expectation-failed"
    title = "The request's expectation cannot be met"


class HeadersTooLarge(GovernanceError):
    """The request's header fields are over the server's bound (their total under waitress; their number or one
    field's size under gunicorn)."""

    status = 431
    type_ = "headers-too-large"
    title = "The request's header fields are too large"


class NotImplementedByServer(GovernanceError):
    """The request needs something the server does not implement: a transfer coding other than ``chunked``."""

    status = 501
    type_ = "not-implemented"
    title = "The server does not implement what the request needs"


class InsufficientStorage(GovernanceError):
    status = 507
    type_ = "insufficient-storage"
    title = "The service is short of storage"


class Unavailable(GovernanceError):
    status = 503
    type_ = "unavailable"
    title = "A backend the service needs is unavailable"


class LogDamaged(GovernanceError):
    """The transparency log's stored Merkle nodes do not let a proof be built (one is missing): ``consentgate log
    audit`` names every problem (exit 2)."""

    status = 500
    type_ = "log-damaged"
    title = "The transparency log is damaged"


@dataclass(frozen=True)
class Problem:
    """What an error answers: an RFC 9457 problem's ``status``, ``type_`` (the slug under :data:`PROBLEM_BASE`),
    ``title``, ``detail`` (no server paths or object reprs: :func:`public_text`) and ``extra`` members."""

    status: int
    type_: str
    title: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    expected: bool = True  # False: a bug, to be logged with its traceback

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(self.status, self.type_, self.title, self.detail, instance, **self.extra)


@functools.cache
def library_problems() -> tuple[tuple[type[BaseException], int, str, str], ...]:
    """The libraries' families met inside a request, most specific first: ``(family, status, type, title)``.
    A crossed decoding limit is the upload's fault (422); a file that is not the media expected, 415; the
    detectors, provenance and the generator failing on input the service accepted are the service's (500),
    each with its own type; a busy generator, 503. A request body gunicorn's parser refuses while the app reads it
    (a malformed chunk, a body cut short: ``consentgate serve --workers N``) is the client's (400). (Built on first
    use: the libraries load lazily.)"""
    from detectors.errors import DetectorError
    from generator.base import GeneratorBusy, GeneratorError
    from policies.characters import PolicyError
    from policies.restrictions import RestrictionError
    from provenance.errors import ProvenanceError

    body_errors: tuple[tuple[type[BaseException], int, str, str], ...] = ()
    try:  # the ``scale`` extra: absent from the embedded setup
        from gunicorn.http.errors import NoMoreData, ParseException
    except ImportError:
        pass
    else:
        body_errors = tuple((family, BadRequest.status, BadRequest.type_, BadRequest.title)
                            for family in (ParseException, NoMoreData))
    return body_errors + (
        (LimitExceeded, 422, "limit-exceeded", "The upload is over a decoding limit"),
        (MediaError, 415, "unsupported-media", "The upload is not a supported image or video"),
        (PolicyError, 422, "invalid-input", "The request could not be accepted"),
        (RestrictionError, 422, "invalid-input", "The request could not be accepted"),
        (DetectorError, 500, "detector-failed", "Face detection could not be done"),
        (ProvenanceError, 500, "provenance-failed", "Signing, watermarking or verification could not be done"),
        (GeneratorBusy, 503, "busy", "The service is busy"),
        (GeneratorError, 500, "generator-failed", "The generator could not serve the request"),
    )


def _http_problems() -> dict[int, type[GovernanceError]]:
    """werkzeug's own answers (routing, body size, a download's conditions and ranges) and the servers' (their
    statuses, ``governance.serving``) as the service's errors: ``{status: class}``."""
    return {400: BadRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
            409: Conflict, 410: Gone, 412: PreconditionFailed, 413: TooLarge, 414: UriTooLong,
            415: UnsupportedMedia, 416: RangeNotSatisfiable, 417: ExpectationFailed, 429: RateLimited,
            431: HeadersTooLarge, 501: NotImplementedByServer, 503: Unavailable}


def problem_for(e: BaseException, *, max_upload_bytes: int | None = None) -> Problem:
    """The problem ``e`` answers with (the one mapping from exceptions to RFC 9457 problems). An
    ``HTTPException`` from werkzeug becomes the service's class for its status (a 413 says the upload limit,
    ``max_upload_bytes``), and one of a status without a class of its own, :data:`BLANK`; an unexpected exception is
    ``internal`` with a generic detail (``expected`` False)."""
    from werkzeug.exceptions import HTTPException

    if isinstance(e, HTTPException):
        status = e.code or 500
        cls = _http_problems().get(status)
        detail = e.description or e.name or "error"
        if status == 413 and max_upload_bytes is not None:
            detail = f"uploads are limited to {max_upload_bytes} bytes ({max_upload_bytes / 1_048_576:.1f} MB)"
        if cls is None:  # never another status's type: a client dispatching on ``type`` would misread it
            return Problem(status, BLANK, e.name or "Error", public_text(detail))
        e = cls(detail)
    if isinstance(e, GovernanceError):
        return Problem(e.status, e.type_, e.title, public_text(e.detail), dict(e.extra))
    if isinstance(e, ConfigError):
        return Problem(e.status, e.type_, e.title, public_text(f"{e}: the operator must correct the setting"))
    for family, status, type_, title in library_problems():
        if isinstance(e, family):
            extra: dict[str, Any] = {}
            if isinstance(e, LimitExceeded):
                extra = {"limit": e.limit}
            return Problem(status, type_, title, public_text(str(e)), extra, expected=status < 500)
    return Problem(500, GovernanceError.type_, GovernanceError.title,
                   "an unexpected error occurred; it has been logged", expected=False)


def problem_body(status: int, type_: str, title: str, detail: str, instance: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem's members: ``type`` is ``type_`` under :data:`PROBLEM_BASE` (or :data:`BLANK` itself),
    ``instance`` only when given, ``extra`` members added (text without server paths: :func:`public_text`)."""
    body: dict[str, Any] = {"type": type_ if type_ == BLANK else PROBLEM_BASE + type_, "title": title,
                            "status": status, "detail": public_text(detail)}
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



def problem_types() -> dict[str, int]:
    """Every problem type the service answers with, and its status: what ``docs/security.md`` lists. The
    service's own are every :class:`GovernanceError` subclass defined (domains define some of theirs: import
    ``governance.app`` first to have them all)."""
    def family(cls: type[GovernanceError]) -> list[type[GovernanceError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in family(sub))]

    return {**{cls.type_: cls.status for cls in family(GovernanceError)}, ConfigError.type_: ConfigError.status,
            **{type_: status for _family, status, type_, _title in library_problems()}}
