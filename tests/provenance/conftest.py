"""Fixtures for the provenance tests: one development CA and one small generated clip per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media.video import Clip, write_video
from provenance.keys import SignerMaterial, ensure_dev_ca


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> SignerMaterial:
    """A development CA created once for the session (root, intermediate, leaf)."""
    return ensure_dev_ca(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def clip_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 128x128, 24 fps H.264 MP4 of noise (read-only: copy before changing)."""
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(48, 128, 128, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("clips") / "raw.mp4"
    write_video(path, Clip(frames=frames, fps=24.0), preset="ultrafast")
    return path
