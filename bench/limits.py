"""Peak memory and time of the real server on hostile uploads: ``python -m bench limits``.

Starts ``consentgate serve`` (waitress, 8 threads) in a subprocess on a fresh data dir, sends each input
of ``docs/limits.md`` to it over HTTP, and samples the server's resident set size (``VmRSS`` in
``/proc/PID/status``, every 5 ms; Linux only) while the request runs. Reports, per input: the answer,
the limit it names, the wall time of the request, the peak RSS above the RSS before the request, and the
RSS left once it is answered. Then 40 uploads at concurrency 8 from one client, timing a cheap endpoint
(``GET /v1/log``) meanwhile.

Flags: ``--tree PATH`` runs the server from another checkout (e.g. the main branch, to compare);
``--timeout S`` per request (default 120); ``--skip-flood``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.inputs import many_frames_mp4, many_tracks_mp4, no_duration_webm, png_bomb

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """The server's RSS sampled every 5 ms on a thread; ``peak`` since the last :meth:`reset`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, _rss_mb(self.pid))
            except OSError:
                return
            time.sleep(0.005)

    def reset(self) -> float:
        now = _rss_mb(self.pid)
        self.peak = now
        return now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "cgbench0boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _post(url: str, name: str, data: bytes, token: str | None, timeout: float) -> tuple[int, dict]:
    body, ctype = _multipart(name, data)
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except (TimeoutError, urllib.error.URLError) as e:
        return 0, {"detail": f"no answer: {e}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tree: Path, data_dir: Path) -> None:
        self.tree, self.data_dir, self.port = tree, data_dir, _free_port()
        self.env = {**os.environ, "GOVERNANCE_DATA_DIR": str(data_dir), "GOVERNANCE_WORKER": "none",
                    "GOVERNANCE_VERIFY_PER_MINUTE": "0", "GOVERNANCE_VERIFY_MEGAPIXELS_PER_MINUTE": "0",
                    "PYTHONPATH": str(tree)}
        self.url = f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "governance", *args], cwd=self.tree, env=self.env,
                             capture_output=True, text=True, check=True)
        return out.stdout

    def __enter__(self) -> Server:
        self.cli("init")
        self.token = self.cli("accounts", "create", "bench", "--role", "creator").strip().splitlines()[-1]
        self.proc = subprocess.Popen([sys.executable, "-m", "governance", "serve", "--port", str(self.port)],
                                     cwd=self.tree, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def inputs() -> list[tuple[str, str, Callable[[], bytes]]]:
    """(label, endpoint, bytes) for each measured request."""
    return [
        ("PNG 13000x13000 (20 KB)", "verify", lambda: png_bomb(13000)),
        ("PNG 30000x30000 (110 KB)", "verify", lambda: png_bomb(30000)),
        ("MP4 100,000 16x16 frames at 1000 fps (1.3 MB)", "verify", many_frames_mp4),
        ("MP4 900 tracks (1.1 MB)", "verify", many_tracks_mp4),
        ("WebM 400 s of 64x64 at 10 fps, no duration in the header", "verify", lambda: no_duration_webm(side=64)),
        ("the same WebM, to enrollment", "likenesses", lambda: no_duration_webm(side=64)),
        ("AVIF 12 MP phone photo (accepted)", "verify", lambda: (TESTDATA / "field-reports" / "photo-12mp.avif")
         .read_bytes()),
        ("MP4 640x360 9 s real clip (accepted)", "verify", lambda: (TESTDATA / "faces" / "short_hamilton_clip.mp4")
         .read_bytes()),
    ]


def measure(server: Server, timeout: float) -> list[dict]:
    sampler = Sampler(server.proc.pid)
    warm = (TESTDATA / "c2pa" / "no_manifest.jpg").read_bytes()
    _post(server.url + "/v1/verify", "warm.jpg", warm, None, timeout)  # load the decoders once
    _post(server.url + "/v1/verify", "warm.mp4", (TESTDATA / "c2pa" / "video1.mp4").read_bytes(), None, timeout)
    rows = []
    try:
        for label, endpoint, make in inputs():
            data = make()
            time.sleep(0.3)
            before = sampler.reset()
            started = time.perf_counter()
            token = server.token if endpoint == "likenesses" else None
            status, body = _post(f"{server.url}/v1/{endpoint}", "upload", data, token, timeout)
            took = time.perf_counter() - started
            peak = sampler.peak
            time.sleep(0.3)
            rows.append({"input": label, "endpoint": endpoint, "status": status, "limit": body.get("limit"),
                         "seconds": round(took, 2), "rss_before_mb": round(before),
                         "peak_extra_mb": round(peak - before), "rss_after_mb": round(_rss_mb(server.proc.pid))})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        sampler.stop()
    return rows


def flood(server: Server, timeout: float, uploads: int = 40, concurrency: int = 8) -> dict:
    """``uploads`` verifications of a 9 s clip from one client, ``concurrency`` at a time; meanwhile
    ``GET /v1/log`` every 100 ms (the slowest answer is what another user waits)."""
    clip = (TESTDATA / "faces" / "short_hamilton_clip.mp4").read_bytes()
    sampler = Sampler(server.proc.pid)
    before = sampler.reset()
    done = threading.Event()
    cheap: list[float] = []

    def poll() -> None:
        while not done.is_set():
            t = time.perf_counter()
            try:
                urllib.request.urlopen(server.url + "/v1/log", timeout=timeout).read()
            except urllib.error.URLError:
                pass
            cheap.append(time.perf_counter() - t)
            time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: _post(server.url + "/v1/verify", "clip.mp4", clip, None, timeout)[0],
                                range(uploads)))
    took = time.perf_counter() - started
    done.set()
    poller.join()
    sampler.stop()
    statuses = {str(code): results.count(code) for code in sorted(set(results))}
    row = {"uploads": uploads, "concurrency": concurrency, "statuses": statuses, "seconds": round(took, 1),
           "slowest_other_request_s": round(max(cheap), 2) if cheap else None,
           "peak_extra_mb": round(sampler.peak - before)}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench limits")
    p.add_argument("--tree", type=Path, default=ROOT, help="checkout to run the server from (default: this one)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--skip-flood", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Server(args.tree.resolve(), Path(tmp) / "var") as server:
        print(f"server from {args.tree.resolve()} pid {server.proc.pid}, {os.cpu_count()} CPUs", flush=True)
        measure(server, args.timeout)
        if not args.skip_flood:
            flood(server, args.timeout)


if __name__ == "__main__":
    main(sys.argv[1:])
