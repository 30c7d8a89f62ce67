"""Bars around a reposted picture, and where a padded picture would sit.

Social apps repost a clip inside a frame of another shape: the picture, scaled, in the middle, and a
bar on each side of it, black or filled with a blurred, enlarged copy of the picture (a 9:16 portrait
frame around a square clip, a 16:9 frame around a portrait one). The fingerprint
(:mod:`provenance.fingerprint`) describes the picture inside the bars as one of a query's views; this
module says where it is. (The watermark needs no box: its search is blind to where the picture starts.)

:class:`BorderStats` finds *flat* bars (black, or any flat colour). Statistics per frame, summed over
frames: the frame's luma, area-reduced to at most :data:`_SMALL` (256) px on its long side; for
every row the mean absolute difference between horizontally adjacent pixels (its *detail*) and
between it and the next row (the *step*); the same for columns, transposed. Rule, per axis, for bars
of ``k`` rows on both sides (the picture centred, as reposting apps place it; ``k`` from 5 % to
37.5 % of the side, so the picture keeps at least a quarter of it): every row of both bars has
detail under 0.15 of the 90th percentile of all rows' detail; the step into the picture on both
sides (the *seam*) is at least 3x the bars' median step plus 0.1x that percentile; the picture has
at least 4x the bars' mean detail. The sizes that pass compete by their weaker seam.

Measured (the input: the fingerprint's thumbnails that keep the frame's shape, 64 px on the short
side; 24 procedural scenes of 2 s at 256x256, every time of day and setting, and the Hamilton
footage at 256p; each released at H.264 crf 18, changed, then re-encoded at crf 28): black bars
after a 2.8x upscale padded to 9:16 and after a 3x upscale padded to 16:9 were found in 49 of 49
cases, exactly where they were; no box was found on any of 125 copies without bars (as released,
cropped 10 %, mirrored, 2x and 0.5x). Blurred bars (2.8x to 9:16, 1.5x to 16:9) were found in 5 of
50 cases (and once at the wrong size): at this resolution their blurred copy of the picture has as
much detail as a smooth scene. :func:`aspect_boxes` covers them: the boxes where a picture of a
usual aspect ratio would sit, centred, whatever fills the bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SMALL = 256  # long side (px) of the reduced luma the statistics are taken on
_MIN_BAR, _MAX_BAR = 0.05, 0.375  # bar size per side, as a fraction of the frame's side
_FLAT_DETAIL = 0.15  # a flat bar row's detail, at most, relative to the 90th percentile of the rows
_FLAT_SEAM, _FLAT_SEAM_REF = 3.0, 0.1  # flat-bar seam: >= 3x the bars' median step + 0.1x that percentile
_FLAT_CONTRAST = 4.0  # the picture's mean detail over the flat bars', at least
ASPECTS = (1.0, 16 / 9, 9 / 16, 4 / 3, 3 / 4, 4 / 5)
"""Width / height of the pictures :func:`aspect_boxes` assumes (square, 16:9, 9:16, 4:3, 3:4, 4:5)."""


@dataclass(frozen=True)
class Box:
    """The picture inside the bars: rows ``[top, bottom)`` and columns ``[left, right)`` of a frame of
    ``height`` x ``width`` pixels (of the frames :class:`BorderStats` was given)."""

    top: int
    bottom: int
    left: int
    right: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if not (0 <= self.top < self.bottom <= self.height and 0 <= self.left < self.right <= self.width):
            raise ValueError(f"not a box inside a {self.width}x{self.height} frame: {self}")

    def fractions(self) -> tuple[float, float, float, float]:
        """(y0, y1, x0, x1) as fractions of the frame's height and width."""
        return (self.top / self.height, self.bottom / self.height, self.left / self.width, self.right / self.width)


class BorderStats:
    """Row and column statistics of a video's frames, summed as they come; :meth:`box` reads the bars."""

    def __init__(self) -> None:
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._small: tuple[int, int] = (0, 0)
        self._detail = [np.zeros(0), np.zeros(0)]  # rows, columns
        self._step = [np.zeros(0), np.zeros(0)]  # mean step to the next row (column)

    def add(self, luma: np.ndarray) -> None:
        """Add one frame's (H, W) luma (any resolution; over :data:`_SMALL` px it is area-reduced first);
        every frame must have the first one's size."""
        self.add_many(luma[None])

    def add_many(self, lumas: np.ndarray) -> None:
        """Add frames given as one (K, H, W) array of luma, as :meth:`add` each in turn (the same sums, to the
        bit: the per-frame means are taken alike and summed in frame order), in a few array operations instead
        of a dozen a frame (issue 12: a verification's reader adds every frame)."""
        k, h, w = lumas.shape
        if k == 0:  # no frame: nothing to add, and no size to fix (add of each frame in turn does nothing)
            return
        if self._size is None:
            s = min(1.0, _SMALL / max(h, w))
            self._size, self._small = (h, w), (max(1, round(h * s)), max(1, round(w * s)))
            self._detail = [np.zeros(self._small[0]), np.zeros(self._small[1])]
            self._step = [np.zeros(self._small[0] - 1), np.zeros(self._small[1] - 1)]
        elif self._size != (h, w):
            raise ValueError(f"frames of one video must have one size, got {self._size} then {(h, w)}")
        sh, sw = self._small
        small: np.ndarray = lumas.astype(np.float32)
        if (sh, sw) != (h, w):
            small = np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in small])
        # the per-frame float32 means, then added to the float64 sums one frame after another (a reduction over
        # the frames' axis, which is not the contiguous one, goes in order), as the frame-by-frame sums did
        if sw > 1:
            dx = np.abs(np.diff(small, axis=2))
            self._detail[0] = _summed(self._detail[0], dx.mean(axis=2))
            self._step[1] = _summed(self._step[1], dx.mean(axis=1))
        if sh > 1:
            dy = np.abs(np.diff(small, axis=1))
            self._detail[1] = _summed(self._detail[1], dy.mean(axis=1))
            self._step[0] = _summed(self._step[0], dy.mean(axis=2))
        self.frames += k

    def box(self) -> Box | None:
        """The picture inside flat bars on two opposite sides (or on all four), or ``None`` when there are none."""
        if self._size is None or min(self._small) < 16:
            return None
        h, w = self._size
        cut = []
        for axis in (0, 1):
            k = _bar_size(self._detail[axis] / self.frames, self._step[axis] / self.frames)
            cut.append(0 if k is None else round(k * self._size[axis] / self._small[axis]))
        if cut == [0, 0]:
            return None
        return Box(cut[0], h - cut[0], cut[1], w - cut[1], h, w)


def _summed(total: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``total`` (float64) plus each row of ``rows`` in turn: numpy reduces a C-ordered array's first axis row after
    row, so the sum is the loop's, bit for bit."""
    out: np.ndarray = np.concatenate([total[None], rows]).sum(axis=0)
    return out


def _bar_size(detail: np.ndarray, step: np.ndarray) -> int | None:
    """The size (in reduced pixels) of equal flat bars at both ends of one axis, or ``None``.

    ``detail`` per row; ``step`` between each row and the next (mean over the row).
    """
    n = len(detail)
    ref = float(np.percentile(detail, 90))
    if ref <= 0:
        return None  # a blank frame
    low = detail < _FLAT_DETAIL * ref
    best: tuple[float, int] | None = None
    for k in range(max(3, round(_MIN_BAR * n)), int(_MAX_BAR * n) + 1):
        if not (low[: k - 1].all() and low[n - k + 1 :].all()):
            break  # bars any wider would hold a row with detail
        bar_detail = float(np.mean(np.concatenate([detail[: k - 1], detail[n - k + 1 :]])))
        bar_step = float(np.median(np.concatenate([step[: k - 2], step[n - k + 1 :]]))) if k > 2 else 0.0
        seam = _seam(step, k)
        if (seam >= _FLAT_SEAM * bar_step + _FLAT_SEAM_REF * ref
                and float(np.mean(detail[k : n - k])) >= _FLAT_CONTRAST * bar_detail
                and (best is None or seam > best[0])):
            best = (seam, k)
    return None if best is None else best[1]


def _seam(step: np.ndarray, k: int) -> float:
    """The weaker of the two seams of bars ``k`` reduced pixels wide; a seam may straddle a reduced pixel,
    so the step just before or at the picture's first row counts."""
    n = len(step) + 1
    return float(min(max(step[k - 2], step[k - 1]), max(step[n - k - 1], step[n - k])))


def aspect_boxes(height: int, width: int, *, tolerance: float = 0.05) -> list[Box]:
    """Centred boxes where a picture of each aspect ratio in :data:`ASPECTS` would sit if it had been
    scaled to fill the frame's width or height and padded (the frame's own aspect ratio, within
    ``tolerance``, gives none)."""
    out: list[Box] = []
    frame = width / height
    for aspect in ASPECTS:
        if frame > aspect * (1 + tolerance):  # wider than the picture: bars left and right
            inner = round(height * aspect)
            left = (width - inner) // 2
            box = Box(0, height, left, left + inner, height, width)
        elif frame < aspect / (1 + tolerance):  # taller: bars above and below
            inner = round(width / aspect)
            top = (height - inner) // 2
            box = Box(top, top + inner, 0, width, height, width)
        else:
            continue
        if box not in out:
            out.append(box)
    return out
