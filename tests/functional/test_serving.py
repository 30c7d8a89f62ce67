"""``consentgate serve --workers N`` (ADR 0010): N API processes under gunicorn on one port, each with its own app."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_serve_with_two_workers_answers_from_two_processes_and_stops(tmp_path):
    pytest.importorskip("gunicorn")
    if not Path("/proc/self/task").exists():
        pytest.skip("counts processes through /proc")
    port = _port()
    env = {**os.environ, "GOVERNANCE_DATA_DIR": str(tmp_path / "var"), "GOVERNANCE_WORKER": "none",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "governance", "serve", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = json.loads(r.read())
                if len(_children(proc.pid)) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert body is not None and body["status"] == "ok"
        assert len(_children(proc.pid)) == 2  # the master and its two workers
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/log", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, out
    assert "processes=2" in out
