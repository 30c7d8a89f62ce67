"""Clips the seal and verify benchmarks share: procedural scenes with one real face (``../shared/testdata``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "testdata" / "faces"


def face_crop() -> np.ndarray:
    """Obama's face box with a 0.5 margin (the crop the gate hands the generator), from testdata."""
    from detectors.faces import crop_face, default_backend
    from media.video import load_image

    rgb = load_image(FACES / "obama.jpg")
    [det] = default_backend().detect(rgb)[:1]
    return crop_face(rgb, det.box, 0.5)


def procedural_clip(seconds: float, side: int, *, fps: float = 24.0, seed: int = 7, with_face: bool = True) -> Any:
    """A ``seconds`` long ``side`` x ``side`` clip of the embedded generator (a Clip), with one face. Sides over
    the generator's largest (1024 px) are rendered at 1024 and resized (area), for the resolution curves."""
    import cv2

    from generator.base import DURATION_RANGE_S, SIDE_RANGE_PX, GenerationSpec
    from generator.procedural import ProceduralGenerator

    render = min(side, SIDE_RANGE_PX[1])
    faces = (face_crop(),) if with_face else ()
    longest = DURATION_RANGE_S[1]
    if seconds > longest:  # longer than one generation: scenes of the longest length, one after the other
        parts = [procedural_clip(min(longest, seconds - start), side, fps=fps, seed=seed + k, with_face=with_face)
                 for k, start in enumerate(np.arange(0, seconds, longest))]
        from media.video import Clip

        return Clip(frames=np.concatenate([p.frames for p in parts]), fps=fps)  # no soundtrack: frames are timed
    spec = GenerationSpec(prompt="a person walking by the sea at dusk", seed=seed, faces=faces,
                          duration_s=seconds, width=render, height=render, fps=fps)
    clip = ProceduralGenerator(min_face_px=min(80, render // 4)).generate(spec)
    if render == side:
        return clip
    return clip.with_frames(np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_CUBIC) for f in clip.frames]))


CPU: dict[int, float] = {}
"""The CPU seconds (this process, every thread) of the run :func:`best` last kept, by ``id`` of the callable:
on a machine shared with other work, CPU time moves far less with the load than wall time does."""


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(the best wall time in seconds of ``repeat`` runs, the last result); its CPU time goes to :data:`CPU`."""
    times, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    CPU[id(fn)] = min(cpus)
    return min(times), out


def load() -> str:
    """The machine's load averages (1, 5, 15 min): other engineers share these cores."""
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} on {os.cpu_count()} cores"
