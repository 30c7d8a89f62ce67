"""The library stages of sealing and verification, CPU and wall: ``python -m bench library [--repeat 3]``.

For before/after comparisons on a shared machine: run it from two checkouts one after the other, several times
alternating (``python -c "import sys; from bench.library import main; main(sys.argv[1:])"`` from a checkout
that lacks it, with this file and ``bench/media_clips.py`` copied in), and compare the CPU seconds, which move
far less with the machine's load than wall time does. One 10 s 512x512 24 fps clip of the embedded generator
(one face) is made once; each stage is the best of ``--repeat``:

- ``label``, ``embed`` (the default strength), ``encode`` (crf 18, the bare baseline), ``read-back``
  (``detect_video`` of up to 240 frames, stopping at the first early check where the mark verifies), as the gate
  runs them;
- ``verify`` (``verify_bytes`` of the encoded file with a watermark key and no records: C2PA, the watermark's
  evidence and search).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.media_clips import load, procedural_clip


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu, out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench library")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    from governance.verification.services import verify_bytes
    from media.video import write_video
    from provenance.label import add_visible_label
    from provenance.watermark import WatermarkKey, detect_video, embed

    print(load())
    key = WatermarkKey(b"bench-library-watermark-key-0000")
    clip = procedural_clip(10, 512)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        rows = {}
        rows["label"] = _best(lambda: add_visible_label(clip.frames, "AI-generated", sub="ConsentGate"), args.repeat)
        rows["embed"] = _best(lambda: embed(rows["label"][2], b"library!", key), args.repeat)
        path = tmp / "marked.mp4"
        rows["encode (baseline)"] = _best(lambda: write_video(path, clip.with_frames(rows["embed"][2]), crf=18),
                                          args.repeat)
        rows["read-back"] = _best(lambda: detect_video(path, key, max_frames=240, early=True), args.repeat)
        data = path.read_bytes()
        rows["verify"] = _best(lambda: verify_bytes(data, watermark_keys=[key]), args.repeat)
        assert rows["read-back"][2] is not None and rows["verify"][2]["watermark"]["found"]
        base_w, base_c = rows["encode (baseline)"][:2]
        print("\n10 s 512x512 24 fps, best of", args.repeat)
        for name, (w, c, _) in rows.items():
            print(f"  {name:<18} wall {w:6.3f} s ({w / base_w:4.2f}x encode)   CPU {c:6.3f} s ({c / base_c:4.2f}x)")
    print(load())
