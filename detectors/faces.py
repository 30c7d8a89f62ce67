"""Face detection and embeddings behind one small interface.

A :class:`FaceBackend` turns an RGB image into :class:`Face` values (a box, landmarks, a rough head
pose and an L2-comparable embedding). Backends that can detect without embedding also implement
:class:`TrackingBackend` (``detect`` + ``embed``), which lets the video scanner embed a face a few
times per track instead of on every sampled frame.

The embedded default is :class:`DlibBackend`: dlib's HOG detector, its 5-point landmark model and its
ResNet face encoder (128-d), using the model files shipped by the ``face-recognition-models`` wheel.
The production backend is :class:`detectors.insightface.InsightFaceBackend` (SCRFD + ArcFace on
onnxruntime, model files supplied by the operator); :func:`detectors.backends.backend_from_settings` picks one by name::

    >>> from media.video import load_image
    >>> from detectors.faces import default_backend, crop_face
    >>> rgb = load_image("../shared/testdata/faces/obama.jpg")
    >>> [face] = default_backend().faces(rgb)
    >>> face.embedding.shape, face.box.width > 200, abs(face.pose) < 0.2
    ((128,), True, True)
    >>> crop = crop_face(rgb, face.box)
    >>> crop.shape[0] == crop.shape[1] == 2 * max(face.box.width, face.box.height)
    True

Two embeddings of the same person are close in euclidean distance; see ``docs/face-matching.md`` for
the calibrated threshold (``detectors.scan.MATCH_THRESHOLD``).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import numpy as np

from detectors.errors import DetectorError

__all__ = [
    "Box",
    "Detection",
    "DlibBackend",
    "Face",
    "FaceBackend",
    "FaceDetector",
    "TrackingBackend",
    "as_rgb",
    "crop_face",
    "default_backend",
    "once",
    "yaw_from_landmarks",
]

_SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
_ENCODER_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
_CNN_WINDOW: Final = 56  # dlib's mmod CNN detector finds faces down to about this size, unscaled (measured)
#: The budget of :meth:`DlibBackend.detect_thorough`: ~0.5 s a call on one core of the reference machine.
THOROUGH_PIXELS: Final = 100_000
#: What :meth:`DlibBackend.embed` can encode of a face: the mean of both orientations, or one of them.
VIEWS: Final = ("both", "plain", "mirror")
_CHIP: Final = 150  # the encoder's aligned input, as dlib's own compute_face_descriptor(img, shape) crops it
_CHIP_PADDING: Final = 0.25
_CNN_MODEL = "mmod_human_face_detector.dat"
_HOG_WINDOW: Final = 80  # dlib's frontal HOG detector finds faces down to about this size, unscaled


@dataclass(frozen=True)
class Box:
    """A face rectangle in pixel coordinates; ``right`` and ``bottom`` are exclusive."""

    top: int
    right: int
    bottom: int
    left: int

    def __post_init__(self) -> None:
        for name in ("top", "right", "bottom", "left"):
            if not isinstance(getattr(self, name), int | np.integer):
                raise DetectorError(f"Box.{name} must be an int, got {getattr(self, name)!r}")
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.right < self.left or self.bottom < self.top:
            raise DetectorError(f"Box sides are inverted: {self}")

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def size(self) -> int:
        """The shorter side: what "face size in pixels" means throughout this package."""
        return min(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        """``(x, y)`` of the box's centre."""
        return (self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0.0 when they do not overlap)."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / float(self.area + other.area - inter)

    def clipped(self, width: int, height: int) -> Box | None:
        """This box cut to a ``width`` x ``height`` image; ``None`` when nothing of it is inside."""
        box = Box(top=max(0, min(self.top, height)), right=max(0, min(self.right, width)),
                  bottom=max(0, min(self.bottom, height)), left=max(0, min(self.left, width)))
        return box if box.width > 0 and box.height > 0 else None


def _landmarks(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    pts = np.array(value, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 3 or not np.all(np.isfinite(pts)):
        raise DetectorError(f"landmarks must be a finite (k >= 3, 2) array, got shape {pts.shape}")
    pts.setflags(write=False)
    return pts


def _angle(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float | np.floating | np.integer) or not math.isfinite(float(value)) \
            or abs(float(value)) > 180.0:
        raise DetectorError(f"{name} must be a finite angle in degrees, got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class Detection:
    """A face found but not yet embedded: its box, the detector's score, landmarks (``(k, 2)`` float32
    ``(x, y)`` points in image coordinates, or ``None``), a rough yaw (``pose``, see
    :func:`yaw_from_landmarks`) and, when the detector estimates them, the head's ``yaw`` and ``pitch``
    in degrees (signed as :mod:`detectors.headpose` signs them: yaw > 0 turned to the person's left,
    pitch > 0 chin up; see :func:`detectors.blazeface.pose_from_keypoints`)."""

    box: Box
    score: float = 1.0
    landmarks: np.ndarray | None = None
    pose: float | None = None
    yaw: float | None = None
    pitch: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "landmarks", _landmarks(self.landmarks))
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "yaw", _angle(self.yaw, "yaw"))
        object.__setattr__(self, "pitch", _angle(self.pitch, "pitch"))


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face: where it is and its embedding (float32, shape ``(dim,)``, read-only); when the
    backend knows them, its landmarks, detector score, rough yaw (``pose``) and head angles in degrees
    (``yaw``, ``pitch``, as :class:`Detection` has them)."""

    box: Box
    embedding: np.ndarray
    landmarks: np.ndarray | None = None
    pose: float | None = None
    score: float = 1.0
    yaw: float | None = None
    pitch: float | None = None

    def __post_init__(self) -> None:
        emb = np.array(self.embedding, dtype=np.float32)  # a private copy
        if emb.ndim != 1 or emb.size == 0 or not np.all(np.isfinite(emb)):
            raise DetectorError(f"a face embedding must be a finite 1-D vector, got shape {emb.shape}")
        emb.setflags(write=False)
        object.__setattr__(self, "embedding", emb)
        object.__setattr__(self, "landmarks", _landmarks(self.landmarks))
        object.__setattr__(self, "yaw", _angle(self.yaw, "yaw"))
        object.__setattr__(self, "pitch", _angle(self.pitch, "pitch"))

    @classmethod
    def of(cls, detection: Detection, embedding: np.ndarray) -> Face:
        return cls(detection.box, embedding, detection.landmarks, detection.pose, detection.score, detection.yaw,
                   detection.pitch)


@runtime_checkable
class FaceBackend(Protocol):
    """Finds faces in an RGB image and embeds them; embeddings of one backend are comparable by L2."""

    name: str
    dim: int

    def faces(self, rgb: np.ndarray, *, upsample: int = 0) -> list[Face]:
        """Every face in ``rgb`` ((H, W, 3) uint8), largest first. ``upsample`` doubles the image that
        many times before detection, to find smaller faces (slower)."""
        ...


@runtime_checkable
class TrackingBackend(FaceBackend, Protocol):
    """A backend that detects and embeds separately, so a scanner can embed a tracked face rarely."""

    def detect(self, rgb: np.ndarray, *, min_face_px: int = 40, max_pixels: int | None = None) -> list[Detection]:
        """Every face in ``rgb`` of at least about ``min_face_px`` (shorter side), largest first. The
        backend may work on a resized copy of at most ``max_pixels`` pixels, which can raise the
        smallest size it finds; see :meth:`smallest_face`."""
        ...

    def smallest_face(self, height: int, width: int, *, min_face_px: int = 40, max_pixels: int | None = None) -> int:
        """The smallest face (px) :meth:`detect` is expected to find in an image of that size."""
        ...

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """``(len(detections), dim)`` float32 embeddings of ``detections`` found in ``rgb``."""
        ...

    # Optional, used by the scanner when present (see DlibBackend): ``detect_thorough(rgb, *, min_face_px)``,
    # a slower detector for faces ``detect`` misses (turned heads), run on a thorough scan's keyframes; and,
    # with a true ``mirror`` attribute, ``embed(rgb, detections, *, views)`` encoding single chip views.


@runtime_checkable
class FaceDetector(Protocol):
    """A detector alone (no embeddings) that :class:`DlibBackend` can use in place of dlib's HOG for
    :meth:`TrackingBackend.detect`: :class:`detectors.blazeface.BlazeFaceDetector`, which also finds
    heads turned to profile."""

    name: str

    def detect(self, rgb: np.ndarray, *, min_face_px: int = 40, max_pixels: int | None = None) -> list[Detection]:
        ...

    def smallest_face(self, height: int, width: int, *, min_face_px: int = 40, max_pixels: int | None = None) -> int:
        ...


def yaw_from_landmarks(points: np.ndarray) -> float:
    """A rough, signed head yaw from 5 landmarks in the ArcFace order (eye, eye, nose, mouth, mouth):
    the nose's sideways offset from the eyes' midpoint, in units of the distance between the eyes.
    About 0 for a frontal face and +-0.3 or more for a head turned by ~30 degrees."""
    pts = np.asarray(points, dtype=np.float64)
    a, b, nose = pts[0], pts[1], pts[2]
    axis = b - a
    span = float(axis @ axis)
    if span <= 1e-9:
        return 0.0
    return float((nose - (a + b) / 2.0) @ axis / span)


def as_rgb(image: Any) -> np.ndarray:
    """``image`` as a C-contiguous (H, W, 3) uint8 array; gray and RGBA are converted."""
    if not isinstance(image, np.ndarray):
        raise DetectorError(f"expected an RGB image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise DetectorError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise DetectorError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def default_models_dir() -> Path:
    """Where the ``face-recognition-models`` wheel keeps its dlib model files.

    Found without importing that package (its ``__init__`` needs ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("the face-recognition-models package is not installed; it ships the dlib models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def detection_scale(height: int, width: int, *, native_px: int, min_face_px: int, max_pixels: int | None) -> float:
    """How much to resize an image so a detector that finds faces of ``native_px`` finds ones of
    ``min_face_px``, without the resized image exceeding ``max_pixels`` pixels."""
    if min_face_px < 1:
        raise DetectorError(f"min_face_px must be >= 1, got {min_face_px}")
    scale = native_px / float(min_face_px)
    if max_pixels is not None:
        if max_pixels < 1:
            raise DetectorError(f"max_pixels must be >= 1, got {max_pixels}")
        scale = min(scale, math.sqrt(max_pixels / float(height * width)))
    return scale


def _unscaled(rect: Any, scale: float, width: int, height: int) -> Box | None:
    """A dlib rectangle found in a copy resized by ``scale``, in the original image's pixels."""
    box = Box(top=math.floor(rect.top() / scale), right=math.ceil((rect.right() + 1) / scale),
              bottom=math.ceil((rect.bottom() + 1) / scale), left=math.floor(rect.left() / scale))
    return box.clipped(width, height)


@dataclass
class _DlibModels:
    detector: Any
    shape_predictor: Any
    encoder: Any


class DlibBackend:
    """dlib HOG detector + 5-point landmarks + ResNet encoder (128-d), thread-safe.

    With ``mirror`` (the default) a face's embedding is the mean of the descriptors of its aligned chip
    and of the chip's mirror image. The mean is nearly pose-symmetric: a head turned 30-45 degrees
    comes 0.05-0.10 closer to the same person's frontal photo (Barack Obama in three-quarter profile in
    the Hamilton clip: 0.60-0.65 -> 0.51-0.55), while other people stay as far (docs/face-matching.md).
    It costs a second encoder pass per face; the video scanner avoids that by alternating single views
    between the looks at one track (``embed(..., views=...)``).

    ``detector`` replaces HOG in :meth:`detect` (what the video scanner calls), e.g. BlazeFace
    (:class:`detectors.blazeface.BlazeFaceDetector`), which finds heads turned to profile; the 5-point
    landmarks that align the encoder's chip are then placed by dlib's shape predictor inside the box it
    found (measured better for turned heads than aligning on BlazeFace's own keypoints:
    docs/face-matching.md). :meth:`faces` (photos, enrollment) always uses HOG. Embeddings are the same
    either way, so :attr:`name` does not change; :attr:`detector_name` says which detector runs.

    Models load on first use. dlib objects are not thread-safe (and hold the GIL), so calls are
    serialised by a lock; run one backend per worker process to use several cores.
    """

    name = "dlib-resnet-v1"
    dim = 128

    def __init__(self, models_dir: str | Path | None = None, *, mirror: bool = True,
                 detector: FaceDetector | None = None) -> None:
        self._models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        self.mirror = mirror
        self.detector = detector
        missing = [f for f in (_SHAPE_MODEL, _ENCODER_MODEL) if not (self._models_dir / f).is_file()]
        if missing:
            raise DetectorError(f"dlib model files missing from {self._models_dir}: {', '.join(missing)}")
        self._lock = threading.Lock()
        self._models: _DlibModels | None = None
        self._cnn: Any = None  # the mmod detector of detect_thorough, loaded on its first call

    def __repr__(self) -> str:
        return (f"DlibBackend(models_dir={str(self._models_dir)!r}, mirror={self.mirror}, "
                f"detector={self.detector_name!r})")

    @property
    def detector_name(self) -> str:
        """What :meth:`detect` runs: ``"dlib-hog"`` or the replacement detector's name."""
        return self.detector.name if self.detector is not None else "dlib-hog"

    def _load(self) -> _DlibModels:
        if self._models is None:
            try:
                import dlib
            except ImportError as e:
                raise DetectorError("dlib is not installed (pip install dlib-bin)") from e
            try:
                self._models = _DlibModels(
                    detector=dlib.get_frontal_face_detector(),
                    shape_predictor=dlib.shape_predictor(str(self._models_dir / _SHAPE_MODEL)),
                    encoder=dlib.face_recognition_model_v1(str(self._models_dir / _ENCODER_MODEL)),
                )
            except RuntimeError as e:
                raise DetectorError(f"could not load the dlib models from {self._models_dir}: {e}") from e
        return self._models

    # -- detection ----------------------------------------------------------------------------------------
    def _rects(self, models: _DlibModels, img: np.ndarray, upsample: int, scale: float) -> list[Box]:
        import cv2

        height, width = img.shape[:2]
        small = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)  # HOG on gray: ~25 % faster, finds the same faces
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        boxes = [_unscaled(r, scale, width, height) for r in models.detector(small, upsample)]
        return [b for b in boxes if b is not None]

    def _shape(self, models: _DlibModels, img: np.ndarray, box: Box) -> Any:
        import dlib

        return models.shape_predictor(img, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))

    @staticmethod
    def _detection(box: Box, shape: Any) -> Detection:
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float32)
        # dlib's 5 points: two corners of one eye, two of the other, the base of the nose.
        eyes_nose = np.stack([pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]])
        return Detection(box=box, landmarks=pts, pose=yaw_from_landmarks(eyes_nose))

    def _detect_locked(self, img: np.ndarray, upsample: int, scale: float) -> tuple[list[Detection], list[Any]]:
        models = self._load()
        height, width = img.shape[:2]
        try:
            boxes = self._rects(models, img, upsample, scale)
            shapes = [self._shape(models, img, b) for b in boxes]
        except RuntimeError as e:
            raise DetectorError(f"dlib failed on a {width}x{height} image: {e}") from e
        dets = [self._detection(b, s) for b, s in zip(boxes, shapes, strict=True)]
        order = sorted(range(len(dets)), key=lambda i: dets[i].box.area, reverse=True)
        return [dets[i] for i in order], [shapes[i] for i in order]

    def smallest_face(self, height: int, width: int, *, min_face_px: int = 40, max_pixels: int | None = None) -> int:
        if self.detector is not None:
            return self.detector.smallest_face(height, width, min_face_px=min_face_px, max_pixels=max_pixels)
        scale = detection_scale(height, width, native_px=_HOG_WINDOW, min_face_px=min_face_px, max_pixels=max_pixels)
        return math.ceil(_HOG_WINDOW / scale)

    def detect(self, rgb: np.ndarray, *, min_face_px: int = 40, max_pixels: int | None = None) -> list[Detection]:
        if self.detector is not None:
            return self.detector.detect(rgb, min_face_px=min_face_px, max_pixels=max_pixels)
        img = as_rgb(rgb)
        h, w = img.shape[:2]
        scale = detection_scale(h, w, native_px=_HOG_WINDOW, min_face_px=min_face_px, max_pixels=max_pixels)
        with self._lock:
            return self._detect_locked(img, 0, scale)[0]

    def detect_thorough(self, rgb: np.ndarray, *, min_face_px: int = 80,
                        max_pixels: int | None = THOROUGH_PIXELS) -> list[Detection]:
        """Faces the HOG detector of :meth:`detect` does not see: heads turned to three-quarter or
        profile view, found by dlib's mmod CNN detector (``mmod_human_face_detector.dat``, shipped with
        the other model files). It costs ~20x a :meth:`detect` call, so the scanner runs it on keyframes
        only (``detectors.scan``); it looks at a copy resized so faces of ``min_face_px`` become its
        ~56 px window, within ``max_pixels``. Frontal faces are found too; largest first."""
        import cv2
        import dlib

        img = as_rgb(rgb)
        height, width = img.shape[:2]
        scale = detection_scale(height, width, native_px=_CNN_WINDOW, min_face_px=min_face_px, max_pixels=max_pixels)
        small = img
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        with self._lock:
            models = self._load()
            if self._cnn is None:
                path = self._models_dir / _CNN_MODEL
                if not path.is_file():
                    raise DetectorError(f"dlib model file missing from {self._models_dir}: {_CNN_MODEL}")
                try:
                    self._cnn = dlib.cnn_face_detection_model_v1(str(path))
                except RuntimeError as e:
                    raise DetectorError(f"could not load {path}: {e}") from e
            try:
                found = self._cnn(small, 0)
                dets = []
                for d in found:
                    clipped = _unscaled(d.rect, scale, width, height)
                    if clipped is not None:
                        det = self._detection(clipped, self._shape(models, img, clipped))
                        dets.append(Detection(det.box, float(d.confidence), det.landmarks, det.pose))
            except RuntimeError as e:
                raise DetectorError(f"dlib's CNN detector failed on a {width}x{height} image: {e}") from e
        return sorted(dets, key=lambda d: d.box.area, reverse=True)

    def _descriptors(self, models: _DlibModels, img: np.ndarray, shapes: Sequence[Any],
                     views: Sequence[str] | None = None) -> np.ndarray:
        """ResNet descriptors of the aligned 150 px chips, one per shape, of the given ``views`` (default:
        ``"both"`` with ``mirror``, else ``"plain"``)."""
        import dlib

        views = list(views) if views is not None else ["both" if self.mirror else "plain"] * len(shapes)
        if len(views) != len(shapes) or not set(views) <= set(VIEWS):
            raise DetectorError(f"views must be one of {', '.join(VIEWS)} per face, got {views!r}")
        batch = dlib.full_object_detections()
        for s in shapes:
            batch.append(s)
        try:
            chips = list(dlib.get_face_chips(img, batch, size=_CHIP, padding=_CHIP_PADDING))
            inputs: list[np.ndarray] = []
            parts: list[list[int]] = []  # parts[i]: the input rows averaged into face i
            for chip, view in zip(chips, views, strict=True):
                rows = []
                if view != "mirror":
                    rows.append(len(inputs))
                    inputs.append(chip)
                if view != "plain":
                    rows.append(len(inputs))
                    inputs.append(np.ascontiguousarray(chip[:, ::-1]))
                parts.append(rows)
            out = np.asarray([np.asarray(d, np.float32) for d in models.encoder.compute_face_descriptor(inputs)],
                             np.float32).reshape(-1, self.dim)
        except RuntimeError as e:
            raise DetectorError(f"dlib failed to embed {len(shapes)} face(s): {e}") from e
        return np.stack([out[rows].mean(axis=0) for rows in parts]).astype(np.float32)

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection], *,
              views: Sequence[str] | None = None) -> np.ndarray:
        """Embeddings of ``detections``. ``views`` (one per detection) picks what is encoded: ``"both"``
        (the mean of the chip's and its mirror's descriptors: the default with ``mirror``), ``"plain"``
        or ``"mirror"`` (one encoder pass each). The scanner alternates single views between the looks
        at one track, so the track's mean is mirror-averaged at one pass per look."""
        img = as_rgb(rgb)
        if not detections:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            models = self._load()
            try:
                shapes = [self._shape(models, img, d.box) for d in detections]
            except RuntimeError as e:
                raise DetectorError(f"dlib failed to find landmarks for {len(detections)} face(s): {e}") from e
            return self._descriptors(models, img, shapes, views)

    def faces(self, rgb: np.ndarray, *, upsample: int = 0) -> list[Face]:
        img = as_rgb(rgb)
        if not 0 <= upsample <= 3:
            raise DetectorError(f"upsample must be between 0 and 3, got {upsample}")
        with self._lock:
            dets, shapes = self._detect_locked(img, upsample, 1.0)
            if not dets:
                return []
            descriptors = self._descriptors(self._load(), img, shapes)
        return [Face.of(d, e) for d, e in zip(dets, descriptors, strict=True)]


def crop_face(rgb: np.ndarray, box: Box, margin: float = 0.5) -> np.ndarray:
    """A square crop centred on ``box``, its side ``(1 + 2 * margin)`` times the face's longer side.

    Where the square reaches past the image, the image's edge pixels are repeated, so the face is
    always in the centre of the crop (a tight headshot is padded, never cut off-centre). Returns a copy.
    """
    import cv2

    img = as_rgb(rgb)
    if margin < 0:
        raise DetectorError(f"margin must be >= 0, got {margin}")
    height, width = img.shape[:2]
    if box.clipped(width, height) is None:
        raise DetectorError(f"{box} lies outside the {width}x{height} image")
    side = max(1, round(max(box.width, box.height) * (1.0 + 2.0 * margin)))
    cx, cy = box.center
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    right, bottom = left + side, top + side
    pad_t, pad_l = max(0, -top), max(0, -left)
    pad_b, pad_r = max(0, bottom - height), max(0, right - width)
    inner = img[max(0, top):min(height, bottom), max(0, left):min(width, right)]
    if pad_t or pad_l or pad_b or pad_r:
        return np.ascontiguousarray(cv2.copyMakeBorder(inner, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE))
    return inner.copy()


_T = TypeVar("_T")


def once(factory: Callable[[], _T]) -> Callable[[], _T]:
    """``factory`` made into a process-wide value: called on the first call only (one thread at a time), and
    every call returns that one result."""
    lock = threading.Lock()
    made: list[_T] = []

    @functools.wraps(factory)
    def get() -> _T:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    return get


@once
def default_backend() -> FaceBackend:
    """The process-wide :class:`DlibBackend` (created on first call; models load on first use)."""
    return DlibBackend()
