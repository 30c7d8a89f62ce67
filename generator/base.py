"""The ``VideoGenerator`` interface: what the gate asks of any text-to-video backend.

A backend takes a validated :class:`GenerationSpec` and returns a :class:`media.video.Clip`
(RGB frames plus a mono soundtrack). Backends are chosen by name with :func:`generator.backends.get_generator`::

    >>> from generator.backends import get_generator
    >>> from generator.base import GenerationSpec
    >>> gen = get_generator("procedural")
    >>> gen.info.learned_weights
    False
    >>> clip = gen.generate(GenerationSpec(prompt="a snowy city at night", seed=7, duration_s=1.0))
    >>> clip.frames.shape
    (24, 256, 256, 3)

An invalid spec never exists: ``GenerationSpec(prompt="", seed=1)`` raises :class:`GeneratorError`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Protocol, runtime_checkable

import numpy as np

from media.errors import ConsentGateError
from media.video import Clip

__all__ = [
    "ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "GenerationSpec",
    "GeneratorBusy",
    "GeneratorError",
    "GeneratorInfo",
    "VideoGenerator",
]

PROMPT_MAX_CHARS = 2000
SEED_LIMIT = 2**63
DURATION_RANGE_S = (0.5, 20.0)
SIDE_RANGE_PX = (64, 1024)
FPS_RANGE = (1.0, 60.0)
MAX_FACES = 8
FACE_SIDE_RANGE_PX = (16, 4096)


class GeneratorError(ConsentGateError):
    """A generation request cannot be served: a bad spec, an unknown backend, a scene that cannot be laid out."""


class GeneratorBusy(ConsentGateError):
    """The generator cannot take the request now (its GPU is out of memory or held by another job): a transient
    failure, worth trying again later, unlike :class:`GeneratorError`."""


ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
"""IPTC digital source type for media made by an algorithm without a trained model (a procedural renderer)."""
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
"""IPTC digital source type for media made by a model trained on sampled content (a diffusion model)."""


@dataclass(frozen=True)
class GeneratorInfo:
    """What a backend is, stated plainly (it ends up in the provenance manifest).

    ``digital_source_type`` is the IPTC NewsCodes term the C2PA ``c2pa.created`` action declares (IPTC
    Digital Source Type vocabulary, as C2PA 2.2 section 18.14 refers to it): :data:`ALGORITHMIC_MEDIA` for a
    backend without learned weights, :data:`TRAINED_ALGORITHMIC_MEDIA` for a learned model. The backend
    declares it; a value that contradicts ``learned_weights`` is refused.
    """

    name: str
    version: str
    learned_weights: bool
    description: str
    digital_source_type: str = ""

    def __post_init__(self) -> None:
        expected = TRAINED_ALGORITHMIC_MEDIA if self.learned_weights else ALGORITHMIC_MEDIA
        if not self.digital_source_type:
            object.__setattr__(self, "digital_source_type", expected)
        elif self.digital_source_type != expected:
            raise GeneratorError(
                f"a generator with learned_weights={self.learned_weights} is {expected.rsplit('/', 1)[-1]}, "
                f"got digital_source_type {self.digital_source_type!r}"
            )


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise GeneratorError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise GeneratorError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise GeneratorError(f"{name} must be finite, got {out!r}")
    return out


def _check_face(index: int, face: object) -> np.ndarray:
    if not isinstance(face, np.ndarray):
        raise GeneratorError(f"faces[{index}] must be a numpy array, got {type(face).__name__}")
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
        raise GeneratorError(f"faces[{index}] must be an (H, W, 3) uint8 RGB array, got {face.shape} {face.dtype}")
    lo, hi = FACE_SIDE_RANGE_PX
    if not (lo <= min(face.shape[:2]) and max(face.shape[:2]) <= hi):
        raise GeneratorError(f"faces[{index}] sides must be within {lo}..{hi} px, got {face.shape[1]}x{face.shape[0]}")
    out = np.array(face, dtype=np.uint8, order="C", copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class GenerationSpec:
    """One validated generation request. Constructing it checks every field.

    ``faces`` are RGB crops (uint8, H x W x 3) of the likenesses the requester may use, each the face
    box with a margin around it; they are copied and made read-only. ``prompt`` is stored stripped.
    """

    prompt: str
    seed: int
    faces: tuple[np.ndarray, ...] = field(default=())
    duration_s: float = 4.0
    width: int = 256
    height: int = 256
    fps: float = 24.0

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise GeneratorError(f"prompt must be a string, got {type(self.prompt).__name__}")
        prompt = self.prompt.strip()
        if not prompt:
            raise GeneratorError("prompt must not be empty or only whitespace")
        if len(prompt) > PROMPT_MAX_CHARS:
            raise GeneratorError(f"prompt must be at most {PROMPT_MAX_CHARS} characters, got {len(prompt)}")
        if "\x00" in prompt:
            raise GeneratorError("prompt must not contain NUL characters")
        seed = _check_int("seed", self.seed)
        if not (0 <= seed < SEED_LIMIT):
            raise GeneratorError(f"seed must be in [0, 2**63), got {seed}")
        if isinstance(self.faces, np.ndarray) or not isinstance(self.faces, Sequence):
            raise GeneratorError(
                f"faces must be a tuple of (H, W, 3) uint8 arrays, got {type(self.faces).__name__}"
            )
        if len(self.faces) > MAX_FACES:
            raise GeneratorError(f"at most {MAX_FACES} faces per generation, got {len(self.faces)}")
        faces = tuple(_check_face(i, f) for i, f in enumerate(self.faces))
        duration = _check_real("duration_s", self.duration_s)
        lo, hi = DURATION_RANGE_S
        if not (lo <= duration <= hi):
            raise GeneratorError(f"duration_s must be within {lo}..{hi} s, got {duration}")
        sides: dict[str, int] = {}
        for name in ("width", "height"):
            value = _check_int(name, getattr(self, name))
            lo_px, hi_px = SIDE_RANGE_PX
            if not (lo_px <= value <= hi_px):
                raise GeneratorError(f"{name} must be within {lo_px}..{hi_px} px, got {value}")
            if value % 2:
                raise GeneratorError(f"{name} must be even (H.264 needs even sides), got {value}")
            sides[name] = value
        fps = _check_real("fps", self.fps)
        if not (FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
            raise GeneratorError(f"fps must be within {FPS_RANGE[0]:g}..{FPS_RANGE[1]:g}, got {fps}")
        clean: dict[str, object] = {"prompt": prompt, "seed": seed, "faces": faces, "duration_s": duration,
                                    "fps": fps, **sides}
        for key, checked in clean.items():
            object.__setattr__(self, key, checked)

    @property
    def frame_count(self) -> int:
        """Number of frames a backend must return: ``round(duration_s * fps)``, at least one."""
        return max(1, round(self.duration_s * self.fps))

    def fingerprint(self) -> str:
        """SHA-256 over every field (face pixels included): equal specs have equal fingerprints."""
        h = hashlib.sha256()
        h.update(repr((self.prompt, self.seed, self.duration_s, self.width, self.height, self.fps)).encode())
        for face in self.faces:
            h.update(repr(face.shape).encode())
            h.update(face.tobytes())
        return h.hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationSpec):
            return NotImplemented
        return (
            (self.prompt, self.seed, self.duration_s, self.width, self.height, self.fps)
            == (other.prompt, other.seed, other.duration_s, other.width, other.height, other.fps)
            and len(self.faces) == len(other.faces)
            and all(np.array_equal(a, b) for a, b in zip(self.faces, other.faces, strict=True))
        )

    def __hash__(self) -> int:
        return hash((self.prompt, self.seed, self.duration_s, self.width, self.height, self.fps,
                     tuple(f.shape for f in self.faces)))

    def __repr__(self) -> str:
        faces = ", ".join(f"{f.shape[1]}x{f.shape[0]}" for f in self.faces)
        return (f"GenerationSpec(prompt={self.prompt!r}, seed={self.seed}, faces=[{faces}], "
                f"duration_s={self.duration_s}, width={self.width}, height={self.height}, fps={self.fps})")


@runtime_checkable
class VideoGenerator(Protocol):
    """A text-to-video backend. ``generate`` must be deterministic for a given spec where it can be."""

    info: GeneratorInfo

    def generate(self, spec: GenerationSpec) -> Clip: ...
