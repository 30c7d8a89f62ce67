"""The production face backend: insightface's SCRFD detector and ArcFace recogniser on onnxruntime.

insightface's pretrained weights are licensed for non-commercial research only, so none ship here: an
operator supplies a directory with two ONNX files (``docs/insightface.md``), for example those of the
``buffalo_l`` pack::

    models/insightface/
        det_10g.onnx      SCRFD-10G with 5 keypoints: input 1x3x640x640 (or dynamic), 9 outputs
        w600k_r50.onnx    ArcFace ResNet-50: input Nx3x112x112, output Nx512

Files are recognised by name first (``det_*``/``scrfd*`` and ``w600k*``/``glint*``/``arcface*``/
``*r50*``/``*r100*``), then by their inputs and outputs, so other packs work too. This module is our
own implementation on onnxruntime; the ``insightface`` package is not needed::

    >>> from detectors.insightface import InsightFaceBackend
    >>> InsightFaceBackend("/nonexistent")
    Traceback (most recent call last):
    ...
    detectors.errors.DetectorError: the insightface model directory /nonexistent does not exist; ...

Sessions use ``CUDAExecutionProvider`` when onnxruntime-gpu finds a GPU and fall back to
``CPUExecutionProvider``. Embeddings are L2-normalised, so distances lie in [0, 2]
(``distance = sqrt(2 - 2 * cosine)``); the match threshold must be measured for the model with
``python -m detectors.calibrate --backend insightface --model-dir DIR`` and is read from
``consentgate.json`` in the model directory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from detectors.errors import DetectorError
from detectors.faces import Box, Detection, Face, as_rgb, yaw_from_landmarks
from detectors.onnx import DEFAULT_PROVIDERS, choose_providers, load_session

__all__ = [
    "ARCFACE_TEMPLATE",
    "DEFAULT_PROVIDERS",
    "PROVISIONAL_THRESHOLD",
    "InsightFaceBackend",
    "decode_scrfd",
    "similarity_transform",
]

#: Where ArcFace expects the 5 landmarks (eye, eye, nose tip, mouth corner, mouth corner) in its
#: 112x112 input: the standard alignment template of the insightface recognisers.
ARCFACE_TEMPLATE: Final = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
#: Used only until the operator measures the model's threshold (``consentgate.json``): cosine 0.34,
#: deliberately loose, because for a consent gate a false match (a blocked video) is the safer error.
PROVISIONAL_THRESHOLD: Final = 1.15
CALIBRATION_FILE: Final = "consentgate.json"

_DET_NAMES: Final = ("det_", "scrfd")
_REC_NAMES: Final = ("w600k", "glint", "arcface", "r50", "r100", "r34", "r18", "mbf", "webface")
_STRIDES: Final = (8, 16, 32, 64, 128)
_SCORE: Final = 0.5
_NMS: Final = 0.4
_MIN_DETECTED: Final = 16  # px in the detector's input: SCRFD's smallest reliable face


def _dims(shape: Sequence[Any]) -> list[int | None]:
    return [d if isinstance(d, int) and d > 0 else None for d in shape]


def _is_detector(session: Any) -> bool:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    return len(inputs) == 1 and len(_dims(inputs[0].shape)) == 4 and len(outputs) in (6, 9, 10, 15)


def _is_recognizer(session: Any) -> bool:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        return False
    shape, out = _dims(inputs[0].shape), _dims(outputs[0].shape)
    return (len(shape) == 4 and shape[1] == 3 and shape[2] is not None and shape[2] == shape[3]
            and len(out) == 2 and out[1] is not None and out[1] >= 64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) that maps ``src`` points onto ``dst``
    with least squared error (Umeyama's method, no reflection)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var = float((s ** 2).sum()) / len(src)
    if var <= 1e-12:
        raise DetectorError("landmarks are degenerate (all in one place)")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum()) / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(0.0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0.0, boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]))
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]))
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return keep


def decode_scrfd(outputs: Sequence[np.ndarray], input_hw: tuple[int, int], *, score_threshold: float = _SCORE,
                 nms_threshold: float = _NMS) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Decode raw SCRFD outputs for one ``input_hw`` image into ``(boxes (n, 4) x1 y1 x2 y2, scores (n,),
    keypoints (n, 5, 2) or None)`` in input pixels, after score threshold and NMS.

    The outputs are, per stride (8, 16, 32[, 64, 128]), scores ``(rows, 1)``, box distances ``(rows, 4)``
    and optionally keypoint offsets ``(rows, 10)``, each with or without a leading batch axis of 1,
    in any order; ``rows = (H // stride) * (W // stride) * anchors``, anchors at each location's
    top-left corner ``(x * stride, y * stride)``, distances and offsets in units of the stride."""
    h, w = input_hw
    groups: dict[int, list[np.ndarray]] = {1: [], 4: [], 10: []}
    for out in outputs:
        a = np.asarray(out, np.float32)
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 2 or a.shape[1] not in groups:
            raise DetectorError(f"unexpected SCRFD output of shape {np.shape(out)}")
        groups[a.shape[1]].append(a)
    n = len(groups[1])
    if n not in (3, 5) or len(groups[4]) != n or len(groups[10]) not in (0, n):
        raise DetectorError(f"SCRFD outputs do not form {n} strides: "
                            f"{[(k, len(v)) for k, v in groups.items()]} outputs by width")
    strides = _STRIDES[:n]
    for k in groups:
        groups[k].sort(key=len, reverse=True)  # more rows = finer stride
    cells0 = (h // strides[0]) * (w // strides[0])
    anchors = len(groups[1][0]) // max(1, cells0)
    if anchors < 1:
        raise DetectorError(f"SCRFD stride-8 output has {len(groups[1][0])} rows for a {w}x{h} input")
    boxes_all, scores_all, kps_all = [], [], []
    for level, stride in enumerate(strides):
        gh, gw = h // stride, w // stride
        rows = gh * gw * anchors
        scores = groups[1][level]
        if len(scores) != rows or len(groups[4][level]) != rows:
            raise DetectorError(f"SCRFD stride-{stride} outputs have {len(scores)} rows, expected {rows} "
                                f"for a {w}x{h} input")
        keep = np.flatnonzero(scores[:, 0] >= score_threshold)
        if keep.size == 0:
            continue
        ys, xs = np.divmod(keep // anchors, gw)
        centers = np.stack([xs, ys], axis=1).astype(np.float32) * stride
        dist = groups[4][level][keep] * stride
        boxes_all.append(np.concatenate([centers - dist[:, :2], centers + dist[:, 2:]], axis=1))
        scores_all.append(scores[keep, 0])
        if groups[10]:
            offsets = groups[10][level][keep].reshape(-1, 5, 2) * stride
            kps_all.append(centers[:, None, :] + offsets)
    if not boxes_all:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), (np.zeros((0, 5, 2), np.float32)
                                                                      if groups[10] else None)
    boxes, scores = np.concatenate(boxes_all), np.concatenate(scores_all)
    keep_idx = _nms(boxes, scores, nms_threshold)
    kps = np.concatenate(kps_all)[keep_idx] if kps_all else None
    return boxes[keep_idx], scores[keep_idx], kps


@dataclass(frozen=True)
class _Files:
    detector: Path
    recognizer: Path


class InsightFaceBackend:
    """SCRFD detection + 5-point alignment + ArcFace embedding (L2-normalised) on onnxruntime.

    ``model_dir`` must hold one SCRFD detector with keypoints and one ArcFace recogniser (ONNX).
    ``providers`` defaults to CUDA then CPU, filtered to what this onnxruntime build offers.
    ``det_size`` is the detector input used when the model's input size is dynamic.
    """

    normalized = True  # embeddings are unit vectors; track means are re-normalised

    def __init__(self, model_dir: str | os.PathLike[str], *, providers: Sequence[str] | None = None,
                 det_size: tuple[int, int] = (640, 640), score_threshold: float = _SCORE) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise DetectorError(f"the insightface model directory {self.model_dir} does not exist; see "
                                "docs/insightface.md for the files an operator must supply")
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:  # pragma: no cover - a declared dependency of this backend
            raise DetectorError("the insightface backend needs onnxruntime (or onnxruntime-gpu)") from e
        self.providers = choose_providers(providers)
        self.score_threshold = float(score_threshold)
        files, self._det, self._rec = self._find(self.model_dir)
        self.files = files
        det_in = self._det.get_inputs()[0]
        dims = _dims(det_in.shape)
        self._det_name = det_in.name
        self.det_size = (dims[2], dims[3]) if dims[2] and dims[3] else (int(det_size[1]), int(det_size[0]))
        self._det_outputs = [o.name for o in self._det.get_outputs()]
        if len(self._det_outputs) in (6, 10):
            raise DetectorError(f"{files.detector.name} predicts no keypoints; ArcFace alignment needs a SCRFD "
                                "model with 5 keypoints (9 or 15 outputs, e.g. det_10g.onnx or scrfd_*_kps)")
        rec_in, rec_out = self._rec.get_inputs()[0], self._rec.get_outputs()[0]
        self._rec_name = rec_in.name
        self._rec_out = rec_out.name
        self.rec_size = int(_dims(rec_in.shape)[2] or 112)
        self._rec_batch = _dims(rec_in.shape)[0]  # None: any batch size
        self.dim = int(_dims(rec_out.shape)[1] or 512)
        self.name = f"insightface-{files.recognizer.stem}"
        self.match_threshold = self._threshold()

    def __repr__(self) -> str:
        return (f"InsightFaceBackend(detector={self.files.detector.name!r}, recognizer={self.files.recognizer.name!r}, "
                f"providers={self.active_providers})")

    @property
    def active_providers(self) -> list[str]:
        """The providers the sessions actually run on (after onnxruntime's own fallback)."""
        return list(self._det.get_providers())

    def _find(self, root: Path) -> tuple[_Files, Any, Any]:
        onnx_files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
        if not onnx_files:
            raise DetectorError(f"no .onnx files in {root}; supply a SCRFD detector (e.g. det_10g.onnx) and an "
                                "ArcFace recogniser (e.g. w600k_r50.onnx), see docs/insightface.md")

        def by_name(words: Sequence[str]) -> list[Path]:
            return [p for p in onnx_files if any(p.name.lower().startswith(w) or w in p.stem.lower() for w in words)]

        det = rec = None
        det_path = rec_path = None
        tried: dict[Path, Any] = {}
        for path in by_name(_DET_NAMES) + onnx_files:
            if path in tried:
                continue
            tried[path] = s = load_session(path, self.providers)
            if det is None and _is_detector(s):
                det, det_path = s, path
            elif rec is None and _is_recognizer(s):
                rec, rec_path = s, path
            if det is not None and rec is not None:
                break
        if rec is None:
            for path in by_name(_REC_NAMES):
                if path not in tried:
                    s = load_session(path, self.providers)
                    if _is_recognizer(s):
                        rec, rec_path = s, path
                        break
        missing = [what for what, got in (("a SCRFD detector (1x3xHxW input, 9 or 15 outputs)", det),
                                          ("an ArcFace recogniser (Nx3x112x112 input, one Nx512 output)", rec))
                   if got is None]
        if missing or det_path is None or rec_path is None:
            raise DetectorError(f"{root} lacks {' and '.join(missing)}; found {[p.name for p in onnx_files]}")
        return _Files(det_path, rec_path), det, rec

    def _threshold(self) -> float:
        path = self.model_dir / CALIBRATION_FILE
        if not path.is_file():
            return PROVISIONAL_THRESHOLD
        try:
            data = json.loads(path.read_text())
            value = float(data[self.name]["match_threshold"] if self.name in data else data["match_threshold"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DetectorError(f"{path} is not a calibration file ({{\"match_threshold\": 1.0}}): {e}") from e
        if not 0.0 < value < 2.0:
            raise DetectorError(f"{path}: match_threshold must be in (0, 2) for unit embeddings, got {value}")
        return value

    # -- detection -----------------------------------------------------------------------------------------
    def _letterbox(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        import cv2

        ih, iw = self.det_size
        h, w = img.shape[:2]
        scale = min(iw / w, ih / h)
        nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
        canvas = np.zeros((ih, iw, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(blob), scale

    def smallest_face(self, height: int, width: int, *, min_face_px: int = 40, max_pixels: int | None = None) -> int:
        scale = min(self.det_size[1] / width, self.det_size[0] / height)
        return max(1, math.ceil(_MIN_DETECTED / scale))

    def detect(self, rgb: np.ndarray, *, min_face_px: int = 40, max_pixels: int | None = None) -> list[Detection]:
        img = as_rgb(rgb)
        h, w = img.shape[:2]
        blob, scale = self._letterbox(img)
        try:
            outs = self._det.run(self._det_outputs, {self._det_name: blob})
        except Exception as e:
            raise DetectorError(f"the SCRFD detector failed on a {w}x{h} image: {e}") from e
        boxes, scores, kps = decode_scrfd(outs, self.det_size, score_threshold=self.score_threshold)
        found = []
        for i in range(len(boxes)):
            x1, y1, x2, y2 = (boxes[i] / scale).tolist()
            box = Box(top=math.floor(y1), right=math.ceil(x2), bottom=math.ceil(y2), left=math.floor(x1)).clipped(w, h)
            if box is None:
                continue
            pts = None if kps is None else kps[i] / scale
            found.append(Detection(box=box, score=float(scores[i]), landmarks=pts,
                                   pose=None if pts is None else yaw_from_landmarks(pts)))
        found.sort(key=lambda d: d.box.area, reverse=True)
        return found

    # -- embedding -----------------------------------------------------------------------------------------
    def align(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The face warped so its 5 landmarks sit on :data:`ARCFACE_TEMPLATE` (``rec_size`` square)."""
        import cv2

        size = self.rec_size
        m = similarity_transform(np.asarray(landmarks, np.float64)[:5], ARCFACE_TEMPLATE * (size / 112.0))
        return np.asarray(cv2.warpAffine(as_rgb(rgb), m, (size, size), borderValue=(0, 0, 0)))

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        img = as_rgb(rgb)
        if not detections:
            return np.zeros((0, self.dim), np.float32)
        crops = []
        for d in detections:
            if d.landmarks is None or len(d.landmarks) < 5:
                raise DetectorError("ArcFace needs the 5 SCRFD landmarks of each face to align it")
            crops.append(self.align(img, d.landmarks))
        blob = ((np.stack(crops).astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        batches = [blob] if self._rec_batch is None else [blob[i:i + 1] for i in range(len(blob))]
        try:
            out = np.concatenate([np.asarray(self._rec.run([self._rec_out], {self._rec_name: b})[0])
                                  for b in map(np.ascontiguousarray, batches)])
        except Exception as e:
            raise DetectorError(f"the ArcFace recogniser failed on {len(crops)} face(s): {e}") from e
        out = out.reshape(len(crops), -1).astype(np.float32)
        if out.shape[1] != self.dim or not np.all(np.isfinite(out)):
            raise DetectorError(f"the recogniser returned {out.shape} values, "
                                f"expected finite ({len(crops)}, {self.dim})")
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def faces(self, rgb: np.ndarray, *, upsample: int = 0) -> list[Face]:
        """Every face, largest first (``upsample`` is accepted for the protocol; SCRFD's input size is fixed)."""
        if not 0 <= upsample <= 3:
            raise DetectorError(f"upsample must be between 0 and 3, got {upsample}")
        dets = self.detect(rgb)
        emb = self.embed(rgb, dets)
        return [Face.of(d, e) for d, e in zip(dets, emb, strict=True)]
