"""Visible disclosure labels burned into the frames: a moving "AI" mark for releases, and a static corner badge.

**The moving label** (:func:`draw_label`, what the gate releases) meets the explicit-label rules of the
EU AI Act Article 50(4) (deep fakes disclosed "in a clear and distinguishable manner at the latest at the
time of the first interaction or exposure") and GB 45438-2025 section 5 (video: a text or graphic mark that
includes "AI" and "generated", on the opening frames for at least 2 s, text at least 5 % of the shorter side
of the picture; it may also be shown throughout). Every frame carries one badge: a boxed "AI" mark, the
main text ("AI-generated") and the creator's public handle on a second line, as Sora's moving mark names
its creator. Its measured text height (the "AI" glyphs' ink, not the nominal font size) is at least 5 %
of the shorter side. The badge moves: the clip is cut into segments of :data:`DWELL_S` seconds (half the
clip when it is shorter than two of them, so there are always at least two) and the segments cycle
through four positions, bottom-right, top-left, top-right, bottom-left, so cropping away one corner, or
inpainting one place, leaves the label in the others. :func:`draw_label` draws **in place**, touching
only the pixels of each segment's badge rectangle (no copy of the clip), and returns the
:class:`Placement` of every segment, which the manifest declares.

The static badge follows.

The badge is a dark translucent rounded box (about 60 % opaque, so the picture still shows through)
with near-opaque white text, which stays legible on any background and through H.264. Its size
follows the frame: the main line's font is about 5 % of the shorter side (at least 8 px), shrunk
when needed so the badge never takes more than 60 % of the frame's width. It sits in the
bottom-right corner, a small margin from the edges; every other pixel is left exactly as it was.

**Chinese text** (GB 45438-2025 asks for "人工智能生成" or "AI生成"): ``LabelSpec(language="zh")`` writes
"人工智能生成" after the "AI" mark, drawn with a CJK font (:func:`find_cjk_font`: a path given, else the first of
:data:`CJK_FONT_CANDIDATES` installed; Debian's ``fonts-wqy-microhei`` is the one ``.ci/run`` installs).
Pillow's own font has no CJK glyphs and would draw empty boxes ("tofu"), so every character of the label is
checked against the font before anything is drawn (:func:`missing_glyphs`), and a font that lacks one is
refused.

**The English label's font** is the first installed of :data:`LATIN_FONT_CANDIDATES` (Debian's
``fonts-dejavu-core``, which ``.ci/run`` installs: Latin with its accents, Greek, Cyrillic), so a rights
holder's credit such as "Estudio Ñandú" is drawn, not refused; Pillow's own font (ASCII only) when none is
installed. :func:`label_font` says which file a label is drawn with, :func:`undrawable` which characters of a
text it cannot draw: the service refuses such a credit when it is registered, not at every release.

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

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from provenance.errors import WatermarkError

__all__ = ["CJK_FONT_CANDIDATES", "DWELL_S", "LABEL_TEXT", "LATIN_FONT_CANDIDATES", "MIN_TEXT_FRACTION", "LabelSpec",
           "Placement", "add_visible_label", "declaration", "draw_label", "find_cjk_font", "label_font",
           "label_schedule", "missing_glyphs", "undrawable"]

MIN_TEXT_FRACTION = 0.05
"""GB 45438-2025: the label's text height is at least 5 % of the picture's shorter side."""
DWELL_S = 1.0
"""Seconds the moving label stays in one place before it moves to the next position."""
OPENING_S = 2.0
"""GB 45438-2025: the label is on the opening frames for at least this long (ours never leaves)."""
_LABEL_MIN_FONT = 6
_MOVING_MAX_WIDTH = 0.7  # the moving badge's share of the frame width at most (it does not stay in one place)
_POSITIONS = ("bottom-right", "top-left", "top-right", "bottom-left")
LABEL_TEXT = {"en": "AI-generated", "zh": "人工智能生成"}
"""The label's text after the "AI" mark, by language: GB 45438-2025 names "人工智能生成" for Chinese."""
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian fonts-wqy-microhei (Apache-2.0 or GPL-3 + FE)
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei (GPL-2 + font exception)
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk (SIL OFL 1.1)
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # fonts-droid-fallback (Apache-2.0)
)
"""Where Debian's CJK font packages put a font with the label's Chinese glyphs, tried in this order."""
LATIN_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian fonts-dejavu-core (Bitstream Vera license, free)
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",  # fonts-liberation (SIL OFL 1.1)
)
"""The English label's font, the first of these installed (Latin with accents, Greek, Cyrillic); none: Pillow's own."""

_FONT_FRACTION = 0.05  # main font size / shorter frame side
_MIN_FONT = 8
_SUB_SCALE = 0.7
_MAX_WIDTH = 0.6  # the badge never covers more than this share of the frame width
_MAX_TEXT = 80
_BOX_ALPHA = 0.6
_TEXT_ALPHA = 0.95
_BOX_RGB = np.array([16, 16, 16], np.float32)
_TEXT_RGB = np.array([255, 255, 255], np.float32)


@dataclass(frozen=True, eq=False)
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


# --- the moving label ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelSpec:
    """What the moving label says: ``text`` after the boxed "AI" mark (default: :data:`LABEL_TEXT` of
    ``language``, ``en`` or ``zh``), then ``handle`` (the creator's public handle, ``@name``) and ``issuer`` on
    the second line, ``credits`` (attributions) on further lines; ``font``, a TrueType/OpenType file to draw
    with (default :func:`label_font`: for ``zh`` a CJK font, for ``en`` one of :data:`LATIN_FONT_CANDIDATES`).

    Raises :class:`WatermarkError` for an unknown language, no CJK font installed, or a font without a glyph
    for one of the label's characters (:func:`missing_glyphs`): never a label drawn with empty boxes."""

    handle: str
    text: str | None = None
    issuer: str = "ConsentGate"
    credits: tuple[str, ...] = ()
    language: str = "en"
    font: str | None = None

    def __post_init__(self) -> None:
        if self.language not in LABEL_TEXT:
            raise WatermarkError(f"label language must be one of {sorted(LABEL_TEXT)}, got {self.language!r}")
        handle = _clean(self.handle, "handle")
        object.__setattr__(self, "handle", handle if handle.startswith("@") else "@" + handle)
        object.__setattr__(self, "text", _clean(LABEL_TEXT[self.language] if self.text is None else self.text,
                                                "text"))
        object.__setattr__(self, "issuer", _clean(self.issuer, "issuer"))
        object.__setattr__(self, "credits", tuple(_clean(c, "credit") for c in self.credits))
        font = label_font(self.language, self.font)
        object.__setattr__(self, "font", font)
        missing = missing_glyphs(font, "AI" + "".join((str(self.text), self.handle, self.issuer, *self.credits)))
        if missing:
            raise WatermarkError(f"the label font {font or '(Pillow default)'} has no glyph for "
                                 f"{''.join(missing)!r}: it would draw empty boxes")


def label_font(language: str = "en", path: str | Path | None = None) -> str | None:
    """The font file a label in ``language`` is drawn with: ``path`` when given (it must be readable), else for
    ``zh`` :func:`find_cjk_font`, for ``en`` the first installed of :data:`LATIN_FONT_CANDIDATES`, or None (Pillow's
    own font) when none is. Raises :class:`WatermarkError` for an unreadable ``path`` or no CJK font."""
    if path is not None:
        return str(find_cjk_font(path))
    if language != "en":
        return str(find_cjk_font())
    return next((name for name in LATIN_FONT_CANDIDATES if Path(name).is_file()), None)


def undrawable(text: str, language: str = "en", font: str | Path | None = None) -> str:
    """The characters of ``text`` (each once, in order; "" when none) that the label in ``language`` drawn with
    ``font`` (default: :func:`label_font`) cannot draw: what a credit must not hold to appear on the label.

    >>> undrawable("Studio Ghibli")
    ''
    """
    return "".join(missing_glyphs(label_font(language, font), text))


def find_cjk_font(path: str | Path | None = None) -> Path:
    """``path`` when given (it must be a readable font file), else the first installed of
    :data:`CJK_FONT_CANDIDATES`. Raises :class:`WatermarkError` naming what to install when there is none."""
    if path is not None:
        candidate = Path(path)
        try:
            ImageFont.truetype(str(candidate), 16)
        except OSError as e:
            raise WatermarkError(f"the label font {candidate} cannot be read as a TrueType/OpenType font: {e}") from e
        return candidate
    for name in CJK_FONT_CANDIDATES:
        if Path(name).is_file():
            return Path(name)
    raise WatermarkError("no CJK font is installed for the Chinese label: install Debian's fonts-wqy-microhei "
                         "(or fonts-noto-cjk), or name a font file (GOVERNANCE_LABEL_FONT)")


def missing_glyphs(font: str | None, text: str) -> list[str]:
    """The characters of ``text`` that ``font`` (a font file; None: Pillow's own) draws as nothing or as its
    "missing glyph" box: each is rendered alone and compared with a code point no font maps (U+10FFFD)."""
    face = _font(font, 32)
    notdef = _glyph_image(face, "\U0010fffd")
    out = []
    for ch in dict.fromkeys(text):
        if ch.isspace():
            continue
        image = _glyph_image(face, ch)
        if not image.any() or np.array_equal(image, notdef):
            out.append(ch)
    return out


def _glyph_image(face: Any, ch: str) -> np.ndarray:
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).text((8, 8), ch, font=face, fill=255)
    return np.asarray(image)


@lru_cache(maxsize=128)
def _font(path: str | None, size: int) -> Any:
    """The font to draw with at ``size`` px: the file at ``path``, or Pillow's own."""
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Placement:
    """Where the label sits on frames ``start``..``end - 1``: the badge's ``x``, ``y``, ``width``, ``height``
    in pixels, its ``position`` name, and ``text_px``, the measured ink height of the "AI" mark's glyphs."""

    start: int
    end: int
    position: str
    x: int
    y: int
    width: int
    height: int
    text_px: int

    def to_dict(self) -> dict[str, int | str]:
        return {"start_frame": self.start, "end_frame": self.end, "position": self.position, "x": self.x,
                "y": self.y, "width": self.width, "height": self.height, "text_px": self.text_px}


def label_schedule(frame_count: int, fps: float) -> list[tuple[int, int, str]]:
    """The (start, end, position) segments for a clip of ``frame_count`` frames at ``fps``: at least two,
    each :data:`DWELL_S` long at most, cycling through the four positions."""
    if isinstance(frame_count, bool) or not isinstance(frame_count, int) or frame_count < 1:
        raise WatermarkError(f"frame_count must be a whole number >= 1, got {frame_count!r}")
    if not (isinstance(fps, (int, float)) and 0 < fps <= 240):
        raise WatermarkError(f"fps must be in (0, 240], got {fps!r}")
    dwell = max(1, min(round(DWELL_S * fps), -(-frame_count // 2)))
    return [(start, min(frame_count, start + dwell), _POSITIONS[i % len(_POSITIONS)])
            for i, start in enumerate(range(0, frame_count, dwell))]


def draw_label(frames: np.ndarray, fps: float, label: LabelSpec) -> list[Placement]:
    """Draw the moving label into ``frames`` ((T, H, W, 3) uint8 RGB, writeable) **in place**; returns where.

    Only the badge rectangle of each segment changes. Raises :class:`WatermarkError` when the frames are not
    (T, H, W, 3) uint8, not writeable, or too small for the label at 5 % text height within 70 % of the width.
    """
    if not isinstance(label, LabelSpec):
        raise WatermarkError(f"expected a LabelSpec, got {type(label).__name__}")
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise WatermarkError(f"frames must be (T, H, W, 3) uint8 RGB, got {got}")
    if frames.shape[0] == 0:
        raise WatermarkError("no frames given")
    if not frames.flags.writeable:
        raise WatermarkError("frames must be writeable: the label is drawn in place")
    h, w = frames.shape[1:3]
    schedule = label_schedule(int(frames.shape[0]), float(fps))
    badge, text_px = _moving_badge(label, h, w)
    margin = _margin(h, w)
    if badge.height + 2 * margin > h or badge.width + 2 * margin > w:
        raise WatermarkError(f"a {w}x{h} frame is too small for a legible label")
    scale, offset = _blend_terms(badge)
    out = []
    for start, end, position in schedule:
        y = margin if position.startswith("top") else h - margin - badge.height
        x = margin if position.endswith("left") else w - margin - badge.width
        region = frames[start:end, y:y + badge.height, x:x + badge.width, :]
        # one fixed-point multiply-add per pixel: (v * scale + offset) / 256, scale and offset precomputed
        region[...] = ((region.astype(np.uint16) * scale + offset) >> 8).astype(np.uint8)
        out.append(Placement(start, end, position, x, y, badge.width, badge.height, text_px))
    return out


def declaration(placements: list[Placement], height: int, width: int, fps: float, label: LabelSpec) -> dict[str, Any]:
    """What the manifest declares about the moving label (``org.consentgate.disclosure`` ``visible_label``):
    the mark, the text, the text height as a fraction of the shorter side, how long it is on the opening
    frames (the label never leaves: ``throughout``), whether it names the creator, and the positions."""
    frames = placements[-1].end if placements else 0
    return {
        "ai_mark": True,
        "text": label.text,
        "language": label.language,
        "names_creator": True,
        "text_fraction": round(min(p.text_px for p in placements) / min(height, width), 4) if placements else 0,
        "opening_s": round(frames / fps, 3),
        "throughout": bool(placements) and all(a.end == b.start
                                               for a, b in zip(placements, placements[1:], strict=False)),
        "positions": [p.to_dict() for p in placements],
    }


@lru_cache(maxsize=16)
def _moving_badge(label: LabelSpec, h: int, w: int) -> tuple[_Badge, int]:
    """The badge for an h x w frame, its "AI" ink at least 5 % of the shorter side, and that ink height.

    Three layouts are tried, most compact first: mark + text / handle and issuer; mark + text / handle /
    issuer; mark / text / handle / issuer (credits always on their own lines). The badge may take 70 % of
    the width and 45 % of the height (the whole frame less margins under 256 px, where nothing smaller is
    legible).
    """
    need = max(1, math.ceil(MIN_TEXT_FRACTION * min(h, w) - 1e-9))
    size = _LABEL_MIN_FONT
    while _ink_height(label.font, size) < need:
        size += 1
    small = max(_LABEL_MIN_FONT, round(size * _SUB_SCALE))
    margin = _margin(h, w)
    if min(h, w) >= 256:
        max_w, max_h = _MOVING_MAX_WIDTH * w, 0.45 * h
    else:
        max_w, max_h = w - 2 * margin, h - 2 * margin
    pad = max(2, round(size * 0.4))
    text = label.text or LABEL_TEXT[label.language]  # set by LabelSpec, never empty
    # the law's 5 % is the AI label's; credits (attributions) shrink to stay in, and wrap at word breaks
    for credit_size in range(small, _LABEL_MIN_FONT - 1, -1):
        credits = tuple((line, credit_size) for c in label.credits
                        for line in _wrap(c, label.font, credit_size, int(max_w) - 2 * pad))
        layouts: list[tuple[str | None, tuple[tuple[str, int], ...]]] = [
            (text, ((f"{label.handle} \u00b7 {label.issuer}", small),) + credits),
            (text, ((label.handle, small), (label.issuer, small)) + credits),
            (None, ((text, size), (label.handle, small), (label.issuer, small)) + credits),
        ]
        for beside, lines in layouts:
            badge = _render_moving(beside, lines, size, label.font)
            if badge.width <= max_w and badge.height <= max_h:
                return badge, _ink_height(label.font, size)
        if not label.credits:
            break
    raise WatermarkError(f"a {w}x{h} frame is too small for a legible label (text at least "
                         f"{MIN_TEXT_FRACTION:.0%} of the shorter side, handle {label.handle!r})")


def _wrap(text: str, font_path: str | None, size: int, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels at font ``size``, broken between words where it can."""
    font = _font(font_path, size)
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if current and font.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    return lines


@lru_cache(maxsize=64)
def _ink_height(font_path: str | None, size: int) -> int:
    left, top, right, bottom = _font(font_path, size).getbbox("AI")
    return int(bottom - top)


def _render_moving(beside: str | None, lines: tuple[tuple[str, int], ...], size: int,
                   font_path: str | None = None) -> _Badge:
    """A boxed "AI" mark with ``beside`` to its right (or alone) on the first line, then ``lines``."""
    font = _font(font_path, size)
    pad = max(2, round(size * 0.4))
    gap = max(1, round(size * 0.25))
    ai = tuple(int(v) for v in font.getbbox("AI"))
    mark_w, mark_h = ai[2] - ai[0] + 2 * pad, ai[3] - ai[1] + 2 * pad
    tb = tuple(int(v) for v in font.getbbox(beside)) if beside else (0, 0, 0, 0)
    first_w = mark_w + (gap + tb[2] - tb[0] if beside else 0)
    first_h = max(mark_h, tb[3] - tb[1])
    fonts = [_font(font_path, sz) for _, sz in lines]
    boxes = [tuple(int(v) for v in f.getbbox(t)) for (t, _), f in zip(lines, fonts, strict=True)]
    width = max([first_w] + [b[2] - b[0] for b in boxes]) + 2 * pad
    height = first_h + sum(b[3] - b[1] + gap for b in boxes) + 2 * pad
    box = Image.new("L", (width, height), 0)
    ImageDraw.Draw(box).rounded_rectangle((0, 0, width - 1, height - 1), radius=pad, fill=255)
    glyphs = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(glyphs)
    mx, my = pad, pad + (first_h - mark_h) // 2  # the mark: a solid box with "AI" knocked out
    draw.rounded_rectangle((mx, my, mx + mark_w - 1, my + mark_h - 1), radius=max(1, pad // 2), fill=255)
    draw.text((mx + pad - ai[0], my + pad - ai[1]), "AI", font=font, fill=0)
    if beside:
        draw.text((mx + mark_w + gap - tb[0], pad + (first_h - (tb[3] - tb[1])) // 2 - tb[1]), beside, font=font,
                  fill=255)
    y = pad + first_h + gap
    for (line, _), f, (left, top, _r, bottom) in zip(lines, fonts, boxes, strict=True):
        draw.text((pad - left, y - top), line, font=f, fill=255)
        y += bottom - top + gap
    box_cover = np.asarray(box, np.float32)[..., None] / 255.0
    glyph_cover = np.asarray(glyphs, np.float32)[..., None] / 255.0
    box_cover.flags.writeable = glyph_cover.flags.writeable = False
    return _Badge(box=box_cover, glyphs=glyph_cover)


@lru_cache(maxsize=16)
def _blend_terms(badge: _Badge) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset), uint16, such that ``(v * scale + offset) >> 8`` is the badge blended over ``v``."""
    a_box = _BOX_ALPHA * badge.box
    a_text = _TEXT_ALPHA * badge.glyphs
    keep = (1 - a_box) * (1 - a_text)
    add = _BOX_RGB * a_box * (1 - a_text) + _TEXT_RGB * a_text
    scale = np.rint(256 * keep).astype(np.uint16)
    offset = np.minimum(np.rint(256 * add + 128), 65535 - 255 * scale.astype(np.float32))  # +128 rounds the >> 8
    offset = offset.astype(np.uint16)
    scale.flags.writeable = offset.flags.writeable = False
    return scale, offset
