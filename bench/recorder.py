"""What recording the live challenge costs the browser, per type ``static/live.js`` may ask MediaRecorder for:
``python -m bench recorder`` (~2 min; needs Debian's chromium, as the browser tests do).

Chromium's fake camera plays a challenge video of a real photo (``tests/detectors/challenge_video.py``, the face
centred in a 640x480 picture, 20 fps). Each round records 5.6 s (what the page records for 3 poses) with every
type in turn, the types alternating so that the machine's load falls on all alike. Reported per type, medians
over the rounds: CPU seconds of every Chromium process while it recorded (psutil), the frames the file holds
against the camera's 112, the frame rate the live check reads from their timestamps, and the file's size.
``--rounds N`` (default 5), ``--size WxH`` (default 640x480).
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
HELPER = Path(__file__).resolve().parents[1] / "tests" / "detectors" / "challenge_video.py"
TYPES = ("video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm;codecs=av1", "video/mp4;codecs=avc1")
SECONDS = 5.6
FPS = 20

#: The page's recorder in miniature: the camera as live.js asks for it, MediaRecorder, the file as base64.
_RECORD = """async ([type, ms]) => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 24}}, audio: false});
  const chunks = [];
  const rec = new MediaRecorder(stream, {mimeType: type});
  rec.ondataavailable = e => { if (e.data && e.data.size) { chunks.push(e.data); } };
  const stopped = new Promise(res => { rec.onstop = res; });
  rec.start(250);
  await new Promise(res => setTimeout(res, ms));
  rec.stop();
  await stopped;
  stream.getTracks().forEach(t => t.stop());
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) { text += String.fromCharCode(...bytes.subarray(i, i + 8192)); }
  return btoa(text);
}"""


def _camera(path: Path, width: int, height: int) -> None:
    import cv2

    spec = importlib.util.spec_from_file_location("bench_challenge_video", HELPER)
    assert spec is not None and spec.loader is not None
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    from media.video import load_image

    side = min(width, height)
    frames = helper.challenge_frames(load_image(FACES / "obama.jpg"), ("left", "up", "right"), size=side, fps=FPS)
    top, left = (height - side) // 2, (width - side) // 2
    with path.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            big = cv2.copyMakeBorder(frame, top, height - side - top, left, width - side - left, cv2.BORDER_REPLICATE)
            fh.write(b"FRAME\n" + cv2.cvtColor(big, cv2.COLOR_RGB2YUV_I420).tobytes())


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def _browser_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]


def _timing(data: bytes) -> tuple[int, float]:
    """Frames in the file and frames a second over the span of their timestamps (plus one frame)."""
    from media.video import iter_timed_frames

    times = [t for _, t, _ in iter_timed_frames(io.BytesIO(data)) if t is not None]
    span = times[-1] - times[0]
    return len(times), (len(times) - 1) / span if span > 0 else float("nan")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench recorder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("bench.recorder: skipped, Debian's chromium is not installed")
        return
    width, height = (int(v) for v in args.size.split("x"))
    from playwright.sync_api import sync_playwright

    rows: dict[str, list[tuple[float, int, float, int]]] = {t: [] for t in TYPES}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        camera = Path(tmp) / "camera.y4m"
        _camera(camera, width, height)
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_context().new_page()
        page.route("http://localhost/", lambda route: route.fulfill(body="<!doctype html><title>rec</title>",
                                                                     content_type="text/html"))
        page.goto("http://localhost/")
        supported = page.evaluate("types => types.filter(t => MediaRecorder.isTypeSupported(t))", list(TYPES))
        pids = _browser_pids()
        for _ in range(args.rounds):
            for kind in supported:
                before = _cpu_seconds(pids)
                data = base64.b64decode(page.evaluate(_RECORD, [kind, int(SECONDS * 1000)]))
                spent = _cpu_seconds(pids) - before
                frames, rate = _timing(data)
                rows[kind].append((spent, frames, rate, len(data)))
                time.sleep(0.5)
        browser.close()
    print(f"{width}x{height} at {FPS} fps, {SECONDS} s a recording ({round(SECONDS * FPS)} frames from the camera), "
          f"medians of {args.rounds} rounds")
    print(f"{'type':26s} {'CPU s':>6s} {'frames':>7s} {'fps':>6s} {'KB':>6s}  frames kept, every round")
    for kind, got in rows.items():
        if not got:
            print(f"{kind:26s} not supported by this browser")
            continue
        med: list[Any] = [statistics.median(col) for col in zip(*got, strict=True)]
        print(f"{kind:26s} {med[0]:6.2f} {med[1]:7.0f} {med[2]:6.1f} {med[3] / 1024:6.0f}  "
              f"{[r[1] for r in got]}")
    base = statistics.median(r[0] for r in rows[TYPES[0]]) if rows[TYPES[0]] else float("nan")
    print("CPU against " + TYPES[0] + ": " + ", ".join(
        f"{k.split('=')[-1]} x{statistics.median(r[0] for r in v) / base:.1f}" for k, v in rows.items() if v))
