"""Decode limits: what one upload may make the decoders do, enforced while they decode.

Headers are never trusted to *accept* a file (a browser's WebM states no duration; a crafted MP4 can
state anything): every limit is counted on what is actually decoded, and decoding stops the moment one
is crossed. Headers are only used to *refuse* early, before the first frame, when they already declare
too much::

    >>> from media.limits import Limits, Meter
    >>> meter = Meter(Limits(seconds=60.0))
    >>> meter.limits.seconds, meter.pixels
    (60.0, 0)

A :class:`Meter` is one request's account: the limits it decodes under and the work done so far
(decoded pixels, frames), which the service charges to the client's rate limit.

The defaults (the source of each number is on its field) keep one decode of one file within about
:data:`DEFAULT_MEMORY_BYTES` of working memory; ``docs/limits.md`` has the measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from media.errors import LimitExceeded

__all__ = ["DEFAULT_LIMITS", "DEFAULT_MEMORY_BYTES", "FRAME_COST_FLOOR", "LimitExceeded", "Limits", "Meter"]

MiB = 1024 * 1024
DEFAULT_MEMORY_BYTES = 256 * MiB
FRAME_COST_FLOOR = 65_536
"""A decoded frame costs at least this many pixels (a 256x256 frame): decoding, converting and reading a
tiny frame still has a fixed cost per frame, so 100,000 16x16 frames are not free."""


@dataclass(frozen=True)
class Limits:
    """What one decode may do. Every count is checked as it is decoded; a value of 0 is not allowed.

    - ``image_pixels``: pixels of one still image (width x height). 50 MP: the largest JPEGs phones save
      (8160x6120 in 50 MP modes; their default HEIC/JPEG are 12-24 MP). Formats decoded at full size
      (PNG, AVIF, HEIF) are refused earlier by ``memory_bytes``, at about 26 MP.
    - ``frame_pixels``: pixels of one video frame. 3840x2160 (4K UHD), the largest a phone records.
    - ``frames``: decoded video frames. 18,000 = 300 s at 60 fps.
    - ``seconds``: decoded seconds of video or audio, from the frames' timestamps. 300 s: the
      service's ``verify_max_seconds``.
    - ``tracks``: streams in a container (video, audio, subtitles, data). 16: a phone's MOV has 2-6
      (video, audio and timed-metadata tracks).
    - ``photos``: files in one request (enrollment photos, character references). 8.
    - ``memory_bytes``: the estimated working memory of one decode (see :meth:`image_bytes` and
      :meth:`frame_bytes`), refused before the decode starts. 256 MiB.
    - ``decode_threads``: decoder threads per video (each holds frames in flight). 2.
    """

    image_pixels: int = 50_000_000
    frame_pixels: int = 3840 * 2160
    frames: int = 18_000
    seconds: float = 300.0
    tracks: int = 16
    photos: int = 8
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    decode_threads: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"limit {f.name} must be a positive number, got {value!r}")

    def but(self, **changes: Any) -> Limits:
        """A copy with some limits changed (``DEFAULT_LIMITS.but(seconds=60.0)``)."""
        return replace(self, **changes)

    def image_bytes(self, pixels: int, bytes_per_pixel: float) -> int:
        """Estimated working memory to decode a still of ``pixels`` whose decoded mode stores
        ``bytes_per_pixel`` bytes (Pillow keeps 3- and 4-band images at 4): the decoded image, the
        RGB bytes Pillow exports and the array copied from them."""
        return int(pixels * (bytes_per_pixel + 3 + 3))

    def frame_bytes(self, pixels: int, deep: bool = False) -> int:
        """Estimated working memory to decode video of ``pixels``-pixel frames: up to 8 reference frames
        plus one per decoder thread in 4:2:0 (1.5 bytes a pixel; 3 when ``deep``, 10-16 bit), an RGB frame
        and one oriented copy of it. (H.264 and HEVC levels allow at most 6 reference frames at 4K.)"""
        return int(pixels * ((3.0 if deep else 1.5) * (8 + self.decode_threads) + 6))

    def check(self, limit: str, value: float, what: str) -> None:
        """Raise :class:`LimitExceeded` when ``value`` is over the limit named ``limit``."""
        allowed = getattr(self, limit)
        if value > allowed:
            raise LimitExceeded(limit, value, allowed, f"{what}: {_show(limit, value)}; at most "
                                                       f"{_show(limit, allowed)} allowed ({limit})")


DEFAULT_LIMITS = Limits()


@dataclass
class Meter:
    """One request's decoding account: its limits and the work done so far.

    ``pixels`` is the cost: the sum over decoded frames (and stills) of their pixels, each frame at
    least :data:`FRAME_COST_FLOOR`; ``frames`` counts decoded video frames, ``files`` decoded files.
    Not thread-safe: one request, one thread.
    """

    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    pixels: int = 0
    frames: int = 0
    files: int = 0

    def add_frame(self, pixels: int) -> None:
        self.pixels += max(int(pixels), FRAME_COST_FLOOR)
        self.frames += 1

    def add_image(self, pixels: int) -> None:
        self.pixels += max(int(pixels), FRAME_COST_FLOOR)
        self.files += 1

    @property
    def megapixels(self) -> float:
        return self.pixels / 1e6


def _show(limit: str, value: float) -> str:
    if limit == "memory_bytes":
        return f"{value / MiB:.0f} MiB"
    if limit == "seconds":
        return f"{value:.1f} s".replace(".0 s", " s")
    if limit in ("image_pixels", "frame_pixels"):
        return f"{value / 1e6:.1f} megapixels"
    return f"{int(value)}"
