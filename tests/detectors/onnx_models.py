"""Tiny ONNX stand-ins for insightface's models, built with torch so the tests need no weights.

They have the inputs and outputs of the real files (SCRFD ``det_10g.onnx``: 1x3x640x640 in, scores /
box distances / keypoint offsets for strides 8, 16, 32 with 2 anchors each; ArcFace ``w600k_r50.onnx``:
Nx3x112x112 in, Nx512 out), but random or hand-set values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.insightface import export_onnx as _export

STRIDES = (8, 16, 32)
ANCHORS = 2


def rows(size: int, stride: int) -> int:
    return (size // stride) ** 2 * ANCHORS


def constant_outputs(size: int = 640, hits: list[dict] | None = None) -> list[np.ndarray]:
    """SCRFD outputs (9 arrays, scores-boxes-keypoints per stride) that are zero except for ``hits``:
    dicts with ``stride``, ``x``, ``y`` (grid cell), ``anchor``, ``score``, ``dist`` (4) and ``kps`` (10)."""
    scores = {s: np.zeros((rows(size, s), 1), np.float32) for s in STRIDES}
    boxes = {s: np.zeros((rows(size, s), 4), np.float32) for s in STRIDES}
    kps = {s: np.zeros((rows(size, s), 10), np.float32) for s in STRIDES}
    for h in hits or []:
        s = h["stride"]
        row = ((h["y"] * (size // s)) + h["x"]) * ANCHORS + h["anchor"]
        scores[s][row, 0] = h["score"]
        boxes[s][row] = h["dist"]
        kps[s][row] = h["kps"]
    return [scores[s] for s in STRIDES] + [boxes[s] for s in STRIDES] + [kps[s] for s in STRIDES]


def constant_scrfd(path: Path, size: int = 640, hits: list[dict] | None = None, *, batched: bool = False,
                   shuffled: bool = False, keypoints: bool = True) -> Path:
    """A 'detector' whose outputs are the constants of :func:`constant_outputs` whatever the input."""
    import torch

    outs = constant_outputs(size, hits)
    if not keypoints:
        outs = outs[:6]
    if shuffled:
        outs = outs[::-1]

    class Const(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i, o in enumerate(outs):
                self.register_buffer(f"o{i}", torch.from_numpy(o[None] if batched else o))

        def forward(self, x):  # the input must be used, or the exporter drops it
            zero = x.mean() * 0.0
            return tuple(getattr(self, f"o{i}") + zero for i in range(len(outs)))

    names = [f"out{i}" for i in range(len(outs))]
    return _export(Const(), torch.zeros(1, 3, size, size), path, ["input.1"], names)


def random_scrfd(path: Path, size: int | None = 640) -> Path:
    """A convolutional SCRFD look-alike (random weights, score bias -8 so it finds nothing); with
    ``size=None`` its input height and width are dynamic, like the insightface exports."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
            self.down = torch.nn.ModuleList([torch.nn.Identity(), torch.nn.Conv2d(8, 8, 3, 2, 1),
                                             torch.nn.Conv2d(8, 8, 3, 4, 1)])
            self.cls = torch.nn.Conv2d(8, ANCHORS, 1)
            self.reg = torch.nn.Conv2d(8, ANCHORS * 4, 1)
            self.kps = torch.nn.Conv2d(8, ANCHORS * 10, 1)
            torch.nn.init.constant_(self.cls.bias, -8.0)

        def forward(self, x):
            f = torch.relu(self.stem(x))
            scores, boxes, kps = [], [], []
            for down in self.down:
                g = down(f)
                scores.append(torch.sigmoid(self.cls(g)).permute(0, 2, 3, 1).reshape(-1, 1))
                boxes.append(self.reg(g).permute(0, 2, 3, 1).reshape(-1, 4))
                kps.append(self.kps(g).permute(0, 2, 3, 1).reshape(-1, 10))
            return tuple(scores + boxes + kps)

    side = size or 640
    dynamic = None if size else {"input.1": {2: "height", 3: "width"}}
    return _export(Head(), torch.zeros(1, 3, side, side), path, ["input.1"], [f"o{i}" for i in range(9)], dynamic)


def random_arcface(path: Path, dim: int = 512, seed: int = 0, *, dynamic_batch: bool = True) -> Path:
    """A small random CNN with ArcFace's I/O: Nx3x112x112 -> Nx``dim`` (not normalised)."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=4, padding=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 14 * 14, dim),
    )
    dynamic = {"input.1": {0: "batch"}, "fc1": {0: "batch"}} if dynamic_batch else None
    return _export(net, torch.zeros(1, 3, 112, 112), path, ["input.1"], ["fc1"], dynamic)
