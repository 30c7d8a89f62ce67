"""Many machines, on one: two API processes and two workers (real processes, `python -m governance serve` and
`worker`) against PostgreSQL and a Redis broker of the test's own (a `redis-server` it starts on a free port, so
it can be stopped without touching the shared one).

- kill -9 the worker running a job in each stage (generating, scanning, sealing): the other worker takes it
  over once its lease runs out, it is released once, signed and marked, and quarantine is left clean;
- stop the broker for 30 s: requests are still accepted (202, the job waits in the database) and /readyz says
  503; once the broker is back the sweep hands the waiting jobs over and every one is released; nothing is lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cluster import REDIS_SERVER, ROOT, Cluster, wait

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary for a broker of its own")
OUTAGE_S = 30.0
TEST_ENV = {"GOVERNANCE_DURATION_S": "4", "GOVERNANCE_FRAME_SIZE": "256", "GOVERNANCE_JOB_LEASE_S": "3",
            "GOVERNANCE_SWEEP_EVERY_S": "1", "GOVERNANCE_RESUBMIT_AFTER_S": "5"}


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url, TEST_ENV)
    try:
        subprocess.run([sys.executable, "-m", "governance", "init"], cwd=ROOT, env=c.env, check=True,
                       capture_output=True)
        c.start_redis()
        yield c
    finally:
        c.close()
        for log in sorted(tmp_path.glob("*.log")):  # what each process said, when a check above failed
            sys.stderr.write(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text().splitlines()[-15:]) + "\n")


def _released_once_and_sealed(c: Cluster, port: int, token: str, gen_id: str) -> None:
    state, _, reasons = c.row(gen_id)
    assert state == "RELEASED", reasons
    assert c.scalar("SELECT count(*) FROM logentry WHERE generation_id = :g", g=gen_id) == 1
    assert c.scalar("SELECT count(*) FROM contentfingerprint WHERE generation_id = :g", g=gen_id) == 1
    status, video = c.get(port, f"/v1/generations/{gen_id}/video", token)
    assert status == 200
    boundary = "cgboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"v.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + video + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/verify", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        report = json.loads(r.read())
    assert report["c2pa"]["state"] == "Trusted" and report["record"]["generation_id"] == gen_id
    assert report["watermark"]["found"]


def test_kill9_a_worker_in_each_stage_then_stop_the_broker(cluster: Cluster) -> None:
    c = cluster
    api_a, api_b = c.start_api(), c.start_api()
    c.start_worker("w1")
    c.start_worker("w2")
    token = c.account("bob")
    quarantine = c.tmp / "var" / "quarantine"

    # -- kill -9 the worker that holds the job, in each stage ------------------------------------------------
    spare = 3
    for i, stage in enumerate(("GENERATING", "SCANNING", "SEALING")):
        gen_id = c.generate(api_a if i % 2 == 0 else api_b, token, f"a lighthouse in a storm, take {i}")
        state, holder, _ = wait(f"{gen_id} in {stage}", lambda g=gen_id, s=stage: (
            lambda r: r if r[0] == s else None)(c.row(g)), 90, 0.02)
        victim = holder.split("/")[0]
        c.kill9(victim)
        killed_at = time.monotonic()
        wait(f"{gen_id} released after {victim} was killed in {stage}",
              lambda g=gen_id: c.row(g)[0] in ("RELEASED", "BLOCKED"), 120, 0.2)
        took = time.monotonic() - killed_at
        survivor = next(iter(c.workers))
        assert c.row(gen_id)[1].split("/")[0] == survivor, f"{gen_id} was not finished by {survivor}"
        _released_once_and_sealed(c, api_b, token, gen_id)
        sys.stderr.write(f"killed {victim} in {stage}: released by {survivor} {took:.1f} s later\n")
        c.start_worker(f"w{spare}")  # the killed one's replacement, under a new name
        spare += 1
    wait("quarantine left clean", lambda: not any(quarantine.iterdir()), 30, 0.2)

    # -- stop the broker for 30 s ----------------------------------------------------------------------------
    c.stop_redis()
    stopped_at = time.monotonic()
    status, body = c.get(api_a, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["broker"].startswith("unreachable")
    waiting = [c.generate(port, token, f"a harbour at dawn, {n}") for n, port in enumerate((api_a, api_b, api_a))]
    assert all(c.row(g)[0] == "PRECHECKED" for g in waiting)  # accepted, kept in the database
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    c.start_redis()  # a fresh, empty broker: whatever it held is gone too
    wait("ready again", lambda: c.get(api_b, "/readyz")[0] == 200, 30, 0.5)
    for gen_id in waiting:
        wait(f"{gen_id} released after the outage", lambda g=gen_id: c.row(g)[0] in ("RELEASED", "BLOCKED"),
              180, 0.5)
        _released_once_and_sealed(c, api_a, token, gen_id)
    wait("quarantine left clean", lambda: not any(quarantine.iterdir()), 30, 0.2)
    assert c.scalar("SELECT count(*) FROM generation WHERE state <> 'RELEASED'") == 0
    assert c.scalar("SELECT count(*) FROM logentry") == 6
