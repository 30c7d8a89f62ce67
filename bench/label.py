"""The visible label's cost: the moving label drawn in place (:func:`provenance.label.draw_label`) against the
static badge as the gate drew it before (:func:`provenance.label.add_visible_label`: a copy of the whole
clip, then a float blend of the corner), both measured in this run on the same frames.

``python -m bench label`` prints, per frame size, the best of five runs of each (after one warm-up run that
renders and caches the badges) and the ratio. docs/provenance.md records a run.
"""

from __future__ import annotations

import time

import numpy as np

from provenance.label import LabelSpec, add_visible_label, draw_label

# h, w, frames (10 s, 10 s, 5 s and 2.5 s at 24 fps)
SIZES = ((256, 256, 240), (512, 512, 240), (720, 1280, 120), (1080, 1920, 60))
RUNS = 5


def _best(fn, frames: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    fn(frames.copy())  # warm-up: badge rendering is cached
    times = []
    for _ in range(RUNS):
        work = frames.copy()  # outside the timer: the in-place draw needs frames of its own
        t0 = time.perf_counter()
        fn(work)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(flags: list[str]) -> None:
    spec = LabelSpec("ada_lovelace")
    print(f"{'size':>11} {'frames':>6} {'static copy (ms)':>17} {'moving in place (ms)':>21} {'ratio':>6}")
    for h, w, t in SIZES:
        frames = np.random.default_rng(0).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
        old = _best(lambda f: add_visible_label(f, "AI-generated", sub="ConsentGate"), frames)
        new = _best(lambda f: draw_label(f, 24.0, spec), frames)
        print(f"{w:>5}x{h:<5} {t:>6} {old * 1e3:>17.1f} {new * 1e3:>21.1f} {old / new:>5.1f}x", flush=True)
