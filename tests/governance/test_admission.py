"""Admission of expensive work: decoding limits from the settings, slots, and the cost bucket."""

from __future__ import annotations

import pytest

from governance.admission import Slots, decode_limits, limit_error, release_memory
from governance.config import ConfigError, Settings
from governance.errors import Busy
from governance.ratelimit import RateLimiter
from media.limits import LimitExceeded, Limits


def test_decode_limits_follow_the_settings() -> None:
    s = Settings(verify_max_seconds=120.0, enroll_max_seconds=20.0, max_tracks=4, decode_memory_mb=64)
    verify, enroll = decode_limits(s, "verify"), decode_limits(s, "enroll")
    assert (verify.seconds, enroll.seconds, verify.tracks, verify.memory_bytes) == (120.0, 20.0, 4, 64 * 2**20)
    assert decode_limits(Settings(), "cli") == Limits()  # the defaults agree
    with pytest.raises(ConfigError, match="max_tracks"):
        Settings(max_tracks=0)
    assert Settings.from_env({"GOVERNANCE_MAX_FRAMES": "100"}).max_frames == 100


def test_a_crossed_limit_is_a_422_naming_it() -> None:
    with pytest.raises(LimitExceeded) as info:
        Limits(seconds=60.0).check("seconds", 60.2, "decoded video")
    problem = limit_error(info.value)
    assert problem.status == 422 and problem.type_ == "limit-exceeded"
    assert problem.extra == {"limit": "seconds", "allowed": 60.0}
    assert problem.detail == "decoded video: 60.2 s; at most 60 s allowed (seconds)"


def test_slots_refuse_at_once_when_full() -> None:
    slots = Slots(2)
    with slots.take("verify"), slots.take("verify"):
        with pytest.raises(Busy) as info:
            with slots.take("verify"):
                pass
        assert info.value.status == 503 and info.value.extra["retry_after"] == 1
    with slots.take("verify"):  # released, even after an error inside
        pass
    with pytest.raises(RuntimeError), slots.take("verify"):
        raise RuntimeError("boom")
    with slots.take("a"), slots.take("b"):
        pass


def test_the_cost_bucket_goes_into_debt_and_a_client_in_debt_waits() -> None:
    now = [0.0]
    bucket = RateLimiter(600, clock=lambda: now[0])  # 600 megapixels a minute: 10 a second
    assert bucket.acquire("a", 0.0) == 0.0
    bucket.charge("a", 900.0)  # one big request: 300 megapixels of debt
    assert bucket.acquire("a", 0.0) == pytest.approx(30.0)
    assert bucket.acquire("b", 0.0) == 0.0  # another client is not affected
    now[0] = 31.0
    assert bucket.acquire("a", 0.0) == 0.0
    bucket.charge("a", 10_000.0)  # debt is capped at one bucket
    assert bucket.acquire("a", 0.0) == pytest.approx(60.0)
    assert RateLimiter(0).acquire("a", 5.0) == 0.0  # 0: unlimited
    requests = RateLimiter(2, clock=lambda: now[0])
    assert requests.acquire("a") == requests.acquire("a") == 0.0 and requests.acquire("a") > 0


def test_release_memory_is_harmless() -> None:
    release_memory()
    release_memory()


def test_keep_freed_memory_stops_the_heap_churn_of_a_fresh_process() -> None:
    """``consentgate verify`` sets glibc's thresholds first (issue 12): a fresh process otherwise maps and trims a
    large temporary again for every frame. Page faults of 300 frames' worth of temporaries (256-1024 px, float32),
    counted in a fresh process with and without it (counts, not times: the same on a loaded machine)."""
    import subprocess
    import sys

    script = (
        "import resource, sys\n"
        "import numpy as np\n"
        "from governance.admission import keep_freed_memory\n"
        "if sys.argv[1] == 'keep' and not keep_freed_memory():\n"
        "    sys.exit('not glibc')\n"
        "rng = np.random.default_rng(0)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for side in rng.integers(256, 1024, 300):\n"
        "    a = np.ones((side, side), np.float32)\n"
        "    b = a * 2\n"
        "    del a, b\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    runs = {mode: subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True)
            for mode in ("default", "keep")}
    if runs["keep"].stderr.strip() == "not glibc":
        pytest.skip("not glibc: nothing to set")
    faults = {mode: int(r.stdout) for mode, r in runs.items()}
    assert faults["keep"] * 2 < faults["default"], faults


def _served_app(monkeypatch: pytest.MonkeyPatch, calls: list[str]):  # type: ignore[no-untyped-def]
    """A Flask app with the service's request plumbing and one view doing expensive work; ``release_memory`` records
    when it runs."""
    from types import SimpleNamespace

    from flask import Flask, Response

    from governance import admission, web
    from governance.admission import Throttles, expensive

    monkeypatch.setattr(admission, "release_memory", lambda: calls.append("released"))
    app = Flask(__name__)
    web.init_app(app)
    throttles = Throttles(Settings())
    app.extensions["consentgate"] = SimpleNamespace(settings=Settings())  # what the problem+json handler reads

    @app.get("/work")
    def work() -> Response:
        with expensive(throttles, "verify", "addr:test") as meter:
            meter.add_frame(1000)
        calls.append("view done")
        return Response(iter([b"the ", b"answer"]))  # the body is written after the view returns

    @app.get("/fail")
    def fail() -> Response:
        with expensive(throttles, "verify", "addr:test"):
            raise LimitExceeded("seconds", 61.0, 60.0, "decoded video: 61 s; at most 60 s allowed (seconds)")

    return app


def test_an_expensive_request_frees_memory_once_its_answer_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """``malloc_trim`` (1-18 ms) runs when the server closes the response, after the body is written: the client does
    not wait for it (issue 12); once per request, whatever the answer."""
    calls: list[str] = []
    client = _served_app(monkeypatch, calls).test_client()
    resp = client.get("/work", buffered=False)
    assert calls == ["view done"]  # answered, not yet released
    assert b"".join(resp.response) == b"the answer"
    resp.close()  # what the WSGI server does once the body is written
    assert calls == ["view done", "released"]
    calls.clear()
    refused = client.get("/fail", buffered=False)  # an error answer (problem+json) frees it too, after it is sent
    assert refused.status_code == 422 and calls == []
    refused.close()
    assert calls == ["released"]


def test_expensive_work_outside_a_request_frees_memory_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance import admission

    calls: list[str] = []
    monkeypatch.setattr(admission, "release_memory", lambda: calls.append("released"))
    with admission.expensive(admission.Throttles(Settings()), "enroll"):
        assert calls == []
    assert calls == ["released"]
