"""Shared fixtures for the detectors tests: one real dlib backend per session, enrolled templates, and
a helper that builds synthetic clips by pasting a reference face onto a moving background."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from detectors.enroll import Template, enroll
from detectors.faces import FaceBackend, default_backend
from media.video import load_image


@pytest.fixture(scope="session")
def backend() -> FaceBackend:
    return default_backend()


@pytest.fixture(scope="session")
def photo(faces_dir: Path) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load_image(faces_dir / name)
        return cache[name].copy()

    return load


@pytest.fixture(scope="session")
def templates(backend: FaceBackend, photo: Callable[[str], np.ndarray]) -> dict[str, Template]:
    """One template per person, as the service would enroll them."""
    sources = {
        "obama": ["obama.jpg", "obama2.jpg"],
        "biden": ["biden2.jpg"],
        "lacamoire": ["alex-lacamoire.png"],
        "miranda": ["lin-manuel-miranda.png"],
    }
    return {who: enroll([photo(n) for n in names], backend) for who, names in sources.items()}


def _background(size: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with a little texture, like a plain generated backdrop."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.default_rng(seed)
    rgb = np.stack([60 + 120 * xx, 90 + 80 * yy, 160 - 60 * xx * yy], axis=-1)
    rgb += rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _paste(frame: np.ndarray, face: np.ndarray, side: int, x: int, y: int) -> None:
    """Resize ``face`` to ``side`` x ``side`` and paste it with its top-left corner at (x, y)."""
    import cv2

    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    frame[y:y + side, x:x + side] = small


def _synthetic_clip(
    faces: dict[str, np.ndarray], frames: int, visible: dict[str, range], *, size: int = 256, side: int = 110
) -> np.ndarray:
    """``frames`` frames of ``size`` px; face ``k`` (a reference crop) is pasted at ``side`` px during
    ``visible[k]``, drifting a pixel every other frame. Faces are laid out left to right."""
    out = np.empty((frames, size, size, 3), np.uint8)
    bg = _background(size)
    for t in range(frames):
        out[t] = bg
        for slot, (key, crop) in enumerate(faces.items()):
            if t in visible[key]:
                x = 8 + slot * (size // max(1, len(faces))) + (t // 2) % 12
                y = (size - side) // 2 + (t // 3) % 8 - 4
                _paste(out[t], crop, side, min(x, size - side), y)
    return out


@pytest.fixture(scope="session")
def make_clip() -> Callable[..., np.ndarray]:
    """The synthetic clip builder (see ``_synthetic_clip``)."""
    return _synthetic_clip


@pytest.fixture(scope="session")
def onnx_models():
    """The tiny torch-built ONNX stand-ins for insightface's models (``onnx_models.py``)."""
    import importlib.util

    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("detectors_onnx_models", Path(__file__).with_name("onnx_models.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def challenge():
    """The challenge-video maker (``challenge_video.py``): head-turn selfie videos made from real photos,
    and the attacks the live check must refuse."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("detectors_challenge_video",
                                                  Path(__file__).with_name("challenge_video.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def blazeface():
    """The BlazeFace detector on the model `make models` fetched (skipped, saying so, where it is missing:
    tests never download)."""
    from detectors.blazeface import BlazeFaceDetector, default_model_path

    if not default_model_path().is_file():
        pytest.skip(f"the BlazeFace model is missing at {default_model_path()}: run `make models`")
    return BlazeFaceDetector()


@pytest.fixture(scope="session")
def scanning_backend(blazeface):
    """dlib's encoder with BlazeFace detecting: what the gate scans video with by default."""
    from detectors.faces import DlibBackend

    return DlibBackend(detector=blazeface)
