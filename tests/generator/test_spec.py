"""GenerationSpec validation and the backend registry (generator.base)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from generator.backends import get_generator
from generator.base import GenerationSpec, GeneratorError, GeneratorInfo, VideoGenerator
from generator.procedural import ProceduralGenerator

FACE = np.zeros((64, 64, 3), np.uint8)

REJECTED = {
    "empty prompt": dict(prompt=""),
    "blank prompt": dict(prompt=" \n\t "),
    "prompt too long": dict(prompt="a" * 2001),
    "prompt not a string": dict(prompt=b"sunset"),
    "prompt with NUL": dict(prompt="sun\x00set"),
    "negative seed": dict(seed=-1),
    "seed too large": dict(seed=2**63),
    "float seed": dict(seed=1.5),
    "bool seed": dict(seed=True),
    "odd width": dict(width=255),
    "odd height": dict(height=101),
    "width too small": dict(width=62),
    "height too large": dict(height=1026),
    "float width": dict(width=256.0),
    "duration too short": dict(duration_s=0.4),
    "duration too long": dict(duration_s=20.5),
    "duration nan": dict(duration_s=math.nan),
    "duration string": dict(duration_s="4"),
    "fps zero": dict(fps=0),
    "fps too high": dict(fps=61),
    "fps infinite": dict(fps=math.inf),
    "faces a bare array": dict(faces=FACE),
    "face grayscale": dict(faces=(np.zeros((64, 64), np.uint8),)),
    "face float": dict(faces=(np.zeros((64, 64, 3), np.float32),)),
    "face rgba": dict(faces=(np.zeros((64, 64, 4), np.uint8),)),
    "face too small": dict(faces=(np.zeros((8, 8, 3), np.uint8),)),
    "face not an array": dict(faces=([[0, 0, 0]],)),
    "too many faces": dict(faces=(FACE,) * 9),
}


@pytest.mark.parametrize("changes", REJECTED.values(), ids=REJECTED.keys())
def test_invalid_spec_is_rejected(changes: dict[str, object]) -> None:
    args: dict[str, object] = {"prompt": "a sunset over the ocean", "seed": 1, **changes}
    with pytest.raises(GeneratorError):
        GenerationSpec(**args)  # type: ignore[arg-type]


def test_error_messages_say_what_came() -> None:
    with pytest.raises(GeneratorError, match="even.*255"):
        GenerationSpec(prompt="x", seed=1, width=255)
    with pytest.raises(GeneratorError, match=r"seed.*2\*\*63"):
        GenerationSpec(prompt="x", seed=-5)
    with pytest.raises(GeneratorError, match="2001"):
        GenerationSpec(prompt="a" * 2001, seed=1)


def test_valid_spec_is_normalised() -> None:
    face = np.full((40, 30, 3), 7, np.uint8)
    spec = GenerationSpec(prompt="  snowy city at night \n", seed=np.int64(3), faces=[face],  # type: ignore[arg-type]
                          duration_s=1, width=320, height=192, fps=30)
    assert spec.prompt == "snowy city at night"
    assert type(spec.seed) is int and spec.seed == 3
    assert isinstance(spec.faces, tuple) and len(spec.faces) == 1
    assert isinstance(spec.duration_s, float) and isinstance(spec.fps, float)
    assert spec.frame_count == 30
    # The spec keeps its own read-only copy of every face.
    face[:] = 0
    assert int(spec.faces[0][0, 0, 0]) == 7
    assert not spec.faces[0].flags.writeable
    with pytest.raises(ValueError):
        spec.faces[0][0, 0, 0] = 1


def test_limits_are_inclusive() -> None:
    GenerationSpec(prompt="a" * 2000, seed=2**63 - 1, duration_s=20, width=1024, height=64, fps=60)
    GenerationSpec(prompt="b", seed=0, duration_s=0.5, width=64, height=1024, fps=1, faces=(FACE,) * 8)


def test_spec_is_frozen_comparable_and_short_in_repr() -> None:
    a = GenerationSpec(prompt="forest", seed=1, faces=(np.ones((500, 500, 3), np.uint8),))
    b = GenerationSpec(prompt="forest", seed=1, faces=(np.ones((500, 500, 3), np.uint8),))
    c = GenerationSpec(prompt="forest", seed=1, faces=(np.zeros((500, 500, 3), np.uint8),))
    assert a == b and hash(a) == hash(b) and a.fingerprint() == b.fingerprint()
    assert a != c and a.fingerprint() != c.fingerprint()
    assert a != GenerationSpec(prompt="forest", seed=2, faces=a.faces)
    with pytest.raises(AttributeError):
        a.seed = 2  # type: ignore[misc]
    assert "500x500" in repr(a) and len(repr(a)) < 200


def test_get_generator_procedural() -> None:
    gen = get_generator("procedural")
    assert isinstance(gen, ProceduralGenerator)
    assert isinstance(gen, VideoGenerator)
    assert gen.info == GeneratorInfo(
        name="consentgate-procedural",
        version="0.1",
        learned_weights=False,
        description="Procedural scene renderer; no learned model, no training data",
    )
    assert get_generator(" Procedural ", face_margin=0.25).face_margin == 0.25  # type: ignore[attr-defined]


def test_get_generator_rejections() -> None:
    with pytest.raises(GeneratorError, match="needs the model's local directory"):
        get_generator("diffusers")
    with pytest.raises(GeneratorError, match="unknown generator 'sora'"):
        get_generator("sora")
    with pytest.raises(GeneratorError, match="bad options"):
        get_generator("procedural", weights_dir="/models")
    with pytest.raises(GeneratorError, match="face_margin"):
        get_generator("procedural", face_margin=-1)


def test_generate_rejects_anything_but_a_spec() -> None:
    with pytest.raises(GeneratorError, match="GenerationSpec"):
        ProceduralGenerator().generate({"prompt": "x", "seed": 1})  # type: ignore[arg-type]
