"""The diffusers generator on a tiny random-weight Wan pipeline built by the tests (the real architecture,
loaded from a local directory exactly as an operator's model is): sizes and frame counts the model does
not take natively are met exactly, the seed decides the video, and every broken setup is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from generator.backends import get_generator
from generator.base import GenerationSpec, GeneratorError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def gen(tiny_wan: Path):
    return get_generator("diffusers", model_dir=tiny_wan, steps=2)


def test_generates_exactly_the_spec_from_a_local_model(gen) -> None:
    spec = GenerationSpec(prompt="snow over the city at night", seed=7, width=70, height=66, duration_s=1.0, fps=10)
    clip = gen.generate(spec)  # Wan renders 80x80 and 13 frames (4k + 1); cropped and trimmed to the spec
    assert clip.frames.shape == (10, 66, 70, 3) and clip.frames.dtype == np.uint8 and clip.fps == 10
    assert clip.frames.std() > 1  # not a blank frame
    assert gen.info.learned_weights and gen.info.name == "diffusers/WanPipeline"
    assert "tiny-wan" in gen.info.version and "2 steps" in gen.info.description


def test_the_seed_decides_the_video(gen) -> None:
    spec = GenerationSpec(prompt="a walk on the beach", seed=3, width=64, height=64, duration_s=0.5, fps=10)
    first, again = gen.generate(spec), gen.generate(spec)
    other = gen.generate(GenerationSpec(prompt="a walk on the beach", seed=4, width=64, height=64, duration_s=0.5,
                                        fps=10))
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)


def test_broken_setups_are_named(tiny_wan: Path, tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="needs the model's local directory"):
        get_generator("diffusers")
    with pytest.raises(GeneratorError, match="model_index.json is missing"):
        get_generator("diffusers", model_dir=tmp_path)
    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(GeneratorError, match="cannot read"):
        get_generator("diffusers", model_dir=tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"transformer": []}))
    with pytest.raises(GeneratorError, match="_class_name"):
        get_generator("diffusers", model_dir=tmp_path)
    with pytest.raises(GeneratorError, match="steps must be"):
        get_generator("diffusers", model_dir=tiny_wan, steps=0)
    with pytest.raises(GeneratorError, match="dtype must be"):
        get_generator("diffusers", model_dir=tiny_wan, dtype="int8")
    with pytest.raises(GeneratorError, match="bad options"):
        get_generator("diffusers", model_dir=tiny_wan, colour="red")
    # a component's weights gone: named when the model loads, at the first request
    broken = tmp_path / "broken"
    shutil.copytree(tiny_wan, broken)
    for f in (broken / "transformer").glob("*.safetensors"):
        f.unlink()
    g = get_generator("diffusers", model_dir=broken, steps=1)
    with pytest.raises(GeneratorError, match="could not load the diffusers pipeline"):
        g.generate(GenerationSpec(prompt="a city", seed=1, width=64, height=64, duration_s=0.5, fps=8))
