"""Visible disclosure label: a semi-opaque "AI-generated" badge burned into a corner of every frame.

The badge is a dark translucent rounded box (about 60 % opaque, so the picture still shows through)
with near-opaque white text, which stays legible on any background and through H.264. Its size
follows the frame: the main line's font is about 5 % of the shorter side (at least 8 px), shrunk
when needed so the badge never takes more than 60 % of the frame's width. It sits in the
bottom-right corner, a small margin from the edges; every other pixel is left exactly as it was.

In the gate's pipeline the label goes on first and the invisible watermark after it
(:func:`provenance.watermark.embed`), so the watermark also covers the badge area.

Example::

    >>> import numpy as np
    >>> from provenance.label import add_visible_label
    >>> frames = np.full((4, 256, 256, 3), 200, np.uint8)
    >>> labelled = add_visible_label(frames, sub="ConsentGate 1a2b3c4d")
    >>> labelled.shape == frames.shape, bool((labelled[:, :128] == frames[:, :128]).all())
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from provenance.errors import WatermarkError

__all__ = ["add_visible_label"]

_FONT_FRACTION = 0.05  # main font size / shorter frame side
_MIN_FONT = 8
_SUB_SCALE = 0.7
_MAX_WIDTH = 0.6  # the badge never covers more than this share of the frame width
_MAX_TEXT = 80
_BOX_ALPHA = 0.6
_TEXT_ALPHA = 0.95
_BOX_RGB = np.array([16, 16, 16], np.float32)
_TEXT_RGB = np.array([255, 255, 255], np.float32)


@dataclass(frozen=True)
class _Badge:
    box: np.ndarray  # (h, w, 1) float32 coverage of the translucent box, 0..1
    glyphs: np.ndarray  # (h, w, 1) float32 coverage of the text, 0..1

    @property
    def height(self) -> int:
        return int(self.box.shape[0])

    @property
    def width(self) -> int:
        return int(self.box.shape[1])


def add_visible_label(frames: np.ndarray, text: str = "AI-generated", *, sub: str | None = None,
                      credits: tuple[str, ...] = ()) -> np.ndarray:
    """Return a copy of ``frames`` ((T, H, W, 3) or one (H, W, 3) uint8 RGB) with the badge drawn in.

    ``text`` is the main line, ``sub`` an optional smaller second line (e.g. the issuer and content id),
    ``credits`` further small lines (the attributions rights holders require). A frame too small to hold
    them all legibly is refused, never labelled with some left out.
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim not in (3, 4) \
            or frames.shape[-1] != 3:
        got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise WatermarkError(f"frames must be (T, H, W, 3) or (H, W, 3) uint8 RGB, got {got}")
    if frames.ndim == 4 and frames.shape[0] == 0:
        raise WatermarkError("no frames given")
    text = _clean(text, "text")
    sub = None if sub is None else _clean(sub, "sub")
    credits = tuple(_clean(c, "credit") for c in credits)
    h, w = frames.shape[-3:-1]
    badge = _badge(text, sub, credits, h, w)
    margin = _margin(h, w)
    y0, x0 = h - margin - badge.height, w - margin - badge.width
    if y0 < 0 or x0 < 0:
        raise WatermarkError(f"a {w}x{h} frame is too small for a legible label")
    out = frames.copy()
    region: np.ndarray = out[..., y0:y0 + badge.height, x0:x0 + badge.width, :].astype(np.float32)
    a_box = _BOX_ALPHA * badge.box
    region = region * (1 - a_box) + _BOX_RGB * a_box
    a_text = _TEXT_ALPHA * badge.glyphs
    region = region * (1 - a_text) + _TEXT_RGB * a_text
    out[..., y0:y0 + badge.height, x0:x0 + badge.width, :] = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    return out


def _clean(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise WatermarkError(f"label {name} must be a string, got {type(value).__name__}")
    value = " ".join(value.split())
    if not value or len(value) > _MAX_TEXT:
        raise WatermarkError(f"label {name} must have 1 to {_MAX_TEXT} visible characters, got {len(value)}")
    return value


def _margin(h: int, w: int) -> int:
    return max(2, round(0.025 * min(h, w)))


@lru_cache(maxsize=16)
def _badge(text: str, sub: str | None, credits: tuple[str, ...], h: int, w: int) -> _Badge:
    """Render the badge for an h x w frame, shrinking the font until it fits."""
    size = max(_MIN_FONT, round(_FONT_FRACTION * min(h, w)))
    while True:
        badge = _render(text, sub, credits, size)
        if badge.width <= _MAX_WIDTH * w and badge.height <= 0.4 * h or size <= _MIN_FONT:
            return badge
        size -= 1


def _render(text: str, sub: str | None, credits: tuple[str, ...], size: int) -> _Badge:
    font = ImageFont.load_default(size=size)
    small = ImageFont.load_default(size=max(_MIN_FONT - 1, round(size * _SUB_SCALE)))
    lines = [(text, font)]
    if sub is not None:
        lines.append((sub, small))
    lines += [(c, small) for c in credits]
    pad = max(2, round(size * 0.45))
    gap = max(1, round(size * 0.2))
    boxes = [tuple(int(v) for v in f.getbbox(t)) for t, f in lines]
    width = max(b[2] - b[0] for b in boxes) + 2 * pad
    height = sum(b[3] - b[1] for b in boxes) + gap * (len(lines) - 1) + 2 * pad
    box = Image.new("L", (width, height), 0)
    ImageDraw.Draw(box).rounded_rectangle((0, 0, width - 1, height - 1), radius=pad, fill=255)
    glyphs = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(glyphs)
    y = pad
    for (line, f), (left, top, _, bottom) in zip(lines, boxes, strict=True):
        draw.text((pad - left, y - top), line, font=f, fill=255)
        y += bottom - top + gap
    box_cover = np.asarray(box, np.float32)[..., None] / 255.0
    glyph_cover = np.asarray(glyphs, np.float32)[..., None] / 255.0
    box_cover.flags.writeable = glyph_cover.flags.writeable = False  # shared through the cache
    return _Badge(box=box_cover, glyphs=glyph_cover)
