"""Perceptual video fingerprints: find the released record of a clip whose watermark and manifest are gone.

The C2PA "soft binding" idea: at release the gate stores a compact fingerprint of the video next to its
record; a copy that was re-encoded, cropped, rescaled, brightened or re-timed still lands close to it,
while different videos land far apart. The fingerprint is computed from the pixels only, so it needs
no key and no metadata.

Design (numpy + OpenCV, no model weights):

* **Time.** ``SAMPLES`` (16) frames at fixed fractions of the clip's length, so a frame-rate change or
  a different GOP structure picks the same moments. (Trimmed sub-clips are out of scope: they are
  the watermark's job, which reads any 1-2 s.)
* **Space.** Every frame is reduced to a 64 x 64 thumbnail. Per sampled frame: luma of the central
  70 %, area-resized to 32 x 32, lightly blurred, area-resized to 16 x 16 and band-passed (minus its
  own blur, which removes the sky-above-ground gradient every outdoor scene shares); made zero-mean
  and unit-norm, so brightness and contrast changes cancel; plus the mean chroma of a 2 x 2 grid,
  lightly weighted. 264 int8 numbers per frame.
* **Crops.** A query also carries 125 "views": the descriptors of the windows where the original's
  central 70 % would lie if the query had been cropped by 5-25 % (centred and off-centre, on a
  5 x 5 grid of offsets). Matching takes the best view. Only the stored view is kept in a database
  (:meth:`Fingerprint.to_bytes`, 4,232 bytes).
* **Reposts.** A query also describes the picture as a reposting app may have padded it into another
  frame: the stored and centred crop windows placed in the picture inside flat bars found in the
  frames (:mod:`provenance._borders`) and in the centred boxes of the usual aspect ratios (1:1, 16:9,
  9:16, 4:3, 3:4, 4:5; these also cover blurred bars), read from a thumbnail that keeps the frame's
  shape; and every view mirrored, a fixed permutation of the descriptor. A square frame's query has
  311 views, a tall or wide one's up to 323 (``python -m bench watermark``, docs/watermark.md: the
  reposts of the field report are found 40/40 among 1,000 released clips).
* **Distance.** ``1 -`` the mean over the sampled frames of the cosine similarity between the two
  clips' frame descriptors (0: identical; ~1: unrelated). :data:`MATCH_THRESHOLD` (0.06) was calibrated
  with ``python -m bench watermark`` (docs/watermark.md): re-encoded, resized, brightened, re-timed
  and 10 %-cropped copies stay under 0.05; distinct scenes lie above it, but the procedural
  generator makes near-identical scenes now and then (the same empty ocean at two seeds), and those
  "twins" cannot be told apart by any perceptual fingerprint.
* **Search.** :class:`FingerprintIndex` keeps the vectors in one float32 matrix; a query is one
  matrix product over its views (exact search; ~10 ms per 1,000 records here). Thread-safe.

Example::

    >>> import numpy as np
    >>> from media.video import Clip
    >>> from provenance.fingerprint import FingerprintIndex, fingerprint_clip
    >>> rng = np.random.default_rng(0)
    >>> clips = [Clip(frames=rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8), fps=24.0) for _ in range(3)]
    >>> index = FingerprintIndex()
    >>> for i, c in enumerate(clips):
    ...     index.add(f"clip-{i}", fingerprint_clip(c))
    >>> [m.key for m in index.match(fingerprint_clip(clips[1]))]
    ['clip-1']
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO

import numpy as np

from media.video import Clip, MediaError, Planes, iter_frames, video_source
from provenance._borders import BorderStats, aspect_boxes
from provenance.errors import FingerprintError

__all__ = [
    "AMBIGUITY",
    "MATCH_THRESHOLD",
    "MAX_THUMBNAILS",
    "SAMPLES",
    "Fingerprint",
    "FingerprintBuilder",
    "FingerprintError",
    "FingerprintIndex",
    "FingerprintMatch",
    "fingerprint_clip",
    "fingerprint_frames",
    "fingerprint_video",
]

SAMPLES = 16
MAX_THUMBNAILS = 512
"""A :class:`FingerprintBuilder` keeps at most this many frame thumbnails (64 x 64 x 3 bytes each, and for
a query of a frame that is not square one more of the frame's shape, at most 64 x 256 x 3 bytes)."""
MATCH_THRESHOLD = 0.06
"""Distances under this are matches (calibrated: see the module docstring and docs/watermark.md)."""
AMBIGUITY = 0.02
""":meth:`FingerprintIndex.match` also drops candidates farther than this beyond the nearest one."""

_GRID = 16
_CHROMA_GRID = 2
_CHROMA_WEIGHT = 0.35  # share of a frame descriptor's norm given to colour
_MARGIN = 0.15  # per side, left out of the stored view
_THUMB = 64  # every frame is first reduced to a 64 x 64 thumbnail
_BORDER_BATCH = 32  # frames whose border statistics are taken together (their lumas, views of up to 32 shaped
# thumbnails of at most 64 x 256 x 3 bytes, are held until then)
_THUMB_LONG = 4  # a query also keeps one of the frame's shape, 64 px on the short side and at most 4x that
_WORK = 32
_BLUR = 0.8  # Gaussian sigma on the 32 x 32 working image
_BANDPASS = 2.0  # the 12 x 12 grid minus its blur at this sigma (removes the common sky/ground gradient)
_CROPS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25)  # total crop per axis a query view assumes
_DIMS = _GRID * _GRID + 2 * _CHROMA_GRID * _CHROMA_GRID
_SAME_BOX = 0.01  # boxes whose edges all lie within 1 % of the frame of each other count as one
_MAGIC = b"CGFP"
_VERSION = 1
_HEADER = struct.Struct(">4sBBH")  # magic, version, samples, dims per sample


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """A clip's fingerprint: ``SAMPLES`` frame descriptors of ``_DIMS`` int8 values each.

    ``data`` is the stored view (the central 70 % of every sampled frame). A fingerprint computed
    from a clip also carries ``views``: the same descriptors for windows that assume the clip was
    cropped (by up to 25 %, centred or not) or padded into another frame, and all of them mirrored;
    matching takes the best view, which is what makes a cropped, padded or mirrored copy match its
    original. Only ``data`` is stored (:meth:`to_bytes`).
    """

    data: np.ndarray  # (SAMPLES, _DIMS) int8
    views: np.ndarray | None = field(default=None, compare=False)  # (V, SAMPLES, _DIMS) int8

    def __post_init__(self) -> None:
        d = self.data
        if not isinstance(d, np.ndarray) or d.dtype != np.int8 or d.shape != (SAMPLES, _DIMS):
            raise FingerprintError(
                f"a fingerprint is a ({SAMPLES}, {_DIMS}) int8 array, got {getattr(d, 'shape', type(d))}"
            )
        frozen = d.copy()
        frozen.flags.writeable = False
        object.__setattr__(self, "data", frozen)
        v = self.views
        if v is not None:
            if not isinstance(v, np.ndarray) or v.dtype != np.int8 or v.ndim != 3 or v.shape[1:] != d.shape:
                raise FingerprintError(f"views must be a (V, {SAMPLES}, {_DIMS}) int8 array")
            v = v.copy()
            v.flags.writeable = False
            object.__setattr__(self, "views", v)

    def to_bytes(self) -> bytes:
        """The stored view only, with a small header (``len`` = 6 + SAMPLES * dims bytes)."""
        return _HEADER.pack(_MAGIC, _VERSION, SAMPLES, _DIMS) + self.data.tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Fingerprint:
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise FingerprintError(f"a stored fingerprint is bytes, got {type(blob).__name__}")
        blob = bytes(blob)
        want = _HEADER.size + SAMPLES * _DIMS
        if len(blob) != want:
            raise FingerprintError(f"a stored fingerprint is {want} bytes, got {len(blob)}")
        magic, version, samples, dims = _HEADER.unpack_from(blob)
        if magic != _MAGIC or version != _VERSION or samples != SAMPLES or dims != _DIMS:
            raise FingerprintError(
                f"not a version-{_VERSION} ConsentGate fingerprint (magic {magic!r}, version {version})"
            )
        data = np.frombuffer(blob, np.int8, offset=_HEADER.size).reshape(SAMPLES, _DIMS)
        return cls(data)

    def vector(self) -> np.ndarray:
        """The stored view as a unit-norm float32 vector: the dot product of two is ``1 - distance``."""
        v: np.ndarray = _vectors(self.data[None])[0]
        return v

    def query_vectors(self) -> np.ndarray:
        """(V, D) unit vectors: the stored view first, then every other view (crops, padded, mirrored)."""
        return _vectors(self.data[None] if self.views is None else np.concatenate([self.data[None], self.views]))

    def distance(self, other: Fingerprint) -> float:
        """Distance of this clip (as a query: best view) to ``other`` (as stored); 0 identical, ~1 unrelated."""
        if not isinstance(other, Fingerprint):
            raise FingerprintError(f"expected a Fingerprint, got {type(other).__name__}")
        return float(1.0 - np.max(self.query_vectors() @ other.vector()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and bool(np.array_equal(self.data, other.data))

    def __hash__(self) -> int:
        return hash(self.data.tobytes())


@dataclass(frozen=True)
class FingerprintMatch:
    key: str
    distance: float


def fingerprint_clip(clip: Clip, *, query_views: bool = True) -> Fingerprint:
    """Fingerprint a decoded clip (``query_views=False``: only what is stored, ~30x faster)."""
    if not isinstance(clip, Clip):
        raise FingerprintError(f"expected a media.video.Clip, got {type(clip).__name__}")
    return fingerprint_frames(clip.frames, query_views=query_views)


def fingerprint_frames(frames: np.ndarray | Iterable[np.ndarray], *, query_views: bool = True) -> Fingerprint:
    """Fingerprint (T, H, W, 3) uint8 RGB frames, or any iterable of (H, W, 3) frames (streamed).

    ``query_views`` adds the crop views a lookup uses; a fingerprint only stored can skip them.
    """
    if isinstance(frames, np.ndarray) and (frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3):
        raise FingerprintError(f"frames must be a (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
    builder = FingerprintBuilder(query_views=query_views)
    for f in frames:
        builder.add(f)
    return builder.fingerprint()


class FingerprintBuilder:
    """A fingerprint fed one decoded frame at a time, for a reader that also does other work with the
    frames (verification reads the watermark from the same decode).

    Memory is bounded whatever the clip's length (which a streamed upload does not state): it keeps a
    64 x 64 thumbnail of every ``stride``-th frame, at most :data:`MAX_THUMBNAILS` (6 MB; a query of a
    tall or wide frame also keeps one of the frame's shape, at most 25 MB more), and when that is full
    drops every other one and doubles the stride. Each sampled moment then takes the kept
    frame nearest to it: exact up to :data:`MAX_THUMBNAILS` frames (every clip the gate makes), within
    ``stride / 2`` frames beyond (half a second for 5 minutes at 30 fps).
    """

    def __init__(self, *, query_views: bool = True) -> None:
        self.query_views = query_views
        self._thumbs: list[tuple[np.ndarray, np.ndarray]] = []  # per kept frame: square, and of the frame's shape
        self._stride = 1
        self._seen = 0
        self._borders: BorderStats | None = BorderStats() if query_views else None
        self._lumas: list[np.ndarray] = []  # shaped thumbnails' luma not yet added to the border statistics
        self._size: tuple[int, int] | None = None

    @property
    def frames(self) -> int:
        """Frames added so far."""
        return self._seen

    def add(self, frame: np.ndarray) -> None:
        """Add one (H, W, 3) uint8 RGB frame."""
        self._add(frame.shape[:2] if isinstance(frame, np.ndarray) else (0, 0),
                  lambda: _thumbnails(frame, shaped=self.query_views))

    def add_planes(self, planes: Planes) -> None:
        """Add one decoded frame as :class:`media.video.Planes` (a decoder's planes: no full-size RGB frame is
        made; the thumbnails are the planes area-averaged, within a level or two of :meth:`add`'s)."""
        h, w = planes.shape
        if h < 8 or w < 8:
            raise FingerprintError(f"frames must be at least 8x8 pixels, got {w}x{h}")
        self._add((h, w), lambda: _thumbnails_by(planes.ycrcb, h, w, shaped=self.query_views))

    def _add(self, shape: tuple[int, int], thumbnails: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        index = self._seen
        self._seen += 1
        if index % self._stride:
            return
        thumbs = thumbnails()
        frame_shape = shape
        self._thumbs.append(thumbs)
        if len(self._thumbs) > MAX_THUMBNAILS:
            self._thumbs = self._thumbs[::2]
            self._stride *= 2
        if self._borders is not None:
            if self._size is None:
                self._size = frame_shape
            if frame_shape != self._size:
                self._borders, self._lumas = None, []  # frames of changing size: no bars to find
            else:
                self._lumas.append(thumbs[1][..., 0])  # the luma of the thumbnail that keeps the frame's shape
                if len(self._lumas) >= _BORDER_BATCH:
                    self._add_borders()

    def _add_borders(self) -> None:
        """Hand the lumas waiting for the border statistics over, in one batch."""
        if self._borders is not None and self._lumas:
            self._borders.add_many(np.stack(self._lumas))
        self._lumas = []

    def fingerprint(self) -> Fingerprint:
        """The fingerprint of the frames added so far (at least one)."""
        thumbs = self._thumbs
        if not thumbs:
            raise FingerprintError("no frames to fingerprint")
        n = self._seen
        moments = [min(n - 1, int((i + 0.5) * n / SAMPLES)) for i in range(SAMPLES)]
        picked = [thumbs[min(len(thumbs) - 1, int(round(m / self._stride)))] for m in moments]
        windows = _windows() if self.query_views else _windows()[:1]
        squares = _planes(np.stack([square for square, _ in picked]))
        described = [_describe_windows(squares, windows)]
        self._add_borders()
        if self.query_views and self._borders is not None:  # a picture padded into the frame
            boxes = _box_windows(self._borders, self._size)
            if boxes:
                same = all(s is square for square, s in picked)  # a square frame's shaped thumbnail is its square
                described.append(_describe_windows(squares if same else _planes(np.stack([s for _, s in picked])),
                                                   boxes))
        q = _quantize(np.concatenate(described))
        if not self.query_views:
            return Fingerprint(q[0])
        return Fingerprint(q[0], views=np.concatenate([q[1:], q[..., _mirror_order()]]))


def fingerprint_video(
    source: str | os.PathLike[str] | bytes | BinaryIO, *, query_views: bool = True
) -> Fingerprint:
    """Fingerprint a video file (path, bytes or binary stream) via :mod:`media.video`.

    Raises :class:`FingerprintError` for a still image, an empty or unreadable file, or a video
    without a decodable frame.
    """
    try:
        src = video_source(source)
    except MediaError as e:
        raise FingerprintError(str(e)) from e
    try:
        return fingerprint_frames((f for _, f in iter_frames(src)), query_views=query_views)
    except MediaError as e:
        raise FingerprintError(f"not a readable video: {e}") from e


class FingerprintIndex:
    """In-memory exact search over released clips' fingerprints (thread-safe)."""

    def __init__(self, *, threshold: float = MATCH_THRESHOLD) -> None:
        if not 0 < threshold < 2:
            raise FingerprintError(f"threshold must be in (0, 2), got {threshold}")
        self.threshold = float(threshold)
        self._lock = threading.Lock()
        self._keys: list[str] = []
        self._row: dict[str, int] = {}
        self._matrix = np.zeros((0, SAMPLES * _DIMS), np.float32)
        self._size = 0

    def add(self, key: str, fp: Fingerprint) -> None:
        """Add (or replace) the fingerprint stored under ``key``."""
        if not isinstance(key, str) or not key:
            raise FingerprintError("a fingerprint key must be a non-empty string")
        if not isinstance(fp, Fingerprint):
            raise FingerprintError(f"expected a Fingerprint, got {type(fp).__name__}")
        v = fp.vector()
        with self._lock:
            row = self._row.get(key)
            if row is None:
                if self._size == len(self._matrix):
                    grown = np.zeros((max(64, 2 * self._size), v.size), np.float32)
                    grown[: self._size] = self._matrix[: self._size]
                    self._matrix = grown
                row = self._size
                self._size += 1
                self._keys.append(key)
                self._row[key] = row
            self._matrix[row] = v

    def remove(self, key: str) -> None:
        """Forget ``key``; raises ``KeyError`` when it is not there."""
        with self._lock:
            row = self._row.pop(key)
            last = self._size - 1
            if row != last:
                moved = self._keys[last]
                self._matrix[row] = self._matrix[last]
                self._keys[row] = moved
                self._row[moved] = row
            self._keys.pop()
            self._size = last

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._row

    def _distances(self, fp: Fingerprint) -> tuple[np.ndarray, list[str]]:
        """Distance from ``fp`` (best query view) to every stored row, and the rows' keys."""
        if not isinstance(fp, Fingerprint):
            raise FingerprintError(f"expected a Fingerprint, got {type(fp).__name__}")
        if not len(self):  # nothing released yet: no query vectors to make (~1.5 ms for a 311-view query)
            return np.zeros(0, np.float32), []
        q = fp.query_vectors()
        with self._lock:
            d = 1.0 - np.max(self._matrix[: self._size] @ q.T, axis=1, initial=-1.0)
            return d, list(self._keys)

    def distances(self, fp: Fingerprint) -> list[FingerprintMatch]:
        """Every stored key with its distance to ``fp``, nearest first (for calibration and tools)."""
        d, keys = self._distances(fp)
        order = np.argsort(d, kind="stable")
        return [FingerprintMatch(keys[i], float(d[i])) for i in order]

    def match(self, fp: Fingerprint, *, max_results: int = 5) -> list[FingerprintMatch]:
        """The nearest stored clips under the calibrated threshold, nearest first (empty: no match).

        Only candidates within :data:`AMBIGUITY` of the nearest one are kept: a clearly closer record
        wins; near-identical released clips (the same scene twice) are all returned.
        """
        if max_results < 1:
            raise FingerprintError(f"max_results must be at least 1, got {max_results}")
        d, keys = self._distances(fp)
        hits = np.flatnonzero(d < self.threshold)
        hits = hits[np.argsort(d[hits], kind="stable")]
        if len(hits):
            hits = hits[d[hits] <= d[hits[0]] + AMBIGUITY][:max_results]
        return [FingerprintMatch(keys[i], float(d[i])) for i in hits]


def _thumbnails(frame: np.ndarray, *, shaped: bool) -> tuple[np.ndarray, np.ndarray]:
    """The frame reduced to 64 x 64 and, when ``shaped`` and the frame is not square, to a 64 px short
    side keeping its shape (so that a picture padded into a tall or wide frame keeps its detail), both
    YCrCb uint8 (the values the descriptors read; a quarter of float32's memory)."""
    import cv2

    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise FingerprintError(f"a frame must be an (H, W, 3) uint8 array, got {getattr(frame, 'shape', frame)}")
    h, w = frame.shape[:2]
    if h < 8 or w < 8:
        raise FingerprintError(f"frames must be at least 8x8 pixels, got {w}x{h}")
    frame = np.ascontiguousarray(frame)

    def ycrcb(width: int, height: int) -> np.ndarray:
        small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        out: np.ndarray = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)
        return out

    return _thumbnails_by(ycrcb, h, w, shaped=shaped)


def _thumbnails_by(ycrcb: Callable[[int, int], np.ndarray], h: int, w: int, *, shaped: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_thumbnails` of an (h, w) frame given as ``ycrcb(width, height)``: the frame area-averaged to that
    size, as YCrCb uint8."""
    square = ycrcb(_THUMB, _THUMB)
    long = min(round(_THUMB * max(h, w) / min(h, w)), _THUMB_LONG * _THUMB)
    if not shaped or long == _THUMB:
        return square, square
    size = (long, _THUMB) if w > h else (_THUMB, long)
    return square, ycrcb(*size)


@lru_cache(maxsize=1)
def _windows() -> list[tuple[float, float, float, float]]:
    """(y0, y1, x0, x1) fractions of a query frame where the original's stored view would lie.

    The first is the stored view itself; the others assume the query kept a fraction ``1 - f`` of
    the original per axis, starting ``c`` into it (centred and off-centre crops).
    """
    out = [(_MARGIN, 1 - _MARGIN, _MARGIN, 1 - _MARGIN)]
    for f in _CROPS[1:]:
        starts = sorted({round(float(c), 4) for c in np.linspace(max(0.0, f - _MARGIN), min(_MARGIN, f), 5)})
        for cy in starts:
            for cx in starts:
                out.append(((_MARGIN - cy) / (1 - f), (1 - _MARGIN - cy) / (1 - f),
                            (_MARGIN - cx) / (1 - f), (1 - _MARGIN - cx) / (1 - f)))
    return out


def _box_windows(borders: BorderStats, size: tuple[int, int] | None) -> list[tuple[float, float, float, float]]:
    """Windows for a picture padded into a frame of ``size`` (height, width): the stored view and the
    centred crop views, placed in the picture inside the bars that were found, and in the centred boxes
    of the usual aspect ratios."""
    if size is None:
        return []
    found = borders.box()
    boxes = ([found] if found is not None else []) + aspect_boxes(*size)
    out: list[tuple[float, float, float, float]] = []
    picked: list[tuple[float, float, float, float]] = []
    for box in boxes:
        by0, by1, bx0, bx1 = box.fractions()
        if any(max(abs(a - b) for a, b in zip(box.fractions(), p, strict=True)) < _SAME_BOX for p in picked):
            continue  # as good as a box already there
        picked.append(box.fractions())
        for y0, y1, x0, x1 in _centred_windows():
            out.append((by0 + y0 * (by1 - by0), by0 + y1 * (by1 - by0), bx0 + x0 * (bx1 - bx0), bx0 + x1 * (bx1 - bx0)))
    return out


@lru_cache(maxsize=1)
def _centred_windows() -> list[tuple[float, float, float, float]]:
    """The stored view and the centred crop views (the middle of each crop's 5 x 5 offsets)."""
    out = [(_MARGIN, 1 - _MARGIN, _MARGIN, 1 - _MARGIN)]
    for f in _CROPS[1:]:
        c = f / 2
        out.append(((_MARGIN - c) / (1 - f), (1 - _MARGIN - c) / (1 - f), (_MARGIN - c) / (1 - f),
                    (1 - _MARGIN - c) / (1 - f)))
    return out


@lru_cache(maxsize=1)
def _mirror_order() -> np.ndarray:
    """The permutation of a frame descriptor's values that describes the frame mirrored left to right:
    the luma grid's columns and the chroma grid's columns reversed (every other step is symmetric, and
    the crop windows come in mirrored pairs, so the mirrored views are a permutation of the views)."""
    grid = np.arange(_GRID * _GRID).reshape(_GRID, _GRID)[:, ::-1].ravel()
    chroma = (np.arange(_CHROMA_GRID * _CHROMA_GRID * 2).reshape(_CHROMA_GRID, _CHROMA_GRID, 2)[:, ::-1]
              .ravel() + _GRID * _GRID)
    order = np.concatenate([grid, chroma])
    order.flags.writeable = False
    return order


def _describe(thumb: np.ndarray, window: tuple[float, float, float, float]) -> np.ndarray:
    """One frame's descriptor in one window: band-passed 12 x 12 luma layout plus a little colour. The reference
    definition, step by step with OpenCV; fingerprints compute it in batches (:func:`_describe_windows`), and the
    tests hold the two equal (tests/provenance/test_fingerprint_batch.py)."""
    import cv2

    th, tw = thumb.shape[:2]
    y0, y1 = (min(max(v, 0.0), 1.0) * th for v in window[:2])
    x0, x1 = (min(max(v, 0.0), 1.0) * tw for v in window[2:])
    sub = thumb[round(y0) : max(round(y1), round(y0) + 1), round(x0) : max(round(x1), round(x0) + 1)]
    work = cv2.resize(sub.astype(np.float32), (_WORK, _WORK), interpolation=cv2.INTER_AREA)
    luma = cv2.GaussianBlur(work[..., 0], (0, 0), _BLUR)
    grid = cv2.resize(luma, (_GRID, _GRID), interpolation=cv2.INTER_AREA)
    grid = (grid - cv2.GaussianBlur(grid, (0, 0), _BANDPASS)).ravel()
    grid = grid - float(np.mean(grid))
    norm = float(np.linalg.norm(grid))
    grid = grid / norm if norm > 1e-3 else np.zeros_like(grid)
    chroma = cv2.resize(work[..., 1:] - 128.0, (_CHROMA_GRID, _CHROMA_GRID), interpolation=cv2.INTER_AREA)
    chroma = np.clip(chroma.ravel() / 64.0, -1, 1)  # a saturated colour is ~+-64 from neutral
    desc = np.concatenate([np.sqrt(1 - _CHROMA_WEIGHT**2) * grid, _CHROMA_WEIGHT * chroma])
    n = float(np.linalg.norm(desc))
    out: np.ndarray = desc / n if n > 1e-6 else desc
    return out


def _describe_many(thumbs: np.ndarray, window: tuple[float, float, float, float]) -> np.ndarray:
    """:func:`_describe` of each of ``thumbs`` ((N, H, W, 3) uint8 YCrCb, one shape) in ``window``: (N, _DIMS)
    float32. Every step of :func:`_describe` (area resizes, Gaussian blurs, the band-pass) is linear and
    separable, so the luma grid is ``A_y @ crop @ A_x.T`` and the colour cells ``C_y @ crop @ C_x.T``, with the
    matrices taken from OpenCV's own operators (:func:`_window_ops`): batched products for all N frames instead
    of 5 OpenCV calls a frame (issue 12). The descriptors equal :func:`_describe`'s to float32 rounding
    (tests/provenance/test_fingerprint_batch.py)."""
    described: np.ndarray = _describe_windows(_planes(thumbs), [window])[0]
    return described


def _planes(thumbs: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 YCrCb thumbnails as (3, N, H, W) float32 planes, chroma centred on 0: what
    :func:`_describe_windows` reads, made once for all the windows of a fingerprint."""
    planes = np.ascontiguousarray(np.moveaxis(thumbs, -1, 0), dtype=np.float32)
    planes[1:] -= np.float32(128.0)
    return planes


def _describe_windows(planes: np.ndarray, windows: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
    """:func:`_describe_many` of thumbnails given as :func:`_planes` ((3, N, H, W) float32), in each of
    ``windows``: (len(windows), N, _DIMS) float32.

    The windows of one crop size share their matrices (:func:`_window_ops` depends on the crop's size, not on
    where it lies), and the crops of one size come from a few row and column offsets (rounded to pixels, the 5 x 5
    windows of each crop of :func:`_windows` fall into 1-4 sizes, each from at most 5 row and 5 column offsets): the
    row operator is applied once per distinct row offset, across the whole width, and the column operator once per
    distinct column offset to all of those rows at once; the band-pass, centring and norms then run over every
    window together. A square frame's 126 windows take 164 row and column products (15 crop sizes) instead of 756
    one window at a time, and the band-pass one pair of products instead of one pair per window (issue 12, fifth
    pass: 11 -> ~2 ms for the bench clip's query; docs/performance.md 4e). The values are :func:`_describe`'s to
    float32 rounding (tests/provenance/test_fingerprint_batch.py)."""
    n, th, tw = planes.shape[1:]
    count = len(windows)
    grids = np.empty((count, n, _GRID, _GRID), np.float32)
    chroma = np.empty((2, count, n, _CHROMA_GRID, _CHROMA_GRID), np.float32)  # (Cr, Cb) first: moved last at the end
    groups: dict[tuple[int, int], list[tuple[int, slice, slice]]] = {}  # crop size -> (window, rows, columns)
    for i, window in enumerate(windows):
        ys, xs = _window_ops(th, tw, tuple(float(v) for v in window))[:2]
        groups.setdefault((ys.stop - ys.start, xs.stop - xs.start), []).append((i, ys, xs))
    for (sh, _), members in groups.items():
        _, _, a_y, a_x, c_y, c_x = _window_ops(th, tw, tuple(float(v) for v in windows[members[0][0]]))
        rows = sorted({ys.start for _, ys, _ in members})
        at = {start: k for k, start in enumerate(rows)}
        # (N, 16 * rows, W) and (2, N, 2 * rows, W): each distinct row crop through its operator, full width
        luma = np.concatenate([a_y @ planes[0, :, r:r + sh] for r in rows], axis=1)
        colour = np.concatenate([c_y @ planes[1:, :, r:r + sh] for r in rows], axis=2)
        by_column: dict[int, list[tuple[int, slice, slice]]] = {}
        for member in members:
            by_column.setdefault(member[2].start, []).append(member)
        for same in by_column.values():
            xs = same[0][2]
            g = luma[:, :, xs] @ a_x.T  # (N, 16 * rows, 16)
            c = colour[:, :, :, xs] @ c_x.T  # (2, N, 2 * rows, 2)
            for i, ys, _ in same:
                k = at[ys.start]
                grids[i] = g[:, _GRID * k:_GRID * (k + 1)]
                chroma[:, i] = c[:, :, _CHROMA_GRID * k:_CHROMA_GRID * (k + 1)]
    # the band-pass of every grid, as products of 16 x 16 matrices (one large product would wake OpenBLAS's threads,
    # which spin on the core the decoder needs: 30 % more CPU for the whole verification, docs/performance.md 4e)
    g16, g16t = _bandpass()
    grids -= (g16 @ grids) @ g16t
    flat = grids.reshape(count * n, _GRID * _GRID)
    flat -= flat.mean(axis=1, keepdims=True)
    out = np.empty((count * n, _DIMS), np.float32)
    layout, colours = out[:, :_GRID * _GRID], out[:, _GRID * _GRID:]
    norm = _norms(flat)  # a flat layout (norm ~0) stays all zeros
    scale = np.divide(np.float32(np.sqrt(1 - _CHROMA_WEIGHT**2)), norm, out=np.zeros_like(norm), where=norm > 1e-3)
    np.multiply(flat, scale, out=layout)
    colours[:] = np.moveaxis(chroma, 0, -1).reshape(count * n, 2 * _CHROMA_GRID * _CHROMA_GRID)
    colours /= np.float32(64.0)
    np.clip(colours, -1, 1, out=colours)
    colours *= np.float32(_CHROMA_WEIGHT)
    norm = _norms(out)
    out *= np.divide(np.float32(1), norm, out=np.ones_like(norm), where=norm > 1e-6)
    described: np.ndarray = out.reshape(count, n, _DIMS)
    return described


def _norms(rows: np.ndarray) -> np.ndarray:
    """(M, 1) float32: the Euclidean norm of each row of an (M, D) float32 array."""
    sq = np.einsum("ij,ij->i", rows, rows)
    out: np.ndarray = np.sqrt(sq, out=sq)[:, None]
    return out


def _quantize(views: np.ndarray) -> np.ndarray:
    """Unit-norm float descriptors as the stored int8 values: ``rint(x * 127)`` clipped to +-127."""
    q: np.ndarray = np.clip(np.rint(views * np.float32(127)), -127, 127).astype(np.int8)
    return q


@lru_cache(maxsize=1024)
def _window_ops(th: int, tw: int, window: tuple[float, float, float, float]
                ) -> tuple[slice, slice, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The crop of an (th, tw) thumbnail ``window`` selects (as :func:`_describe` rounds it) and the matrices of
    :func:`_describe_many`: ``A`` (16 x side) = area resize to 16 of the Gaussian blur of the area resize to 32,
    ``C`` (2 x side) = area resize to 2 of the area resize to 32, per axis (the band-pass: :func:`_bandpass`)."""
    y0, y1 = (min(max(v, 0.0), 1.0) * th for v in window[:2])
    x0, x1 = (min(max(v, 0.0), 1.0) * tw for v in window[2:])
    ys = slice(round(y0), max(round(y1), round(y0) + 1))
    xs = slice(round(x0), max(round(x1), round(x0) + 1))
    sh, sw = ys.stop - ys.start, xs.stop - xs.start
    r16, g32 = _resize_matrix(_WORK, _GRID), _blur_matrix(_WORK, _BLUR)
    r2 = _resize_matrix(_WORK, _CHROMA_GRID)
    ops = []
    for to_work in _resize_axes(sh, sw, _WORK):
        ops += [r16 @ g32 @ to_work, r2 @ to_work]
    a_y, c_y, a_x, c_x = (m.astype(np.float32) for m in ops)
    for m in (a_y, c_y, a_x, c_x):
        m.flags.writeable = False
    return ys, xs, a_y, a_x, c_y, c_x


@lru_cache(maxsize=1)
def _bandpass() -> tuple[np.ndarray, np.ndarray]:
    """The 16 x 16 grid's band-pass blur ``G`` and ``G.T`` (float32, read-only): a grid ``X`` is band-passed as
    ``X - G @ X @ G.T``."""
    g = _blur_matrix(_GRID, _BANDPASS).astype(np.float32)
    gt = np.ascontiguousarray(g.T)
    for m in (g, gt):
        m.flags.writeable = False
    return g, gt


@lru_cache(maxsize=256)
def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) float64: OpenCV's INTER_AREA resize of a length-``src`` axis to ``dst`` (area weights are
    separable: resizing the rows of an identity image gives the axis's matrix)."""
    import cv2

    if src == dst:
        return np.eye(src)
    eye = np.eye(src, dtype=np.float64)
    m: np.ndarray = cv2.resize(eye, (src, dst), interpolation=cv2.INTER_AREA)
    return m


@lru_cache(maxsize=256)
def _resize_axes(sh: int, sw: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(side, sh) and (side, sw) float64: OpenCV's INTER_AREA resize of an (sh, sw) image to (side, side) as
    its row and column operators. OpenCV picks its method from both axes at once: when one axis is enlarged and
    the other reduced it interpolates both, the reduced one too, so there a matrix taken from one axis alone
    (:func:`_resize_matrix`, area weights) would differ (by up to 0.35 a weight; e.g. the 9:16 box of a 16:9
    frame's 64 x 113 thumbnail) and the matrices are taken from resizes of this very shape instead (an image
    constant along one axis stays so)."""
    import cv2

    if not min(sh, sw) < side < max(sh, sw):
        return _resize_matrix(sh, side), _resize_matrix(sw, side)

    def axis(n: int, other: int, rows: bool) -> np.ndarray:
        cols = []
        for i in range(n):
            e = np.zeros(n)
            e[i] = 1.0
            img = np.repeat(e[:, None], other, axis=1) if rows else np.repeat(e[None, :], other, axis=0)
            r = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            cols.append(r[:, 0] if rows else r[0, :])
        return np.stack(cols, axis=1)

    return axis(sh, sw, True), axis(sw, sh, False)


@lru_cache(maxsize=16)
def _blur_matrix(side: int, sigma: float) -> np.ndarray:
    """(side, side) float64: OpenCV's Gaussian blur of sigma ``sigma`` (kernel and reflect-101 border as
    ``cv2.GaussianBlur`` on float images) along one axis of length ``side``: the blur of each column of an image
    that is constant along its rows."""
    import cv2

    eye = np.eye(side, dtype=np.float64)
    # e_i repeated over 8 columns: the horizontal pass of a constant row leaves it as it is
    cols = [cv2.GaussianBlur(np.repeat(eye[:, i:i + 1], 8, axis=1), (0, 0), sigma)[:, 4] for i in range(side)]
    return np.stack(cols, axis=1)


def _vectors(data: np.ndarray) -> np.ndarray:
    """(V, SAMPLES, DIMS) int8 -> (V, SAMPLES * DIMS) float32, each frame unit-norm, each row unit-norm."""
    v = data.astype(np.float32)
    norms = np.linalg.norm(v, axis=2, keepdims=True)
    v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    out: np.ndarray = v.reshape(len(v), -1) / np.float32(np.sqrt(SAMPLES))
    return out
