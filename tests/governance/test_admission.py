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


def _returner(calls: list[str], busy: list[bool], quiet_s: float = 0.05):  # type: ignore[no-untyped-def]
    from governance.admission import MemoryReturn

    return MemoryReturn(lambda: busy[0], quiet_s, release=lambda: calls.append("released"))


def _wait_for(calls: list[str], n: int, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while len(calls) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_freed_memory_goes_back_once_expensive_work_has_stopped() -> None:
    """Requests that follow each other closely keep the memory the last one freed (no trim, no faulting it in
    again); it goes back ``quiet_s`` after the last one, once (issue 12, third pass)."""
    import time

    calls: list[str] = []
    returner = _returner(calls, [False])
    try:
        for _ in range(5):  # a burst: each ends before the quiet time has passed
            returner.done()
            time.sleep(0.01)
        assert calls == []
        _wait_for(calls, 1)
        assert calls == ["released"]
        time.sleep(0.15)
        assert calls == ["released"]  # nothing freed since: nothing to hand back
        returner.done()
        _wait_for(calls, 2)
        assert calls == ["released", "released"]
    finally:
        returner.close()


def test_memory_is_not_handed_back_while_a_request_decodes() -> None:
    import time

    calls: list[str] = []
    busy = [True]
    returner = _returner(calls, busy)
    try:
        returner.done()  # one ended while another still holds a slot
        time.sleep(0.2)
        assert calls == []  # that one hands it back when it ends
        busy[0] = False
        returner.done()
        _wait_for(calls, 1)
        assert calls == ["released"]
    finally:
        returner.close()


def test_closing_hands_back_what_is_still_held() -> None:
    calls: list[str] = []
    returner = _returner(calls, [False], quiet_s=60.0)
    returner.done()
    returner.close()
    assert calls == ["released"]
    returner.done()  # closed: nothing more
    assert calls == ["released"]


def test_expensive_work_hands_its_memory_back_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance import admission

    calls: list[str] = []
    monkeypatch.setattr(admission, "release_memory", lambda: calls.append("released"))
    throttles = admission.Throttles(Settings())
    throttles.memory.quiet_s = 0.05
    try:
        with admission.expensive(throttles, "verify", "addr:test") as meter:
            meter.add_frame(1000)
            assert throttles.slots.busy()
        assert not throttles.slots.busy() and calls == []
        _wait_for(calls, 1)
        assert calls == ["released"]
    finally:
        throttles.close()
