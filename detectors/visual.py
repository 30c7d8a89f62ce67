"""Visual character detection: does a generated video show a rights holder's character, named or not?

A character is recognised by comparing image embeddings of the video's frames with those of the
reference images its rights holder uploaded. The embedding model is the operator's: an image encoder
exported to ONNX (a CLIP image tower, say), in a directory (``GOVERNANCE_CHARACTER_MODEL_DIR``) holding
``image_encoder.onnx`` and optionally ``preprocess.json``::

    {"size": 224, "mean": [0.4815, 0.4578, 0.4082], "std": [0.2686, 0.2613, 0.2758]}

(CLIP's values are the defaults). Its input is ``N x 3 x size x size`` float32 RGB, scaled to [0, 1] then
normalised with ``mean``/``std``; its output ``N x D``. Frames are resized on their shorter side and
centre-cropped, as CLIP was trained. The similarity threshold depends entirely on the model, so the
service refuses to start with a model and no threshold (``GOVERNANCE_CHARACTER_THRESHOLD``): the
operator measures it on their model with their characters (see ``docs/characters.md``).

Nothing is downloaded; without a model directory the gate screens characters by name only.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from detectors.errors import DetectorError

__all__ = ["CharacterSighting", "OnnxImageEmbedder", "best_matches", "sample_indices"]

MODEL_FILE: Final = "image_encoder.onnx"
PREPROCESS_FILE: Final = "preprocess.json"
CLIP_MEAN: Final = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: Final = (0.26862954, 0.26130258, 0.27577711)
MAX_REFERENCE_PIXELS: Final = 4096 * 4096


class OnnxImageEmbedder:
    """The operator's ONNX image encoder; ``embed`` returns L2-normalised float32 rows. Thread-safe."""

    def __init__(self, model_dir: str | os.PathLike[str], *, providers: Sequence[str] | None = None) -> None:
        from detectors.onnx import choose_providers, load_session

        self.model_dir = Path(model_dir)
        path = self.model_dir / MODEL_FILE
        if not path.is_file():
            raise DetectorError(f"no image encoder in {self.model_dir}: {MODEL_FILE} is missing")
        self.size, self.mean, self.std = self._preprocess()
        self._session = load_session(path, choose_providers(providers))
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or shape[1] not in (3, "3") or len(outputs) < 1:
            raise DetectorError(f"{MODEL_FILE} must take one N x 3 x H x W image batch and return N x D embeddings")
        if all(isinstance(d, int) for d in shape[2:]) and tuple(shape[2:]) != (self.size, self.size):
            raise DetectorError(f"{MODEL_FILE} takes {shape[2]}x{shape[3]} images but {PREPROCESS_FILE} says "
                                f"{self.size}")
        self._input = inputs[0].name
        self._lock = threading.Lock()
        self.name = f"onnx-image:{self.model_dir.name}"
        self.dim = int(self.embed([np.zeros((self.size, self.size, 3), np.uint8)]).shape[1])

    def _preprocess(self) -> tuple[int, np.ndarray, np.ndarray]:
        path = self.model_dir / PREPROCESS_FILE
        conf: dict[str, Any] = {}
        if path.is_file():
            try:
                conf = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise DetectorError(f"cannot read {path}: {e}") from e
            if not isinstance(conf, dict):
                raise DetectorError(f"{path} must hold a JSON object with size, mean and std")
        size = conf.get("size", 224)
        mean, std = conf.get("mean", CLIP_MEAN), conf.get("std", CLIP_STD)
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
            raise DetectorError(f"{PREPROCESS_FILE}: size must be a whole number of pixels from 16 to 1024, "
                                f"got {size!r}")
        for name, v in (("mean", mean), ("std", std)):
            if not (isinstance(v, list | tuple) and len(v) == 3 and all(isinstance(x, int | float) for x in v)):
                raise DetectorError(f"{PREPROCESS_FILE}: {name} must be three numbers (R, G, B), got {v!r}")
        if min(std) <= 0:
            raise DetectorError(f"{PREPROCESS_FILE}: std must be positive, got {std!r}")
        return size, np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def _prepare(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise DetectorError(f"expected an (H, W, 3) uint8 RGB image, got {getattr(rgb, 'shape', type(rgb))}")
        h, w = rgb.shape[:2]
        scale = self.size / min(h, w)
        resized = cv2.resize(rgb, (max(self.size, round(w * scale)), max(self.size, round(h * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        top, left = (resized.shape[0] - self.size) // 2, (resized.shape[1] - self.size) // 2
        crop = resized[top:top + self.size, left:left + self.size].astype(np.float32) / 255.0
        return ((crop - self.mean) / self.std).transpose(2, 0, 1)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(images), D)`` unit-length embeddings of RGB images (any size)."""
        if not images:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        batch = np.stack([self._prepare(im) for im in images]).astype(np.float32)
        with self._lock:
            try:
                out = self._session.run(None, {self._input: batch})[0]
            except Exception as e:  # onnxruntime's own error types
                raise DetectorError(f"the image encoder failed on {len(images)} image(s): {e}") from e
        out = np.asarray(out, np.float32).reshape(len(images), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        if not np.all(np.isfinite(out)) or np.any(norms < 1e-12):
            raise DetectorError("the image encoder returned an empty or non-finite embedding")
        return out / norms


@dataclass(frozen=True)
class CharacterSighting:
    """A character seen in a video: its best cosine similarity and the sampled frames at or over the threshold."""

    character_id: str
    similarity: float
    frames: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"character": self.character_id, "similarity": round(self.similarity, 4), "frames": list(self.frames)}


def sample_indices(frame_count: int, fps: float, per_second: float = 2.0) -> list[int]:
    """The frames a visual check looks at: ``per_second`` a second, the first and the last included."""
    if frame_count < 1:
        return []
    step = max(1, round(fps / per_second))
    return sorted({*range(0, frame_count, step), frame_count - 1})


def best_matches(frame_embeddings: np.ndarray, frame_indices: Sequence[int],
                 references: Sequence[tuple[str, np.ndarray]], threshold: float) -> list[CharacterSighting]:
    """Every character with a reference embedding at cosine ``threshold`` or more from a sampled frame."""
    if not references or len(frame_embeddings) == 0:
        return []
    ids = [cid for cid, _ in references]
    refs = np.stack([e for _, e in references]).astype(np.float32)
    sims = frame_embeddings @ refs.T  # (frames, references); rows are unit length
    out = []
    for cid in dict.fromkeys(ids):
        cols = [i for i, c in enumerate(ids) if c == cid]
        per_frame = sims[:, cols].max(axis=1)
        hits = tuple(int(frame_indices[int(i)]) for i in np.flatnonzero(per_frame >= threshold))
        if hits:
            out.append(CharacterSighting(cid, float(per_frame.max()), hits))
    return sorted(out, key=lambda s: -s.similarity)
