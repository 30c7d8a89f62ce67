"""The real HTTP servers for tests: ``python -m governance serve`` started on a fresh data dir, and raw HTTP/1.1
exchanges with it over a socket (what a client library would refuse to send). Shared by
tests/functional/test_serving.py and the review tests of the servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(tmp: Path, settings: Mapping[str, str] = {}) -> dict[str, str]:  # noqa: B006 (never mutated)
    """The environment of a server (and of its CLI) on the data dir ``tmp/var``, no worker, ``settings`` added."""
    return {**os.environ, "GOVERNANCE_DATA_DIR": str(tmp / "var"), "GOVERNANCE_WORKER": "none",
            "PYTHONPATH": str(ROOT), **settings}


def start(tmp: Path, *args: str, settings: Mapping[str, str] = {}) -> tuple[subprocess.Popen[bytes], int, Path]:  # noqa: B006
    """``python -m governance serve --port P *args`` on :func:`server_env`, once it answers ``/healthz``: the
    process, its port and the file its output goes to. Fails the test with that output if it exits first."""
    port, log = free_port(), tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "governance", "serve", "--port", str(port), *args],
                                cwd=ROOT, env=server_env(tmp, settings), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    if proc.poll() is not None:
        pytest.fail(log.read_text(errors="replace"))
    return proc, port, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def exchange(port: int, head: bytes, body_chunks: Iterable[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` then each of ``body_chunks`` (stopping when the server stops reading) on a fresh connection;
    the answer's status, headers (lower-cased names) and body, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: the rest is not read
                break
        data = b""
        while True:
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            data += got
    head_raw, _, body = data.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return int(lines[0].split()[1]), headers, body
