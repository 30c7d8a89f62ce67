"""detectors.visual: the operator's ONNX image encoder is loaded from a directory and checked; frames are
matched against reference embeddings at a threshold; a broken model directory is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.errors import DetectorError
from detectors.visual import OnnxImageEmbedder, best_matches, sample_indices
from generator.backends import get_generator
from generator.base import GenerationSpec
from media.video import load_image


def test_a_picture_and_its_rescaled_copy_match_other_scenes_do_not(layout_encoder: Path, faces_dir: Path) -> None:
    enc = OnnxImageEmbedder(layout_encoder)
    assert enc.dim == 48 and enc.size == 64
    photo = load_image(faces_dir / "obama.jpg")
    scenes = [get_generator("procedural").generate(GenerationSpec(prompt=p, seed=3, duration_s=0.5)).frames[0]
              for p in ("snow in the forest", "a city at night", "a desert at noon")]
    refs = enc.embed([photo])
    frames = enc.embed([photo[::2, ::2].copy(), *scenes])  # the photo at half size, then three scenes
    assert np.allclose(np.linalg.norm(frames, axis=1), 1.0, atol=1e-5)
    sims = frames @ refs[0]
    assert sims[0] > 0.99 and sims[1:].max() < sims[0] - 0.05
    [seen] = best_matches(frames, [0, 5, 6, 7], [("ch_1", refs[0])], threshold=0.99)
    assert seen.character_id == "ch_1" and seen.frames == (0,) and seen.to_dict()["similarity"] > 0.99
    assert best_matches(frames[1:], [5, 6, 7], [("ch_1", refs[0])], threshold=0.99) == []


def test_sampling_covers_the_clip() -> None:
    assert sample_indices(48, 24.0) == [0, 12, 24, 36, 47]
    assert sample_indices(1, 24.0) == [0] and sample_indices(0, 24.0) == []


def test_broken_model_directories_are_named(layout_encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="image_encoder.onnx is missing"):
        OnnxImageEmbedder(tmp_path)
    (tmp_path / "image_encoder.onnx").write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load"):
        OnnxImageEmbedder(tmp_path)
    (tmp_path / "image_encoder.onnx").write_bytes((layout_encoder / "image_encoder.onnx").read_bytes())
    (tmp_path / "preprocess.json").write_text(json.dumps({"size": 64, "std": [0, 1, 1]}))
    with pytest.raises(DetectorError, match="std must be positive"):
        OnnxImageEmbedder(tmp_path)
    (tmp_path / "preprocess.json").write_text(json.dumps({"size": "big"}))
    with pytest.raises(DetectorError, match="size must be a whole number"):
        OnnxImageEmbedder(tmp_path)
    enc = OnnxImageEmbedder(layout_encoder)
    with pytest.raises(DetectorError, match="uint8 RGB"):
        enc.embed([np.zeros((8, 8), np.uint8)])
