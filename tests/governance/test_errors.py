"""One error root, one place that renders problem+json, every problem type documented (issue 18, item 4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import RequestEntityTooLarge

from detectors.errors import DetectorError, ScanError
from generator.base import GeneratorBusy, GeneratorError
from governance.config import ConfigError
from governance.errors import GovernanceError, LogDamaged, NotFound, TooLarge, problem_for, problem_types
from media.errors import ConsentGateError, LimitExceeded, MediaError
from policies.characters import PolicyError
from policies.restrictions import RestrictionError
from provenance.errors import ProvenanceError, SigningError

ROOT = Path(__file__).resolve().parents[2]


def test_every_family_has_the_one_root() -> None:
    for family in (GovernanceError, ConfigError, MediaError, DetectorError, ProvenanceError, GeneratorError,
                   GeneratorBusy, PolicyError, RestrictionError):
        assert issubclass(family, ConsentGateError), family
    assert all(issubclass(e, ValueError) for e in (ConfigError, PolicyError, RestrictionError))  # as they were


def test_no_other_exception_root_in_product_code() -> None:
    """Every class deriving from a built-in exception is the root or a control-flow signal that never reaches a
    user (a job to retry, a stage stopped, a lease held, a file the CLI could not read whole while sending it: the
    command turns it into its one line; a command line the CLI's one-command parser hands to the whole parser)."""
    signals = {"RetryLater", "Stopped", "_Retry", "_Leased", "JobReturned", "ConsentGateError", "_FileUnread",
               "_Refused"}
    builtin = r"(?:Exception|BaseException|ValueError|RuntimeError|TypeError|KeyError|OSError|LookupError)"
    found = set()
    for package in ("governance", "detectors", "policies", "provenance", "generator", "media"):
        for path in (ROOT / package).rglob("*.py"):
            for m in re.finditer(rf"^class (\w+)\({builtin}\b", path.read_text(), re.M):
                found.add(m.group(1))
    assert found == signals


@pytest.mark.parametrize("error, status, type_, detail", [
    (NotFound("no generation gen_1"), 404, "not-found", "no generation gen_1"),
    (ConfigError("unknown face backend 'nope'"), 500, "configuration",
     "unknown face backend 'nope': the operator must correct the setting"),
    (LimitExceeded("seconds", 301, 300, "decoded video: 301 s; at most 300 s allowed"), 422, "limit-exceeded",
     "decoded video: 301 s; at most 300 s allowed"),
    (MediaError("not a video: /srv/var/x.mp4"), 415, "unsupported-media", "not a video: <path>"),
    (PolicyError("a character needs a name"), 422, "invalid-input", "a character needs a name"),
    (ScanError("unreadable", "x.mp4: moov atom not found"), 500, "detector-failed",
     "unreadable: x.mp4: moov atom not found"),
    (SigningError("the KMS refused"), 500, "provenance-failed", "the KMS refused"),
    (GeneratorError("8 faces cannot be laid out in 64 px"), 500, "generator-failed",
     "8 faces cannot be laid out in 64 px"),
    (GeneratorBusy("CUDA out of memory"), 503, "busy", "CUDA out of memory"),
    (LogDamaged("the transparency log's Merkle node (1, 0) is missing"), 500, "log-damaged",
     "the transparency log's Merkle node (1, 0) is missing"),
    (KeyError("a secret /srv/path"), 500, "internal", "an unexpected error occurred; it has been logged"),
])
def test_problem_for(error: BaseException, status: int, type_: str, detail: str) -> None:
    p = problem_for(error)
    assert (p.status, p.type_, p.detail) == (status, type_, detail)
    assert p.expected == (status < 500 or isinstance(error, GovernanceError | ConfigError))
    assert p.body("/v1/x")["type"] == "https://consentgate.dev/problems/" + type_


def test_werkzeug_answers_become_the_services_types() -> None:
    p = problem_for(RequestEntityTooLarge(), max_upload_bytes=8 * 1024 * 1024)
    assert (p.status, p.type_, p.title) == (413, TooLarge.type_, TooLarge.title) == (413, "too-large",
                                                                                     "The upload is too large")
    assert p.detail == "uploads are limited to 8388608 bytes (8.0 MB)"
    p = problem_for(WerkzeugMethodNotAllowed(["GET"]))
    assert (p.status, p.type_) == (405, "method-not-allowed")


@pytest.mark.parametrize("error, status, type_", [
    ("PreconditionFailed", 412, "precondition-failed"),
    ("RequestURITooLarge", 414, "uri-too-long"),
    ("RequestedRangeNotSatisfiable", 416, "range-not-satisfiable"),
    ("ExpectationFailed", 417, "expectation-failed"),
    ("RequestHeaderFieldsTooLarge", 431, "headers-too-large"),
    ("NotImplemented", 501, "not-implemented"),
])
def test_werkzeugs_other_statuses_have_types_of_their_own(error: str, status: int, type_: str) -> None:
    """A download's 412 and 416 and the servers' 414, 417, 431 and 501 (``governance.serving``, through werkzeug's
    exception of the status) each have their own type, documented with that status."""
    import werkzeug.exceptions

    p = problem_for(getattr(werkzeug.exceptions, error)())
    assert (p.status, p.type_) == (status, type_) and problem_types()[type_] == status


def test_a_status_with_no_type_of_its_own_is_about_blank() -> None:
    """RFC 9457 section 4.2.1: no other status's type (a client dispatching on ``type`` would misread it), the
    status's phrase as title."""
    from werkzeug.exceptions import ImATeapot

    p = problem_for(ImATeapot("short and stout"))
    assert (p.status, p.type_, p.title, p.detail) == (418, "about:blank", "I'm a teapot", "short and stout")
    assert p.body("/v1/x")["type"] == "about:blank"
    assert "about:blank" not in problem_types()


def test_no_type_serves_two_statuses() -> None:
    """``problem_types()`` keeps one status a type; this looks at every class and library family behind it."""
    import governance.app  # noqa: F401  (every domain's errors)
    from governance.errors import library_problems

    def family(cls: type[GovernanceError]) -> list[type[GovernanceError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in family(sub))]

    pairs = [(cls.type_, cls.status) for cls in family(GovernanceError)] + [(ConfigError.type_, ConfigError.status)]
    pairs += [(type_, status) for _family, status, type_, _title in library_problems()]
    seen: dict[str, set[int]] = {}
    for type_, status in pairs:
        seen.setdefault(type_, set()).add(status)
    assert {t: s for t, s in seen.items() if len(s) > 1} == {}
    assert len(seen) == len(problem_types()) >= 29


def test_every_problem_type_is_documented_with_its_status() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    table = text.split("<!-- problem-types:start -->")[1].split("<!-- problem-types:end -->")[0]
    documented = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([a-z-]+)` \| (\d{3}) \|", table, re.M)}
    import governance.app  # noqa: F401  (every domain's errors are defined once the app's modules are)

    assert documented == problem_types()
    assert {"reference-unavailable", "log-damaged", "configuration"} <= set(documented)  # a domain's, and ours
