"""The embedded procedural generator: an animated scene drawn with numpy, no learned model at all.

It stands in for a real text-to-video model so the gate can run end to end on any machine. The prompt
picks a time of day (day / sunset / night), a setting (hills, city, forest, ocean, snow, desert) and the
weather (snow, rain) from the words in it, and a hash of the prompt and seed fills in the rest (colours,
layout, speeds). Permitted likenesses are composited into the scene from their face crops, large and
frontal so the gate's face scanner finds them again. A few sine tones make the soundtrack::

    >>> from generator.base import GenerationSpec
    >>> from generator.procedural import ProceduralGenerator
    >>> gen = ProceduralGenerator()
    >>> clip = gen.generate(GenerationSpec(prompt="sunset over the ocean", seed=1, duration_s=1.0))
    >>> clip.frames.shape, clip.audio.shape
    ((24, 256, 256, 3), (1, 48000))

Same spec, same bytes: every random choice comes from the prompt hash and the seed.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

from generator.base import ALGORITHMIC_MEDIA, GenerationSpec, GeneratorError, GeneratorInfo
from media.video import Clip

__all__ = ["ProceduralGenerator"]

SAMPLE_RATE = 48_000

_TIME_WORDS: dict[str, frozenset[str]] = {
    "night": frozenset({"night", "midnight", "moon", "moonlit", "moonlight", "stars", "starry", "dark",
                        "nocturnal", "nighttime"}),
    "sunset": frozenset({"sunset", "dusk", "sunrise", "dawn", "evening", "twilight", "golden"}),
    "day": frozenset({"day", "noon", "sunny", "morning", "afternoon", "daylight", "bright"}),
}
_SETTING_WORDS: dict[str, frozenset[str]] = {
    "city": frozenset({"city", "street", "streets", "urban", "downtown", "skyline", "town", "buildings",
                       "skyscraper", "skyscrapers", "rooftop", "metropolis"}),
    "forest": frozenset({"forest", "woods", "tree", "trees", "jungle", "park", "garden", "woodland", "pine"}),
    "ocean": frozenset({"ocean", "sea", "beach", "waves", "wave", "coast", "lake", "river", "harbor",
                        "harbour", "boat", "surf", "shore", "island"}),
    "snow": frozenset({"snow", "snowy", "winter", "mountain", "mountains", "ice", "ski", "glacier",
                       "frozen", "alps", "snowfall"}),
    "desert": frozenset({"desert", "dune", "dunes", "sand", "canyon", "sahara"}),
    "hills": frozenset({"hill", "hills", "meadow", "field", "fields", "countryside", "valley", "grass"}),
}
_WEATHER_WORDS: dict[str, frozenset[str]] = {
    "snow": frozenset({"snow", "snowy", "snowing", "snowfall", "blizzard", "snowflakes", "winter"}),
    "rain": frozenset({"rain", "rainy", "raining", "storm", "stormy", "drizzle", "downpour"}),
}

_SKY = {  # (top, horizon), RGB in 0..1
    "day": ((0.22, 0.46, 0.88), (0.72, 0.86, 1.00)),
    "sunset": ((0.22, 0.16, 0.46), (1.00, 0.56, 0.26)),
    "night": ((0.02, 0.03, 0.10), (0.10, 0.13, 0.32)),
}
_GROUND = {  # (far, near, accent) for daylight
    "hills": ((0.42, 0.66, 0.44), (0.22, 0.48, 0.20), (0.95, 0.85, 0.30)),
    "forest": ((0.20, 0.44, 0.28), (0.08, 0.26, 0.10), (0.05, 0.32, 0.14)),
    "city": ((0.52, 0.55, 0.62), (0.26, 0.28, 0.32), (1.00, 0.86, 0.42)),
    "ocean": ((0.10, 0.42, 0.66), (0.88, 0.78, 0.56), (1.00, 1.00, 1.00)),
    "snow": ((0.62, 0.68, 0.80), (0.94, 0.96, 1.00), (1.00, 1.00, 1.00)),
    "desert": ((0.86, 0.60, 0.36), (0.96, 0.76, 0.46), (0.70, 0.42, 0.22)),
}
_TINT = {"day": (1.0, 1.0, 1.0), "sunset": (1.0, 0.72, 0.62), "night": (0.22, 0.27, 0.45)}

# Face compositing, in units of the face box side ``f`` (the box a face detector would report).
_FACE_TARGET = 0.45  # face box side as a fraction of the frame height, when it fits
_INNER = (0.56, 0.74)  # opaque ellipse semi-axes (x, y)
_OUTER = (0.70, 0.94)  # fully transparent beyond these semi-axes
_FOOT = (1.4, 1.6)  # layout footprint (w, h): neighbours may overlap only where both are nearly clear
_DRIFT_PX = (3.0, 2.0)  # drift amplitude (x, y) in pixels
_BREATH = 0.025  # relative scale amplitude
_GAP_PX = 4


@dataclass(frozen=True)
class _Scene:
    time: str
    setting: str
    weather: str
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    far: np.ndarray
    near: np.ndarray
    accent: np.ndarray
    horizon: float  # fraction of the height
    speed: float  # scroll speed in frame widths per second
    root_midi: int


@dataclass(frozen=True)
class _Placement:
    rgba: np.ndarray  # crop resized to the largest scale it is shown at (RGB 0..255) + feathered mask (0..1)
    cx: float
    cy: float
    phase: tuple[float, float, float]
    periods: tuple[float, float, float]


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def _first_match(words: list[str], table: dict[str, frozenset[str]]) -> str | None:
    for w in words:
        for key, vocab in table.items():
            if w in vocab:
                return key
    return None


def _rng(spec: GenerationSpec, stream: int) -> np.random.Generator:
    digest = hashlib.sha256(spec.prompt.encode("utf-8")).digest()
    return np.random.default_rng(np.random.SeedSequence([int.from_bytes(digest, "big"), spec.seed, stream]))


def _jitter(rng: np.random.Generator, color: tuple[float, ...], amount: float = 0.06) -> np.ndarray:
    c = np.asarray(color, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)
    return np.clip(c, 0.0, 1.0).astype(np.float32)


def _scene(spec: GenerationSpec) -> _Scene:
    rng = _rng(spec, 0)
    words = _words(spec.prompt)
    time = _first_match(words, _TIME_WORDS) or str(rng.choice(["day", "day", "sunset", "night"]))
    # "snowy city": snow is then the weather, the city the setting.
    setting = (_first_match([w for w in words if w not in _WEATHER_WORDS["snow"]], _SETTING_WORDS)
               or _first_match(words, _SETTING_WORDS) or str(rng.choice(sorted(_SETTING_WORDS))))
    weather = _first_match(words, _WEATHER_WORDS) or "none"
    top, hor = _SKY[time]
    if weather != "none" and time == "day":  # overcast
        top, hor = (0.45, 0.52, 0.62), (0.78, 0.80, 0.84)
    tint = np.asarray(_TINT[time], np.float32)
    far, near, accent = _GROUND[setting]
    accent_arr = _jitter(rng, accent, 0.04)
    if not (setting == "city" and time == "night"):  # lit windows keep their glow at night
        accent_arr = accent_arr * tint
    return _Scene(
        time=time,
        setting=setting,
        weather=weather,
        sky_top=_jitter(rng, top),
        sky_horizon=_jitter(rng, hor),
        far=_jitter(rng, far) * tint,
        near=_jitter(rng, near) * tint,
        accent=accent_arr,
        horizon=float(rng.uniform(0.52, 0.62)),
        speed=float(rng.uniform(0.015, 0.04)),
        root_midi=int(rng.integers(45, 57)),
    )


def _over(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Paint ``color`` over ``img`` in place with per-pixel ``alpha`` (H, W)."""
    img += alpha[..., None] * (color - img)


def _ridge(x: np.ndarray, rng: np.random.Generator, base: float, amp: float, n: int) -> np.ndarray:
    """A smooth periodic skyline height (fraction of the height) over ``x`` in frame widths."""
    k = rng.integers(1, 6, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    a = rng.uniform(0.3, 1.0, n) / np.arange(1, n + 1)
    y = sum(a[i] * np.sin(2 * np.pi * k[i] * x + ph[i]) for i in range(n))
    out: np.ndarray = (base - amp * y / a.sum()).astype(np.float32)
    return out


@dataclass(frozen=True)
class _Layer:
    """A horizontally scrolling RGBA band, padded by one frame width so every window is a plain slice."""

    rgb: np.ndarray  # (rows, period + w, 3)
    alpha: np.ndarray  # (rows, period + w, 1)
    top: int  # first frame row the band covers
    period: int
    opaque: bool

    def draw(self, img: np.ndarray, offset: float) -> None:
        w = img.shape[1]
        o = int(offset) % self.period
        band = img[self.top:self.top + self.rgb.shape[0]]
        rgb, alpha = self.rgb[:, o:o + w], self.alpha[:, o:o + w]
        if self.opaque:
            np.copyto(band, rgb, where=alpha > 0.5)
        else:
            band += alpha * (rgb - band)


def _wrapped(canvas: np.ndarray, r0: float, r1: float, c0: float, c1: float) -> tuple[slice, np.ndarray, np.ndarray]:
    """Rows as a slice, columns as wrapped indices, and the unwrapped column positions, for a bbox."""
    h, tw = canvas.shape[:2]
    rows = slice(max(0, int(r0)), min(h, int(math.ceil(r1)) + 1))
    pos = np.arange(int(math.floor(c0)), int(math.ceil(c1)) + 1)
    return rows, pos % tw, pos.astype(np.float32)


def _strip(kind: str, sc: _Scene, rng: np.random.Generator, h: int, w: int) -> _Layer:
    """A scrolling strip of buildings, trees or clouds that wraps around after two frame widths."""
    tw = 2 * w
    rgb = np.zeros((h, tw, 3), np.float32)
    alpha = np.zeros((h, tw), np.float32)
    hor = sc.horizon * h
    if kind == "buildings":
        x = 0
        win = max(2, w // 64)
        while x < tw:
            bw = int(rng.integers(max(6, w // 14), max(8, w // 6)))
            top = int(hor - rng.uniform(0.12, 0.42) * h)
            x1 = min(tw, x + bw)
            shade = sc.far * float(rng.uniform(0.7, 1.1))
            rgb[top:, x:x1] = shade
            alpha[top:, x:x1] = 1.0
            win_rows = range(top + 2 * win, int(hor) - win, 3 * win)
            win_cols = range(x + win, x1 - win, 2 * win)
            lit = rng.random((len(win_rows), len(win_cols))) < (0.55 if sc.time == "night" else 0.25)
            for a, wy in enumerate(win_rows):
                for b, wx in enumerate(win_cols):
                    rgb[wy:wy + win, wx:wx + win] = sc.accent if lit[a, b] else shade * 0.6
            x = x1 + int(rng.integers(0, max(2, w // 40)))
    elif kind == "trees":
        trunk_color = np.asarray((0.30, 0.20, 0.12), np.float32)
        for _ in range(max(8, tw // max(4, w // 24))):
            cx = rng.uniform(0, tw)
            tree_h = rng.uniform(0.12, 0.30) * h
            base = hor + rng.uniform(-0.01, 0.05) * h
            half = tree_h * rng.uniform(0.22, 0.32)
            shade = sc.accent * float(rng.uniform(0.7, 1.2))
            rows, cols, pos = _wrapped(rgb, base - tree_h, base + 0.03 * h, cx - half - 1, cx + half + 1)
            yy = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
            dx = np.abs(pos[None, :] - cx)
            crown = (yy <= base) & (yy >= base - tree_h) & (dx <= half * (yy - (base - tree_h)) / tree_h)
            trunk = (yy > base) & (dx <= max(1.0, half * 0.15))
            sub_rgb, sub_a = rgb[rows][:, cols], alpha[rows][:, cols]
            sub_rgb[crown], sub_a[crown] = shade, 1.0
            sub_rgb[trunk], sub_a[trunk] = trunk_color * shade.sum(), 1.0
            rgb[rows, cols], alpha[rows, cols] = sub_rgb, sub_a
    elif kind == "clouds":
        for _ in range(int(rng.integers(3, 7))):
            cx, cy = rng.uniform(0, tw), rng.uniform(0.08, 0.35) * h
            for _ in range(int(rng.integers(3, 6))):
                px, py = cx + rng.uniform(-0.08, 0.08) * w, cy + rng.uniform(-0.02, 0.02) * h
                rx, ry = rng.uniform(0.05, 0.10) * w, rng.uniform(0.025, 0.05) * h
                rows, cols, pos = _wrapped(rgb, py - 2.2 * ry, py + 2.2 * ry, px - 2.2 * rx, px + 2.2 * rx)
                yy = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
                blob = np.exp(-(((pos[None, :] - px) / rx) ** 2 + ((yy - py) / ry) ** 2) * 2.0)
                alpha[rows, cols] = np.maximum(alpha[rows][:, cols], blob)
        rgb[:] = 0.35 + 0.65 * float(sc.sky_horizon.mean())
        alpha = np.clip(alpha * 1.3, 0, 0.85)
    used = np.flatnonzero(alpha.max(axis=1) > 0)
    r0, r1 = (int(used.min()), int(used.max()) + 1) if used.size else (0, 1)
    rgb = np.concatenate([rgb[r0:r1], rgb[r0:r1, :w]], axis=1)
    alpha = np.concatenate([alpha[r0:r1], alpha[r0:r1, :w]], axis=1)[..., None]
    return _Layer(rgb=rgb, alpha=alpha, top=r0, period=tw, opaque=kind != "clouds")


def _sprite(radius: float, reach: float, gain: float, crescent: bool) -> np.ndarray:
    """Alpha of a sun (disc + glow) or a crescent moon, centred in a (2R+1)^2 square."""
    r = int(math.ceil(reach))
    yy = np.arange(-r, r + 1, dtype=np.float32)[:, None]
    xx = np.arange(-r, r + 1, dtype=np.float32)[None, :]
    d = np.sqrt(xx**2 + yy**2)
    disc = np.clip(radius - d + 0.5, 0, 1)
    if crescent:
        d2 = np.sqrt((xx - 0.45 * radius) ** 2 + (yy + 0.2 * radius) ** 2)
        disc *= np.clip(d2 - radius * 0.9 + 0.5, 0, 1)
    glow = gain * np.clip(1 - (d / reach) ** 2, 0, 1) ** 3
    out: np.ndarray = np.maximum(glow, disc).astype(np.float32)
    return out


def _blit(img: np.ndarray, alpha: np.ndarray, color: np.ndarray, cx: float, cy: float) -> None:
    """Paint ``color`` with a centred ``alpha`` sprite at integer position (cx, cy), clipped to the frame."""
    h, w = img.shape[:2]
    r = alpha.shape[0] // 2
    x, y = int(round(cx)) - r, int(round(cy)) - r
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + alpha.shape[1]), min(h, y + alpha.shape[0])
    if x1 > x0 and y1 > y0:
        _over(img[y0:y1, x0:x1], alpha[y0 - y:y1 - y, x0 - x:x1 - x], color)


def _face_layout(spec: GenerationSpec, min_face_px: int) -> tuple[int, list[int], float]:
    """Pick rows and the face box side ``f`` (px) so every footprint fits; returns (f, row sizes, row h)."""
    n, w, h = len(spec.faces), spec.width, spec.height
    aspect = [(f.shape[1] / f.shape[0]) for f in spec.faces]  # face box assumed to scale with its crop
    best: tuple[float, list[int]] | None = None
    for rows in range(1, n + 1):
        per = math.ceil(n / rows)
        sizes = [min(per, n - r * per) for r in range(rows)]
        sizes = [s for s in sizes if s > 0]
        widest, start = 0.0, 0
        for s in sizes:
            widest = max(widest, sum(_FOOT[0] * a for a in aspect[start:start + s]) + 0.0)
            start += s
        gaps = (max(sizes) - 1) * _GAP_PX + 2 * _DRIFT_PX[0]
        f = min(_FACE_TARGET * h, (w - gaps) / widest / (1 + _BREATH), (h - 2 * _DRIFT_PX[1]) / (len(sizes) * _FOOT[1]))
        if best is None or f > best[0]:
            best = (f, sizes)
    assert best is not None
    f, sizes = best
    if f < min_face_px:
        raise GeneratorError(
            f"{n} face(s) do not fit a {w}x{h} frame at >= {min_face_px} px each (would be {f:.0f} px); "
            "use a larger frame or fewer likenesses"
        )
    return int(f), sizes, h / len(sizes)


def _prepare_faces(spec: GenerationSpec, margin: float, min_face_px: int) -> list[_Placement]:
    import cv2

    if not spec.faces:
        return []
    f, sizes, row_h = _face_layout(spec, min_face_px)
    rng = _rng(spec, 2)
    out: list[_Placement] = []
    idx = 0
    for r, count in enumerate(sizes):
        faces = spec.faces[idx:idx + count]
        widths = [_FOOT[0] * f * fc.shape[1] / fc.shape[0] for fc in faces]
        total = sum(widths) + (count - 1) * _GAP_PX
        x = (spec.width - total) / 2
        cy = row_h * (r + 0.5) + (0.02 * spec.height if len(sizes) == 1 else 0.0)
        for fc, fw in zip(faces, widths, strict=True):
            box_h = fc.shape[0] / (1 + 2 * margin)
            scale = f * (1 + _BREATH) / box_h
            size = (max(2, round(fc.shape[1] * scale)), max(2, round(fc.shape[0] * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            img = cv2.resize(np.ascontiguousarray(fc), size, interpolation=interp).astype(np.float32)
            fh, fw_px = img.shape[:2]
            bw, bh = fw_px / (1 + 2 * margin), fh / (1 + 2 * margin)
            yy = (np.arange(fh, dtype=np.float32)[:, None] + 0.5 - fh / 2) / bh
            xx = (np.arange(fw_px, dtype=np.float32)[None, :] + 0.5 - fw_px / 2) / bw
            # Elliptical "radius" scaled so 1.0 is the opaque edge; the ramp runs to the outer ellipse.
            rad_in = np.sqrt((xx / _INNER[0]) ** 2 + (yy / _INNER[1]) ** 2)
            rad_out = np.sqrt((xx / _OUTER[0]) ** 2 + (yy / _OUTER[1]) ** 2)
            t = np.clip((rad_in - 1.0) / np.maximum(rad_in / np.maximum(rad_out, 1e-6) - 1.0, 1e-6), 0, 1)
            mask = np.where(rad_in <= 1.0, 1.0, 0.5 + 0.5 * np.cos(np.pi * t))
            # Fade out towards the crop's own border too, for crops with little margin.
            edge = np.minimum(np.minimum(yy + fh / 2 / bh, fh / 2 / bh - yy),
                              np.minimum(xx + fw_px / 2 / bw, fw_px / 2 / bw - xx))
            mask = (mask * np.clip(edge / 0.08, 0, 1)).astype(np.float32)
            out.append(_Placement(
                rgba=np.dstack([img, mask]),
                cx=x + fw / 2,
                cy=cy,
                phase=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)),  # type: ignore[arg-type]
                periods=tuple(float(p) for p in rng.uniform(2.5, 4.5, 3)),  # type: ignore[arg-type]
            ))
            x += fw + _GAP_PX
        idx += count
    return out


def _composite(img: np.ndarray, p: _Placement, t: float) -> None:
    """Warp one face (scale + translation, never rotation) into ``img`` and blend with its mask."""
    import cv2

    h, w = img.shape[:2]
    s = (1 - _BREATH + _BREATH * math.sin(2 * math.pi * t / p.periods[2] + p.phase[2])) / (1 + _BREATH)
    cx = p.cx + _DRIFT_PX[0] * math.sin(2 * math.pi * t / p.periods[0] + p.phase[0])
    cy = p.cy + _DRIFT_PX[1] * math.sin(2 * math.pi * t / p.periods[1] + p.phase[1])
    fh, fw = p.rgba.shape[:2]
    half_w, half_h = fw * s / 2, fh * s / 2
    x0, y0 = max(0, int(math.floor(cx - half_w))), max(0, int(math.floor(cy - half_h)))
    x1, y1 = min(w, int(math.ceil(cx + half_w)) + 1), min(h, int(math.ceil(cy + half_h)) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    # dst = s * (src + 0.5) - 0.5 + (c - s*f/2) - roi origin  (pixel-centre convention)
    tx = cx - half_w + 0.5 * s - 0.5 - x0
    ty = cy - half_h + 0.5 * s - 0.5 - y0
    m = np.array([[s, 0.0, tx], [0.0, s, ty]], np.float64)
    size = (x1 - x0, y1 - y0)
    # One warp for colour and mask together; outside the crop everything is transparent.
    face = cv2.warpAffine(p.rgba, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi = img[y0:y1, x0:x1]
    roi += face[..., 3:] * (face[..., :3] - roi)


def _mountains(x: np.ndarray, rng: np.random.Generator, horizon: float) -> np.ndarray:
    """Jagged triangular peaks (fraction of the height) over ``x`` in [0, 1), wrapping around."""
    height = np.full(x.shape, 0.03, np.float32)
    for _ in range(int(rng.integers(5, 9))):
        c, half, top = rng.uniform(0, 1), rng.uniform(0.06, 0.16), rng.uniform(0.10, 0.30)
        dx = np.abs((x - c + 0.5) % 1.0 - 0.5)
        height = np.maximum(height, top * (1 - dx / half))
    height += 0.006 * np.sin(2 * np.pi * 37 * x) + 0.004 * np.sin(2 * np.pi * 71 * x + 1.0)
    return (horizon - height).astype(np.float32)


def _band(profile: np.ndarray, h: int, stop: int | None = None) -> tuple[int, int]:
    """Rows a silhouette's anti-aliased edge can touch: [top, stop)."""
    top = max(0, min(h, int(math.floor(float(profile.min()))) - 1))
    return top, h if stop is None else max(top, min(h, stop))


def _fill_below(img: np.ndarray, profile: np.ndarray, color: np.ndarray, yy: np.ndarray,
                stop: int | None = None) -> None:
    """Paint ``color`` below the per-column ``profile`` (pixels), with a one-pixel soft edge."""
    h = img.shape[0]
    top, end = _band(profile, h, stop)
    solid = max(top, min(end, int(math.ceil(float(profile.max()))) + 1))
    if solid > top:
        alpha = np.clip(yy[top:solid] - profile[None, :] + 0.5, 0, 1)
        _over(img[top:solid], alpha, color)
    if end > solid:
        img[solid:end] = color


def _render_frames(spec: GenerationSpec, sc: _Scene, placements: list[_Placement]) -> np.ndarray:
    import cv2

    h, w, n = spec.height, spec.width, spec.frame_count
    rng = _rng(spec, 1)
    f32 = np.float32
    yy = np.arange(h, dtype=f32)[:, None]
    xx = np.arange(w, dtype=f32)[None, :]
    xs = np.arange(w, dtype=f32) / w
    hor = sc.horizon * h
    tint = np.asarray(_TINT[sc.time], f32)

    g = np.clip(yy / max(hor, 1.0), 0, 1)[..., None]
    sky = ((sc.sky_top * (1 - g) + sc.sky_horizon * g) * np.ones((1, w, 1), f32)).astype(f32)
    falloff = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vignette = (255.0 * (1.0 - 0.11 * falloff)).astype(f32)[..., None]

    # Celestial body: sun by day and at sunset (sinking), a crescent moon at night.
    body_r = float(rng.uniform(0.06, 0.09)) * min(w, h)
    body_x0 = float(rng.uniform(0.2, 0.8)) * w
    body_y0 = ((0.45 if sc.time == "sunset" else 0.18) + float(rng.uniform(0, 0.1))) * hor
    body_dx, body_dy = float(rng.uniform(-0.03, 0.03)) * w, (0.06 if sc.time == "sunset" else 0.01) * h
    body = {"day": (1.0, 0.97, 0.80), "sunset": (1.0, 0.72, 0.35), "night": (0.92, 0.92, 0.86)}[sc.time]
    body_color = np.asarray(body, f32)
    has_body = sc.weather == "none" or sc.time == "night"
    body_sprite = _sprite(body_r, 4.0 * body_r, 0.18 if sc.time == "night" else 0.4, sc.time == "night")

    star_n = int(0.002 * w * h) if sc.time == "night" else 0
    star_x = rng.integers(0, w, star_n)
    star_y = rng.integers(0, max(1, int(hor * 0.9)), star_n)
    star_phase = rng.uniform(0, 2 * np.pi, star_n).astype(f32)
    star_rate = rng.uniform(1.0, 4.0, star_n).astype(f32)

    tw = 2 * w
    x_strip = np.arange(tw, dtype=f32) / tw
    clouds = _strip("clouds", sc, rng, h, w) if sc.time != "night" and sc.weather == "none" else None
    if sc.setting == "snow":
        far_profile = _mountains(x_strip, rng, sc.horizon) * h
    else:
        far_profile = _ridge(x_strip, rng, sc.horizon - 0.06, 0.07, 4) * h
    near_profile = _ridge(x_strip, rng, sc.horizon + 0.16, 0.05, 3) * h
    far_color = sc.far * (0.8 if sc.setting == "ocean" else 1.0)
    cap_color = np.asarray((0.96, 0.97, 1.0), f32) * tint
    strip, strip_speed = None, 1.0
    if sc.setting == "city":
        strip = _strip("buildings", sc, rng, h, w)
    elif sc.setting == "forest":
        strip, strip_speed = _strip("trees", sc, rng, h, w), 1.6

    road_top = hor + 0.15 * (h - hor)
    shore = hor + 0.25 * (h - hor)
    lane_y = (road_top + h) / 2
    lane_color = np.asarray((0.95, 0.9, 0.6), f32) * tint
    near_mean = float(near_profile.mean())
    shade = (1.0 - 0.25 * np.clip((yy - near_mean) / (h - near_mean + 1), 0, 1))[..., None]
    near_rows = (sc.near * shade).astype(f32)  # (H, 1, 3)

    p_n = {"snow": int(0.004 * w * h), "rain": int(0.003 * w * h)}.get(sc.weather, 0)
    if sc.setting == "forest" and sc.time == "night":
        p_n = max(p_n, int(0.0008 * w * h))
    p_x = rng.uniform(0, w, p_n).astype(f32)
    p_y = rng.uniform(0, h, p_n).astype(f32)
    p_v = rng.uniform(0.6, 1.4, p_n).astype(f32)
    p_ph = rng.uniform(0, 2 * np.pi, p_n).astype(f32)
    firefly = np.asarray((0.9, 1.0, 0.4), f32)

    frames = np.empty((n, h, w, 3), np.uint8)
    img = np.empty((h, w, 3), f32)
    for i in range(n):
        t = i / spec.fps
        scroll = sc.speed * t * w
        img[:] = sky
        if star_n:
            img[star_y, star_x] = (0.55 + 0.45 * np.sin(star_rate * t + star_phase))[:, None]
        if has_body:
            _blit(img, body_sprite, body_color, body_x0 + body_dx * t, body_y0 + body_dy * t)
        if clouds is not None:
            clouds.draw(img, scroll * 0.5)
        # Far ridge (mountains / hills / dunes / the far shore), scrolling slowly.
        ridge = far_profile[(np.arange(w) + int(scroll * 0.4)) % tw]
        near = near_profile[(np.arange(w) + int(scroll * 1.3)) % tw]
        ground_stop = int(math.ceil(float(near.max()))) + 2
        _fill_below(img, ridge, far_color, yy, stop=ground_stop)
        if sc.setting == "snow":  # caps on the taller peaks
            top, _ = _band(ridge, h)
            end = min(h, int(hor) + 1)
            if end > top:
                depth = yy[top:end] - ridge[None, :]
                cap = np.clip(depth + 0.5, 0, 1) * np.clip(0.3 * (hor - ridge[None, :]) - 0.02 * h - depth, 0, 1)
                _over(img[top:end], cap, cap_color)
        if strip is not None:
            strip.draw(img, scroll * strip_speed)
        if sc.setting == "ocean":
            top, end = int(hor), min(h, int(shore + 0.05 * h) + 2)
            ys = yy[top:end]
            depth = np.clip((ys - hor) / (h - hor), 0, 1)
            ripple = np.sin(xx * (0.15 + 0.6 * depth) * (256 / w)
                            + (ys - hor) * (0.9 * 256 / h) * (1 + depth) - 3.0 * t)
            water = np.clip(ys - hor + 0.5, 0, 1)
            band = img[top:end]
            band += water[..., None] * (sc.far * (0.75 + 0.25 * depth)[..., None] - band)
            band *= (1.0 + 0.15 * water * ripple)[..., None]
            if has_body:
                reflect = np.exp(-(((xx - (body_x0 + body_dx * t)) / (body_r * (1 + 2 * depth))) ** 2))
                _over(band, 0.6 * water * reflect * (0.5 + 0.5 * ripple), body_color)
            near = shore + 0.4 * (near - near.mean()) + 2.0 * np.sin(2 * np.pi * (xs * 3 + 0.3 * t))
        elif sc.setting == "city":
            near = np.full(w, road_top, f32)
        # Near ground: hills, sand, snow field, dunes, the street.
        top, _ = _band(near, h)
        solid = min(h, int(math.ceil(float(near.max()))) + 1)
        alpha = np.clip(yy[top:solid] - near[None, :] + 0.5, 0, 1)
        band = img[top:solid]
        band += alpha[..., None] * (near_rows[top:solid] - band)
        img[solid:] = near_rows[solid:]
        if sc.setting == "ocean":  # foam along the waterline
            foam = np.clip(1.0 - np.abs(yy[top:solid + 3] - near[None, :] + 1.5) / 2.0, 0, 1)
            _over(img[top:solid + 3], 0.8 * foam, sc.accent)
        elif sc.setting == "city":  # lane markings rolling by
            half = max(1.0, h / 128)
            r0, r1 = int(lane_y - half), int(lane_y + half) + 1
            dash = (((xx + scroll * 3) % (w / 6)) < (w / 12)).astype(f32)
            lane = (np.abs(yy[r0:r1] - lane_y) < half) * dash
            _over(img[r0:r1], 0.8 * lane, lane_color)
        # Particles in front of the landscape, behind the faces.
        if p_n:
            if sc.weather == "snow":
                iy = ((p_y + t * h * 0.12 * p_v) % h).astype(np.intp)
                ix = ((p_x + 0.02 * w * np.sin(t * 1.5 + p_ph)) % w).astype(np.intp)
                img[iy, ix] = 0.95
                img[iy, (ix + 1) % w] = 0.85
                img[(iy + 1) % h, ix] = 0.85
            elif sc.weather == "rain":
                py = (p_y + t * h * 1.2 * p_v) % h
                ix = ((p_x - py * 0.15) % w).astype(np.intp)
                for k in range(max(2, h // 64)):
                    iy = ((py + k) % h).astype(np.intp)
                    img[iy, ix] = img[iy, ix] * 0.6 + 0.32
            else:  # fireflies
                glow = 0.5 + 0.5 * np.sin(t * 2.0 + p_ph)
                iy = ((p_y + 0.03 * h * np.sin(t * 0.7 + p_ph)) % h).astype(np.intp)
                ix = ((p_x + 0.03 * w * np.cos(t * 0.5 + p_ph)) % w).astype(np.intp)
                img[iy, ix] = firefly * glow[:, None]
        img *= vignette
        for p in placements:
            _composite(img, p, t)
        cv2.convertScaleAbs(img, dst=frames[i])  # rounds and saturates to uint8 in one pass
    return frames


def _soundtrack(spec: GenerationSpec, sc: _Scene, n_frames: int) -> np.ndarray:
    """A soft chord pad plus a plucked arpeggio, mono float32 in [-0.5, 0.5]."""
    rng = _rng(spec, 3)
    n = max(1, round(n_frames / spec.fps * SAMPLE_RATE))
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    chord = (0, 3, 7, 10) if sc.time == "night" else (0, 5, 7, 12) if sc.time == "sunset" else (0, 4, 7, 11)
    freqs = [440.0 * 2 ** ((sc.root_midi + c - 69) / 12) for c in chord]
    pad = np.zeros(n)
    for f in freqs:
        lfo = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
        pad += lfo * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    pad /= len(freqs)
    beat = 60.0 / float(rng.uniform(70, 110)) / 2
    idx = np.floor(t / beat).astype(np.int64)
    tb = t - idx * beat
    order = rng.permutation(len(freqs))
    note = np.asarray(freqs)[order][idx % len(freqs)] * 2
    pluck = np.sin(2 * np.pi * note * tb) * (1 - np.exp(-tb / 0.004)) * np.exp(-tb * 5.0)
    audio = 0.6 * pad + 0.4 * pluck
    fade_in, fade_out = min(0.2, t[-1] / 4 + 1e-9), min(0.3, t[-1] / 4 + 1e-9)
    env = np.clip(t / fade_in, 0, 1) * np.clip((t[-1] - t) / fade_out, 0, 1)
    audio *= env
    peak = float(np.max(np.abs(audio))) or 1.0
    out: np.ndarray = (audio * (0.45 / peak)).astype(np.float32)[None, :]
    return out


class ProceduralGenerator:
    """Procedural scene renderer (``VideoGenerator``); no learned model, no training data.

    ``face_margin`` is the margin around the face box in each face crop, as a fraction of the box side
    on every side (0.5: the crop is twice the box); ``min_face_px`` is the smallest face box the layout
    accepts before refusing the request.
    """

    info = GeneratorInfo(
        name="consentgate-procedural",
        version="0.1",
        learned_weights=False,
        description="Procedural scene renderer; no learned model, no training data",
        digital_source_type=ALGORITHMIC_MEDIA,
    )

    def __init__(self, *, face_margin: float = 0.5, min_face_px: int = 80) -> None:
        if not (0.0 <= face_margin <= 2.0):
            raise GeneratorError(f"face_margin must be within 0..2, got {face_margin}")
        if not (16 <= min_face_px <= 512):
            raise GeneratorError(f"min_face_px must be within 16..512, got {min_face_px}")
        self.face_margin = float(face_margin)
        self.min_face_px = int(min_face_px)

    def __repr__(self) -> str:
        return f"ProceduralGenerator(face_margin={self.face_margin}, min_face_px={self.min_face_px})"

    def generate(self, spec: GenerationSpec) -> Clip:
        """Render ``spec`` to a clip; raises :class:`GeneratorError` when the faces cannot be laid out."""
        if not isinstance(spec, GenerationSpec):
            raise GeneratorError(f"expected a GenerationSpec, got {type(spec).__name__}")
        sc = _scene(spec)
        placements = _prepare_faces(spec, self.face_margin, self.min_face_px)
        frames = _render_frames(spec, sc, placements)
        audio = _soundtrack(spec, sc, frames.shape[0])
        return Clip(frames=frames, fps=spec.fps, audio=audio, sample_rate=SAMPLE_RATE)
