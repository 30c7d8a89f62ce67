"""Throughput of the insightface backend: ``python -m bench insightface [--model-dir DIR] [--providers P,...]``.

What it times, on whichever onnxruntime providers are active (CUDA first when onnxruntime-gpu and a GPU
are there, else the CPU):

- **recogniser faces/s** through :meth:`detectors.insightface.InsightFaceBackend.embed` (alignment,
  normalisation, one ONNX call per batch, L2 normalisation), at 1, 8 and 32 faces per call, on frames of
  ``short_hamilton_clip.mp4``;
- with ``--model-dir`` (the operator's SCRFD + ArcFace files, docs/insightface.md): also **detector
  frames/s** (:meth:`~detectors.insightface.InsightFaceBackend.detect`, letterbox + SCRFD + decoding) and
  a whole :func:`detectors.scan.scan_video` of the clip.

Without ``--model-dir`` no weights are needed: the recogniser is an **IResNet-50 with random weights**,
the architecture of insightface's ``w600k_r50.onnx`` (same layers, same input and output, ~6.3 GFLOPs a
face), exported here with torch, so its speed is the real model's; the detector is a tiny stand-in that
only lets the backend load (no detector timing is printed for it). Random weights say nothing about
accuracy: ``python -m detectors.calibrate --backend insightface --model-dir DIR`` measures that.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
CLIP = TESTDATA / "faces" / "short_hamilton_clip.mp4"
BATCHES = (1, 8, 32)


def export_onnx(module, example, path: Path, inputs: list[str], outputs: list[str],  # type: ignore[no-untyped-def]
                dynamic: dict | None = None) -> Path:
    """Export a torch module to ONNX (opset 17) with the TorchScript exporter, which needs no onnxscript;
    used here and by the tests' tiny stand-in models."""
    import warnings

    import torch

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter says it is deprecated
        torch.onnx.export(module, (example,), str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
    return path


def iresnet50(path: Path) -> Path:
    """ArcFace's IResNet-50 (stages of 3, 4, 14 and 3 pre-activation blocks, 64-512 channels, PReLU,
    a 512x7x7 -> 512 embedding layer) with random weights, exported to ONNX with a dynamic batch."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout),
                nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.body(x) + self.skip(x)

    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)]
    cin = 64
    for cout, blocks in ((64, 3), (128, 4), (256, 14), (512, 3)):
        for i in range(blocks):
            layers.append(Block(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers += [nn.BatchNorm2d(512), nn.Flatten(), nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512)]
    torch.manual_seed(0)
    net = nn.Sequential(*layers)
    return export_onnx(net, torch.zeros(2, 3, 112, 112), path, ["input.1"], ["fc1"],
                       {"input.1": {0: "batch"}, "fc1": {0: "batch"}})


def detector_standin(path: Path) -> Path:
    """A tiny network with SCRFD's 9 outputs at 640x640 (scores, box distances, keypoints for strides 8,
    16 and 32, two anchors), which finds nothing: it only lets the backend load."""
    import torch
    from torch import nn

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, stride=8, padding=1)
            self.heads = nn.ModuleList([nn.Conv2d(4, n, 1) for n in (2, 8, 20)])

        def forward(self, x):  # type: ignore[no-untyped-def]
            f = self.stem(x)
            out: list[list[torch.Tensor]] = [[], [], []]
            for pool in (1, 2, 4):
                g = nn.functional.avg_pool2d(f, pool) if pool > 1 else f
                for k, (head, width) in enumerate(zip(self.heads, (1, 4, 10), strict=True)):
                    y = head(g).permute(0, 2, 3, 1).reshape(-1, width)
                    out[k].append(torch.sigmoid(y) * 0.0 if k == 0 else y)
            return tuple(out[0] + out[1] + out[2])

    return export_onnx(Heads(), torch.zeros(1, 3, 640, 640), path, ["input.1"], [f"o{i}" for i in range(9)])


def _frames(count: int) -> list[np.ndarray]:
    from media.video import iter_frames

    return [f for _, f in iter_frames(CLIP, every=max(1, 275 // count))][:count]


def _fake_faces(rgb: np.ndarray, n: int) -> list:  # type: ignore[type-arg]
    """``n`` detections with ArcFace-template landmarks at different places in ``rgb`` (alignment then
    warps a real image patch of the same size as for a real face)."""
    from detectors.faces import Box, Detection
    from detectors.insightface import ARCFACE_TEMPLATE

    h, w = rgb.shape[:2]
    rng = np.random.default_rng(n)
    out = []
    for _ in range(n):
        side = int(rng.integers(60, 140))
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        marks = ARCFACE_TEMPLATE / 112.0 * side + np.array([x, y], np.float32)
        out.append(Detection(Box(top=y, right=x + side, bottom=y + side, left=x), 0.9, marks, 0.0))
    return out


def _cycle(fn, calls: list[tuple]):  # type: ignore[no-untyped-def, type-arg]
    """A no-argument function that calls ``fn`` with each of ``calls`` in turn, round and round."""
    state = {"k": 0}

    def one() -> None:
        fn(*calls[state["k"] % len(calls)])
        state["k"] += 1

    return one


def _rate(fn, items_per_call: int, min_s: float = 3.0) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up (CUDA kernels, memory arenas)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < min_s or calls < 3:
        fn()
        calls += 1
    return calls * items_per_call / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench insightface", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", help="the operator's SCRFD + ArcFace ONNX files (default: a random IResNet-50)")
    parser.add_argument("--providers",
                        help="onnxruntime providers in order, e.g. CUDAExecutionProvider,CPUExecutionProvider")
    args = parser.parse_args(argv)

    import onnxruntime

    from detectors.insightface import InsightFaceBackend

    providers = args.providers.split(",") if args.providers else None
    with tempfile.TemporaryDirectory() as tmp:
        if args.model_dir:
            model_dir, what = Path(args.model_dir), f"operator's models in {args.model_dir}"
        else:
            model_dir, what = Path(tmp), "random-weight IResNet-50 (w600k_r50's architecture) + a stand-in detector"
            started = time.perf_counter()
            iresnet50(model_dir / "w600k_r50.onnx")
            detector_standin(model_dir / "det_standin.onnx")
            print(f"built the models in {time.perf_counter() - started:.1f} s", flush=True)
        backend = InsightFaceBackend(model_dir, providers=providers)
        print(f"onnxruntime {onnxruntime.__version__} on {onnxruntime.get_device()}; active providers "
              f"{backend.active_providers}; {what}", flush=True)
        frames = _frames(8)
        print(f"{'faces per call':>14} | {'faces/s':>8} | {'ms per face':>11}")
        for n in BATCHES:
            rate = _rate(_cycle(backend.embed, [(f, _fake_faces(f, n)) for f in frames]), n)
            print(f"{n:>14} | {rate:8.1f} | {1000.0 / rate:11.2f}", flush=True)
        if args.model_dir:
            from detectors.index import LikenessIndex
            from detectors.scan import scan_video

            fps = _rate(_cycle(backend.detect, [(f,) for f in frames]), 1)
            print(f"detector: {fps:.1f} frames/s (640x360 frames letterboxed to "
                  f"{backend.det_size[1]}x{backend.det_size[0]})")
            started = time.perf_counter()
            result = scan_video(CLIP, LikenessIndex(dim=backend.dim), backend)
            took = time.perf_counter() - started
            print(f"scan_video of the {result.frame_count}-frame clip: {took:.2f} s, {result.frames_scanned} frames "
                  f"detected, {result.embeddings} faces embedded, {len(result.tracks)} tracks")
    return 0
