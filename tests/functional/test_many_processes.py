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
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary for a broker of its own")
OUTAGE_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Any, timeout: float = 60.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """The processes of one deployment, and HTTP and database access to them."""

    def __init__(self, tmp: Path, pg_url: str) -> None:
        self.tmp, self.pg_url = tmp, pg_url
        self.redis_port = _free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.apis: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.workers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")} | {
            "GOVERNANCE_DATA_DIR": str(tmp / "var"), "GOVERNANCE_DATABASE_URL": pg_url,
            "GOVERNANCE_QUEUE": "redis", "GOVERNANCE_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "GOVERNANCE_WORKER": "none", "GOVERNANCE_DURATION_S": "4", "GOVERNANCE_FRAME_SIZE": "256",
            "GOVERNANCE_JOB_LEASE_S": "3", "GOVERNANCE_BROKER_MAINTENANCE_CHANCE": "1000000",
            "GOVERNANCE_SWEEP_EVERY_S": "1", "GOVERNANCE_RESUBMIT_AFTER_S": "5", "GOVERNANCE_LOG_FORMAT": "json",
            "GOVERNANCE_MIN_FREE_BYTES": "0", "GOVERNANCE_VERIFY_PER_MINUTE": "1000",
            "OMP_NUM_THREADS": "1",
        }
        from sqlalchemy import create_engine

        self.db = create_engine(pg_url)

    # -- processes ------------------------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen([sys.executable, "-m", "governance", *args], cwd=ROOT, env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT)

    def start_redis(self) -> None:
        self.redis = subprocess.Popen([REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait("redis-server", lambda: _connects(self.redis_port), 10)

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait(10)

    def start_api(self) -> int:
        port = _free_port()
        self.apis.append((port, self._spawn(f"api-{port}", "serve", "--port", str(port))))
        _wait(f"API on {port}", lambda: self.get(port, "/healthz")[0] == 200, 90, 0.3)
        return port

    def start_worker(self, name: str) -> None:
        metrics_port = _free_port()
        proc = self._spawn(name, "worker", "--name", name, "--metrics-port", str(metrics_port))
        self.workers[name] = (proc, metrics_port)
        _wait(f"worker {name}", lambda: b"processed" not in self.log(name) and b"worker '" in self.log(name), 90, 0.3)

    def kill9(self, name: str) -> None:
        proc, _ = self.workers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def log(self, name: str) -> bytes:
        path = self.tmp / f"{name}.log"
        return path.read_bytes() if path.exists() else b""

    def close(self) -> None:
        procs = [p for p, _ in self.workers.values()] + [p for _, p in self.apis]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(10)
        self.db.dispose()

    # -- HTTP and database ----------------------------------------------------------------------------------
    def get(self, port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
        return self.request(port, "GET", path, token)

    def request(self, port: int, method: str, path: str, token: str | None = None, body: Any = None
                ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def account(self, name: str) -> str:
        out = subprocess.run([sys.executable, "-m", "governance", "accounts", "create", name, "--role", "creator"],
                             cwd=ROOT, env=self.env, check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]

    def generate(self, port: int, token: str, prompt: str) -> str:
        status, body = self.request(port, "POST", "/v1/generations", token, {"prompt": prompt, "seed": 3})
        assert status == 202, body
        return str(json.loads(body)["id"])

    def row(self, gen_id: str) -> Any:
        import sqlalchemy as sa

        with self.db.connect() as conn:
            return conn.execute(sa.text("SELECT state, claimed_by, reasons FROM generation WHERE id = :id"),
                                {"id": gen_id}).one()

    def scalar(self, sql: str, **params: Any) -> Any:
        import sqlalchemy as sa

        with self.db.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url)
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
        state, holder, _ = _wait(f"{gen_id} in {stage}", lambda g=gen_id, s=stage: (
            lambda r: r if r[0] == s else None)(c.row(g)), 90, 0.02)
        victim = holder.split("/")[0]
        c.kill9(victim)
        killed_at = time.monotonic()
        _wait(f"{gen_id} released after {victim} was killed in {stage}",
              lambda g=gen_id: c.row(g)[0] in ("RELEASED", "BLOCKED"), 120, 0.2)
        took = time.monotonic() - killed_at
        survivor = next(iter(c.workers))
        assert c.row(gen_id)[1].split("/")[0] == survivor, f"{gen_id} was not finished by {survivor}"
        _released_once_and_sealed(c, api_b, token, gen_id)
        sys.stderr.write(f"killed {victim} in {stage}: released by {survivor} {took:.1f} s later\n")
        c.start_worker(f"w{spare}")  # the killed one's replacement, under a new name
        spare += 1
    _wait("quarantine left clean", lambda: not any(quarantine.iterdir()), 30, 0.2)

    # -- stop the broker for 30 s ----------------------------------------------------------------------------
    c.stop_redis()
    stopped_at = time.monotonic()
    status, body = c.get(api_a, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["broker"].startswith("unreachable")
    waiting = [c.generate(port, token, f"a harbour at dawn, {n}") for n, port in enumerate((api_a, api_b, api_a))]
    assert all(c.row(g)[0] == "PRECHECKED" for g in waiting)  # accepted, kept in the database
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    c.start_redis()  # a fresh, empty broker: whatever it held is gone too
    _wait("ready again", lambda: c.get(api_b, "/readyz")[0] == 200, 30, 0.5)
    for gen_id in waiting:
        _wait(f"{gen_id} released after the outage", lambda g=gen_id: c.row(g)[0] in ("RELEASED", "BLOCKED"),
              180, 0.5)
        _released_once_and_sealed(c, api_a, token, gen_id)
    _wait("quarantine left clean", lambda: not any(quarantine.iterdir()), 30, 0.2)
    assert c.scalar("SELECT count(*) FROM generation WHERE state <> 'RELEASED'") == 0
    assert c.scalar("SELECT count(*) FROM logentry") == 6
