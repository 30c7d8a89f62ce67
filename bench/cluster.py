"""A deployment on one machine, for tests and benchmarks: API processes (`python -m governance serve`) and workers
(`worker`) as real processes against a PostgreSQL database and a `redis-server` broker of its own (started on a
free port, so it can be stopped without touching a shared one). Used by tests/functional/test_many_processes.py
and ``python -m bench scale``."""

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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, check: Any, timeout: float = 60.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """The processes of one deployment, and HTTP and database access to them."""

    def __init__(self, tmp: Path, pg_url: str, env: dict[str, str] | None = None) -> None:
        self.tmp, self.pg_url = tmp, pg_url
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.apis: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.workers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")} | {
            "GOVERNANCE_DATA_DIR": str(tmp / "var"), "GOVERNANCE_DATABASE_URL": pg_url,
            "GOVERNANCE_QUEUE": "redis", "GOVERNANCE_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "GOVERNANCE_WORKER": "none", "GOVERNANCE_BROKER_MAINTENANCE_CHANCE": "1000000",
            "GOVERNANCE_LOG_FORMAT": "json", "GOVERNANCE_DAILY_QUOTA": "100000",
            "GOVERNANCE_MIN_FREE_BYTES": "0", "GOVERNANCE_VERIFY_PER_MINUTE": "1000",
            "OMP_NUM_THREADS": "1",
        } | (env or {})
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
        wait("redis-server", lambda: _connects(self.redis_port), 10)

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait(10)

    def start_api(self) -> int:
        port = free_port()
        self.apis.append((port, self._spawn(f"api-{port}", "serve", "--port", str(port))))
        wait(f"API on {port}", lambda: self.get(port, "/healthz")[0] == 200, 90, 0.3)
        return port

    def start_worker(self, name: str) -> None:
        metrics_port = free_port()
        proc = self._spawn(name, "worker", "--name", name, "--metrics-port", str(metrics_port))
        self.workers[name] = (proc, metrics_port)
        wait(f"worker {name}", lambda: b"processed" not in self.log(name) and b"worker '" in self.log(name), 90, 0.3)

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

    def init(self) -> None:
        subprocess.run([sys.executable, "-m", "governance", "init"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)

    def metrics(self) -> str:
        """The /metrics text of every API process and worker, one after the other."""
        texts = [self.get(port, "/metrics")[1].decode() for port, _ in self.apis]
        texts += [self.get(port, "/metrics")[1].decode() for _, port in self.workers.values()]
        return "\n".join(texts)

    def account(self, name: str, role: str = "creator") -> str:
        out = subprocess.run([sys.executable, "-m", "governance", "accounts", "create", name, "--role", role],
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
