"""Video scanning: find every enrolled likeness that appears in a video.

Frames are sampled so that a face on screen for ``min_visible_s`` is looked at at least three times.
On each sampled frame faces are only *detected* (cheap); detections are linked into tracks by
overlap, and a track is *embedded* (the expensive step) when it starts, a few more times while it
lasts, and whenever its face crop stops looking like the one last embedded (a cut, a swap, a turn).
Each track's embeddings are averaged and compared with every likeness in the index; averaging looks
cancels most per-frame noise (pose, blur, compression), which is what lets one strict threshold hold.
When a track starts or ends between two samples, the frames in between are searched around it, so
reported frame ranges are exact to the frame. A *thorough* scan (``thorough_every_s``) also runs the
backend's slower turned-head detector on keyframes and follows what only it finds by its face patch::

    >>> from media.video import load_image
    >>> from detectors.enroll import enroll
    >>> from detectors.index import LikenessIndex
    >>> from detectors.scan import scan_path
    >>> index = LikenessIndex()
    >>> index.add("lin", enroll([load_image("../shared/testdata/faces/lin-manuel-miranda.png")]))
    >>> result = scan_path("../shared/testdata/faces/short_hamilton_clip.mp4", index)
    >>> sorted(result.likeness_ids())
    ['lin']
    >>> result.to_dict()["matches"][0]["likeness"]
    'lin'

``MATCH_THRESHOLD`` and the measurements behind it are in ``docs/face-matching.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from detectors.errors import DetectorError, ScanError
from detectors.faces import Box, Detection, FaceBackend, TrackingBackend, default_backend
from detectors.index import LikenessIndex
from detectors.matching import MATCH_THRESHOLD, TrackMatch, TrackReport, decide_tracks, threshold_for
from detectors.pose import DLIB_POSE_THRESHOLDS, PoseThresholds, probe_bin
from media.errors import LimitExceeded
from media.video import prefetch

__all__ = [
    "DEFAULT_DETECT_PIXELS",
    "MATCH_THRESHOLD",
    "MAX_FACES_PER_FRAME",
    "MAX_FRAME_PIXELS",
    "MAX_SCAN_SECONDS",
    "THOROUGH_EVERY_S",
    "pose_thresholds_for",
    "ScanResult",
    "TrackMatch",
    "TrackReport",
    "sample_stride",
    "scan_frames",
    "scan_path",
    "scan_video",
    "threshold_for",
]

#: A frame with more faces than this is refused (``too_many_faces``): a crowd is not scanned partially.
MAX_FACES_PER_FRAME: Final = 24
#: A frame larger than this (4096 x 2304, DCI 4K) is refused (``too_large``).
MAX_FRAME_PIXELS: Final = 4096 * 2304
#: A video longer than this is refused (``too_long``).
MAX_SCAN_SECONDS: Final = 600.0
#: Detection works on frames resized to at most this many pixels, which bounds the cost per frame and
#: sets the smallest face found (``ScanResult.smallest_face_px``): 40 px at 256p, ~65 px at 512p.
DEFAULT_DETECT_PIXELS: Final = 400_000

_IMAGE_DETECT_PIXELS: Final = 2_000_000  # a still image is detected at up to this many pixels
_LOOKS: Final = 3  # samples of a face visible for min_visible_s
_EARLY_LOOKS: Final = 3  # a new track is embedded up to this many times, ~2 samples apart ...
_EMBED_EVERY_S: Final = 3.0  # ... then once every this many seconds ...
_MAX_LOOKS: Final = 5  # ... up to this many looks (appearance changes and cuts are always embedded)
_LINK_IOU: Final = 0.3  # a detection overlapping a live track's predicted box this much continues it
_LINK_SAME: Final = 0.55  # a look further than this from its track's mean starts a new track
_LINK_REID: Final = 0.4  # a new track this close to a recently seen track continues it (cuts, fast motion)
_MAX_GAP_S: Final = 1.0  # a track not seen for longer than this is closed
_APPEARANCE: Final = 0.25  # face patch correlation with the last embedded look below this: embed again
_THUMB: Final = 16
_CUT: Final = 24.0  # mean absolute change of a 32x18 gray thumbnail between samples that counts as a cut
#: Seconds between keyframes in a thorough scan (``thorough_every_s``; ``consentgate scan --thorough``):
#: on keyframes the backend's slower ``detect_thorough`` (dlib: a CNN that also finds heads turned to
#: three-quarter or profile view) runs besides its ``detect``. The first sample and the first after a
#: scene cut are keyframes too. Off by default: it costs ~0.6 s per keyframe (docs/face-matching.md).
THOROUGH_EVERY_S: Final = 4.0
_KEYFRAME_GAP_S: Final = 1.0  # a cut this soon after a keyframe waits for the gap to pass (busy footage)
_TURNED_MIN_PX: Final = 80  # the smallest face the keyframe detector looks for
_FOLLOW: Final = 24  # a face found only on a keyframe is followed in between by a patch this size ...
_FOLLOW_MIN: Final = 0.6  # ... whose normalised correlation with the face must stay above this


def pose_thresholds_for(backend: FaceBackend, threshold: float | None = None) -> PoseThresholds:
    """The per-pose thresholds (:mod:`detectors.pose`) measured for ``backend``: its ``pose_thresholds``
    attribute, else :data:`~detectors.pose.DLIB_POSE_THRESHOLDS` for dlib, else the same threshold for
    every pose with no uncertain band (nothing was measured). A ``threshold`` given (a deployment's
    ``match_threshold``) replaces the frontal match distance."""
    table = getattr(backend, "pose_thresholds", None)
    if not isinstance(table, PoseThresholds):
        table = DLIB_POSE_THRESHOLDS if backend.name == "dlib-resnet-v1" else PoseThresholds.uniform(
            threshold_for(backend))
    if threshold is not None and threshold != table.frontal.match:
        table = table.with_frontal_match(threshold)
    return table


@dataclass(frozen=True)
class ScanResult:
    """What a scan saw: frames looked at, faces detected, matched tracks, and tracks matching no one.

    ``tracks`` reports every track (matched or not); ``smallest_face_px`` is the smallest face the
    detector was expected to find at the resolution scanned (smaller faces may be missed); ``embeddings``
    counts the faces embedded; ``frame_count`` the frames decoded; ``fps`` the rate they were scanned at;
    ``keyframes`` the samples the backend's slower turned-head detector also looked at; ``uncertain``
    the tracks in the uncertain band of a likeness they did not match (between its match and protect
    distances, :mod:`detectors.pose`): they *may* show that person, and a gate must not release them
    silently; ``detector`` what found the faces (``dlib-hog``, ``blazeface-full-range``, ...)."""

    frames_scanned: int
    faces_seen: int
    matches: tuple[TrackMatch, ...]
    unmatched_tracks: int
    tracks: tuple[TrackReport, ...] = ()
    frame_count: int = 0
    fps: float = 0.0
    smallest_face_px: int = 0
    embeddings: int = 0
    threshold: float = MATCH_THRESHOLD
    backend: str = ""
    keyframes: int = 0
    uncertain: tuple[TrackMatch, ...] = ()
    detector: str = ""

    def likeness_ids(self) -> frozenset[str]:
        return frozenset(m.likeness_id for m in self.matches)

    def uncertain_ids(self) -> frozenset[str]:
        """The likenesses some track may show (in their uncertain band) without matching them."""
        return frozenset(m.likeness_id for m in self.uncertain)

    def attributed(self) -> tuple[TrackMatch, ...]:
        """Each matched track once, under its nearest likeness (smallest distance; a tie goes to the
        smaller likeness id), in the order of :attr:`matches`: whom each face is taken to be, and so what a
        record of the scan lists. :attr:`matches` still holds every likeness within the threshold, for a
        caller that must hold each near miss to its rule too (the gate blocks when any of them denies)."""
        best: dict[int, TrackMatch] = {}
        for m in self.matches:
            held = best.get(m.track_id)
            if held is None or (m.distance, m.likeness_id) < (held.distance, held.likeness_id):
                best[m.track_id] = m
        kept = set(map(id, best.values()))
        return tuple(m for m in self.matches if id(m) in kept)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (what ``consentgate scan --json`` prints)."""
        return {
            "backend": self.backend, "detector": self.detector, "threshold": self.threshold, "fps": round(self.fps, 3),
            "frame_count": self.frame_count, "frames_scanned": self.frames_scanned, "faces_seen": self.faces_seen,
            "embeddings": self.embeddings, "keyframes": self.keyframes, "smallest_face_px": self.smallest_face_px,
            "likenesses": sorted(self.likeness_ids()), "matches": [m.to_dict() for m in self.matches],
            "uncertain": [m.to_dict() for m in self.uncertain],
            "unmatched_tracks": self.unmatched_tracks, "tracks": [t.to_dict() for t in self.tracks],
        }


# -- backends that cannot detect without embedding ----------------------------------------------------------
class _EmbedEveryFace:
    """Presents a plain :class:`FaceBackend` as a tracking one: every detection is embedded at once."""

    def __init__(self, backend: FaceBackend) -> None:
        self.inner = backend
        self.name, self.dim = backend.name, backend.dim
        self._cache: dict[int, np.ndarray] = {}

    def smallest_face(self, height: int, width: int, *, min_face_px: int = 40, max_pixels: int | None = None) -> int:
        return 40 if min(height, width) < 500 else 80

    def detect(self, rgb: np.ndarray, *, min_face_px: int = 40, max_pixels: int | None = None) -> list[Detection]:
        faces = self.inner.faces(rgb, upsample=1 if min(rgb.shape[:2]) < 500 else 0)
        dets = [Detection(f.box, f.score, f.landmarks, f.pose, f.yaw, f.pitch) for f in faces]
        self._cache = {id(d): f.embedding for d, f in zip(dets, faces, strict=True)}
        return dets

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        return np.stack([self._cache[id(d)] for d in detections]).astype(np.float32)


def _tracking(backend: FaceBackend) -> TrackingBackend:
    if all(callable(getattr(backend, m, None)) for m in ("detect", "embed", "smallest_face")):
        return backend  # type: ignore[return-value]
    return _EmbedEveryFace(backend)  # type: ignore[return-value]


# -- tracking -------------------------------------------------------------------------------------------------
def _thumb(rgb: np.ndarray, box: Box) -> np.ndarray:
    """A small zero-mean, unit-norm gray patch of the face, to notice when a track's face changes."""
    import cv2

    crop = rgb[box.top:box.bottom, box.left:box.right]
    gray = cv2.cvtColor(cv2.resize(crop, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    v = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0).ravel()
    v -= v.mean()
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-6 else v


def _same_face(a: Box, b: Box) -> bool:
    """Whether two detectors' boxes (of different extents) frame the same face."""
    cx, cy = b.center
    return a.iou(b) >= _LINK_IOU or (a.left <= cx < a.right and a.top <= cy < a.bottom)


def _patch(rgb: np.ndarray, box: Box) -> np.ndarray:
    import cv2

    crop = rgb[box.top:box.bottom, box.left:box.right]
    small = cv2.resize(crop, (_FOLLOW, _FOLLOW), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _follow(rgb: np.ndarray, box: Box, patch: np.ndarray) -> Box | None:
    """Where the face of ``patch`` (last seen at ``box``) is in ``rgb``: the best normalised correlation
    within half a face of ``box``, or ``None`` when nothing there correlates above ``_FOLLOW_MIN``."""
    import cv2

    h, w = rgb.shape[:2]
    pad = max(box.width, box.height) // 2
    window = Box(top=box.top - pad, right=box.right + pad, bottom=box.bottom + pad, left=box.left - pad).clipped(w, h)
    if window is None:
        return None
    sx, sy = _FOLLOW / box.width, _FOLLOW / box.height
    size = (round(window.width * sx), round(window.height * sy))
    if size[0] < _FOLLOW or size[1] < _FOLLOW:
        return None
    crop = rgb[window.top:window.bottom, window.left:window.right]
    gray = cv2.cvtColor(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    _, best, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(gray.astype(np.float32), patch, cv2.TM_CCOEFF_NORMED))
    if not best >= _FOLLOW_MIN:
        return None
    left, top = window.left + round(x / sx), window.top + round(y / sy)
    return Box(top=top, right=left + box.width, bottom=top + box.height, left=left).clipped(w, h)


@dataclass(eq=False)
class _Track:
    track_id: int
    first_frame: int
    last_frame: int
    box: Box
    prev_box: Box | None = None
    prev_frame: int = 0
    frames_seen: int = 1
    looks: list[np.ndarray] = field(default_factory=list)
    look_bins: list[str] = field(default_factory=list)  # the head pose bin of each look (detectors.pose)
    last_embed_frame: int = -1
    embedded_px: int = 0
    max_face_px: int = 0
    thumb: np.ndarray | None = None  # of the last embedded look
    force_look: bool = False  # a cut happened since the last look
    tail: dict[int, np.ndarray] = field(default_factory=dict)  # frames after the last sighting, to refine its end
    keyframe_only: bool = False  # last detected by the keyframe detector alone: followed by its patch
    patch: np.ndarray | None = None  # gray face patch of its last keyframe detection

    @property
    def mean(self) -> np.ndarray:
        return np.mean(np.stack(self.looks), axis=0)

    def predicted(self, frame: int) -> Box:
        """Where the face should be at ``frame``, moving as it moved between its last two sightings."""
        if self.prev_box is None or self.last_frame == self.prev_frame:
            return self.box
        f = (frame - self.last_frame) / float(self.last_frame - self.prev_frame)
        dx = (self.box.left - self.prev_box.left + self.box.right - self.prev_box.right) / 2.0 * f
        dy = (self.box.top - self.prev_box.top + self.box.bottom - self.prev_box.bottom) / 2.0 * f
        return Box(top=round(self.box.top + dy), right=round(self.box.right + dx),
                   bottom=round(self.box.bottom + dy), left=round(self.box.left + dx))


@dataclass
class _Stats:
    frames_scanned: int = 0
    faces_seen: int = 0
    embeddings: int = 0
    frame_count: int = 0
    smallest_face_px: int = 0
    keyframes: int = 0


class _Scanner:
    def __init__(self, backend: TrackingBackend, fps: float, stride: int, min_face_px: int,
                 max_pixels: int | None, max_faces: int, normalize: bool, thorough_every: int = 0,
                 single_frame: bool = False) -> None:
        self.backend = backend
        # DlibBackend: embed(..., views=...); a one-frame scan (an image) gets both views in its one look
        self.alternate = bool(getattr(backend, "mirror", False)) and not single_frame
        thorough = getattr(backend, "detect_thorough", None)
        self.thorough: Callable[..., Sequence[Detection]] | None = thorough if thorough_every > 0 else None
        self.thorough_every = thorough_every
        self._last_keyframe: int | None = None
        self._cut_pending = False
        self.keyframe_gap = max(stride, round(_KEYFRAME_GAP_S * fps))
        self.fps = fps
        self.stride = stride
        self.min_face_px = min_face_px
        self.max_pixels = max_pixels
        self.max_faces = max_faces
        self.normalize = normalize
        self.max_gap = max(stride, round(_MAX_GAP_S * fps))
        self.embed_every = max(stride, round(_EMBED_EVERY_S * fps))
        self.live: list[_Track] = []
        self.done: list[_Track] = []
        self.stats = _Stats()
        self.recent: dict[int, np.ndarray] = {}  # frames since the previous sample, for refinement
        self._prev_sample = -1
        self._prev_small: np.ndarray | None = None
        self._next_id = 0

    # embedding -------------------------------------------------------------------------------------------
    def _embed(self, rgb: np.ndarray, dets: Sequence[Detection], looks: Sequence[int]) -> np.ndarray:
        """Embed ``dets``; ``looks[i]`` is how many looks the track of ``dets[i]`` already has (0: new).
        With a mirroring backend the looks at a track alternate between the plain and the mirrored chip,
        so the track's mean is mirror-averaged (exactly, for an even number of looks) at one encoder
        pass per look, as the calibration simulates it. A one-look track gets no mirror."""
        if not dets:
            return np.zeros((0, self.backend.dim), np.float32)
        if self.alternate:
            views = ["mirror" if n % 2 else "plain" for n in looks]
            emb = np.asarray(self.backend.embed(rgb, dets, views=views), np.float32)  # type: ignore[call-arg]
        else:
            emb = np.asarray(self.backend.embed(rgb, dets), np.float32)
        self.stats.embeddings += len(dets)
        if self.normalize:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    def _look(self, track: _Track, frame: int, emb: np.ndarray, det: Detection, thumb: np.ndarray) -> None:
        box = det.box
        track.force_look = False
        track.looks.append(emb)
        track.look_bins.append(probe_bin(det.yaw, det.pitch))
        track.last_embed_frame = frame
        track.embedded_px = max(track.embedded_px, box.size)
        track.thumb = thumb

    def _wants_look(self, track: _Track, frame: int, det: Detection, thumb: np.ndarray) -> bool:
        box = det.box
        if track.force_look or (track.thumb is not None and float(thumb @ track.thumb) < _APPEARANCE):
            return True  # after a cut, or a different-looking face in the same place: check who it is
        if track.looks and probe_bin(det.yaw, det.pitch) not in track.look_bins:
            return True  # a head pose not embedded yet: compared with that pose's views (detectors.pose)
        if len(track.looks) >= _MAX_LOOKS:
            return False
        since = frame - track.last_embed_frame
        if len(track.looks) < _EARLY_LOOKS:
            return since >= 2 * self.stride or since >= self.max_gap // 2
        return since >= self.embed_every or box.size >= 1.5 * track.embedded_px

    # detection -------------------------------------------------------------------------------------------
    def _detect(self, rgb: np.ndarray, frame: int, cut: bool) -> tuple[list[Detection], set[int]]:
        """The faces in ``rgb`` and the ids of those only the keyframe detector found."""
        dets = list(self.backend.detect(rgb, min_face_px=self.min_face_px, max_pixels=self.max_pixels))
        only_keyframe: set[int] = set()
        self._cut_pending = self._cut_pending or cut
        since = None if self._last_keyframe is None else frame - self._last_keyframe
        if self.thorough is not None and (since is None or since >= self.thorough_every
                                          or (self._cut_pending and since >= self.keyframe_gap)):
            self._last_keyframe, self._cut_pending = frame, False
            self.stats.keyframes += 1
            frontal = list(dets)
            for d in self.thorough(rgb, min_face_px=max(self.min_face_px, _TURNED_MIN_PX)):
                if not any(_same_face(o.box, d.box) for o in frontal):
                    dets.append(d)
                    only_keyframe.add(id(d))
        if len(dets) > self.max_faces:
            raise ScanError("too_many_faces", f"frame {frame} shows {len(dets)} faces; at most {self.max_faces} "
                            "are scanned per frame")
        return dets, only_keyframe

    def _detect_near(self, rgb: np.ndarray, box: Box) -> Box | None:
        """The face overlapping ``box`` in ``rgb``, searching only a window around it."""
        h, w = rgb.shape[:2]
        pad = max(box.width, box.height)
        window = Box(top=box.top - pad, right=box.right + pad, bottom=box.bottom + pad,
                     left=box.left - pad).clipped(w, h)
        if window is None:
            return None
        crop = rgb[window.top:window.bottom, window.left:window.right]
        dets = self.backend.detect(crop, min_face_px=max(20, int(box.size * 0.6)), max_pixels=self.max_pixels)
        best: Box | None = None
        best_iou = _LINK_IOU
        for d in dets:
            b = Box(top=d.box.top + window.top, right=d.box.right + window.left,
                    bottom=d.box.bottom + window.top, left=d.box.left + window.left)
            if b.iou(box) >= best_iou:
                best, best_iou = b, b.iou(box)
        return best

    def _near(self, rgb: np.ndarray, track: _Track, box: Box) -> Box | None:
        if track.keyframe_only and track.patch is not None:
            return _follow(rgb, box, track.patch)
        return self._detect_near(rgb, box)

    def _refine_start(self, track: _Track, box: Box) -> None:
        for f in sorted(self.recent, reverse=True):
            if f >= track.first_frame:
                continue
            found = self._near(self.recent[f], track, box)
            if found is None:
                return
            track.first_frame, box = f, found

    def _refine_end(self, track: _Track) -> None:
        box = track.box
        for f in sorted(track.tail):
            if f <= track.last_frame:
                continue
            found = self._near(track.tail[f], track, box)
            if found is None:
                break
            track.last_frame, box = f, found
        track.tail = {}

    # the loop --------------------------------------------------------------------------------------------
    def _new_track(self, frame: int, det: Detection) -> _Track:
        self._next_id += 1
        return _Track(self._next_id, frame, frame, det.box, max_face_px=det.box.size)

    def _close_stale(self, frame: int, final: bool = False) -> None:
        still = []
        for t in self.live:
            if t.last_frame == self._prev_sample and t.last_frame < frame:
                t.tail = dict(self.recent)  # first miss: keep the frames in between, in case it ends here
            if final or frame - t.last_frame > self.max_gap:
                self._refine_end(t)  # closed: find its exact last frame
                self.done.append(t)
            else:
                still.append(t)
        self.live = still

    def _scene_cut(self, rgb: np.ndarray) -> bool:
        import cv2

        small = cv2.cvtColor(cv2.resize(rgb, (32, 18), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        small = small.astype(np.float32)
        cut = self._prev_small is not None and float(np.abs(small - self._prev_small).mean()) > _CUT
        self._prev_small = small
        return cut

    def _sighting(self, track: _Track, frame: int, box: Box) -> None:
        track.prev_box, track.prev_frame = track.box, track.last_frame
        track.box, track.last_frame = box, frame
        track.frames_seen += 1
        track.tail = {}
        track.max_face_px = max(track.max_face_px, box.size)

    def _mark(self, track: _Track, rgb: np.ndarray, det: Detection, only_keyframe: set[int]) -> None:
        """Remember which detector saw ``track`` last: a face only the keyframe detector sees is followed
        by its patch until the next keyframe."""
        track.keyframe_only = id(det) in only_keyframe
        track.patch = _patch(rgb, det.box) if track.keyframe_only else None

    def update(self, frame: int, rgb: np.ndarray) -> None:
        cut = self._scene_cut(rgb)
        if cut:
            for t in self.live:
                t.force_look = True
        dets, only_keyframe = self._detect(rgb, frame, cut)
        self.stats.frames_scanned += 1
        self.stats.faces_seen += len(dets)
        pairs = []
        for di, d in enumerate(dets):
            for ti, t in enumerate(self.live):
                iou = t.predicted(frame).iou(d.box)
                if iou >= _LINK_IOU:
                    pairs.append((iou, di, ti))
        used_d: set[int] = set()
        used_t: set[int] = set()
        linked: list[tuple[Detection, _Track]] = []
        for _, di, ti in sorted(pairs, reverse=True):
            if di not in used_d and ti not in used_t:
                used_d.add(di)
                used_t.add(ti)
                linked.append((dets[di], self.live[ti]))
        fresh = [d for i, d in enumerate(dets) if i not in used_d]
        followed: list[tuple[Detection, _Track]] = []
        if not cut:  # between keyframes, a face only the keyframe detector sees is followed by its patch
            for ti, t in enumerate(self.live):
                if ti in used_t or not t.keyframe_only or t.patch is None or t.last_frame >= frame:
                    continue
                box = _follow(rgb, t.predicted(frame), t.patch)
                if box is not None:
                    followed.append((Detection(box), t))
        thumbs = {id(d): _thumb(rgb, d.box) for d in dets + [d for d, _ in followed]}

        for _, t in linked:
            if t.last_frame < self._prev_sample:
                t.force_look = True  # re-found after a miss: check it is still the same person
        seen = linked + followed
        looking = [(d, t) for d, t in seen if self._wants_look(t, frame, d, thumbs[id(d)])]
        to_embed = fresh + [d for d, _ in looking]
        emb = self._embed(rgb, to_embed, [0] * len(fresh) + [len(t.looks) for _, t in looking])
        emb_of = {id(d): e for d, e in zip(to_embed, emb, strict=True)}

        is_followed = {id(d) for d, _ in followed}
        for d, t in seen:
            e = emb_of.get(id(d))
            if e is not None and t.looks and float(np.linalg.norm(t.mean - e)) > _LINK_SAME:
                if id(d) not in is_followed:
                    fresh.append(d)  # someone else now stands where this track was: split
                continue  # (a followed patch that embeds as someone else: stop following)
            self._sighting(t, frame, d.box)
            if id(d) not in is_followed:
                self._mark(t, rgb, d, only_keyframe)
            if e is not None:
                self._look(t, frame, e, d, thumbs[id(d)])

        seen_now = {id(t) for _, t in seen}
        for d in fresh:
            e = emb_of[id(d)]
            # a face that reappears elsewhere (a cut, fast motion) continues the nearest recent track
            candidates = [t for t in self.live if id(t) not in seen_now and t.looks and t.last_frame < frame]
            near = min(candidates, key=lambda t: float(np.linalg.norm(t.mean - e)), default=None)
            if near is not None and float(np.linalg.norm(near.mean - e)) <= _LINK_REID:
                self._sighting(near, frame, d.box)
                near.prev_box = None
                self._mark(near, rgb, d, only_keyframe)
                self._look(near, frame, e, d, thumbs[id(d)])
                seen_now.add(id(near))
                continue
            t = self._new_track(frame, d)
            self._mark(t, rgb, d, only_keyframe)
            self._refine_start(t, d.box)
            self._look(t, frame, e, d, thumbs[id(d)])
            self.live.append(t)
            seen_now.add(id(t))

    def run(self, frames: Iterable[tuple[int, np.ndarray]]) -> list[_Track]:
        for index, rgb in frames:
            if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.dtype != np.uint8:
                raise DetectorError(f"frame {index} is not an (H, W, 3) uint8 image: {getattr(rgb, 'shape', rgb)!r}")
            h, w = rgb.shape[:2]
            if h * w > MAX_FRAME_PIXELS:
                raise ScanError("too_large", f"a {w}x{h} frame is larger than the {MAX_FRAME_PIXELS} pixels scanned")
            if self.stats.frame_count == 0:
                self.stats.smallest_face_px = self.backend.smallest_face(
                    h, w, min_face_px=self.min_face_px, max_pixels=self.max_pixels)
            self.stats.frame_count = index + 1
            if index % self.stride:
                self.recent[index] = rgb
                continue
            self._close_stale(index)
            self.update(index, rgb)
            self.recent = {}
            self._prev_sample = index
        self._close_stale(self.stats.frame_count, final=True)  # refines the ends of the tracks still alive
        return [t for t in self.done + self.live if t.looks]


def sample_stride(fps: float, min_visible_s: float = 0.5) -> int:
    """Frames between samples so that a face visible for ``min_visible_s`` is sampled >= 3 times."""
    if not fps > 0 or not min_visible_s > 0:
        raise DetectorError(f"fps and min_visible_s must be > 0, got {fps} and {min_visible_s}")
    return max(1, math.floor(fps * min_visible_s / _LOOKS))


def _settled(index: LikenessIndex, backend: FaceBackend | None, threshold: float | None,
             pose_thresholds: PoseThresholds | None) -> tuple[FaceBackend, float, PoseThresholds]:
    """A scan's backend, match threshold and pose thresholds, defaults filled in (:func:`default_backend`,
    :func:`threshold_for` and :func:`pose_thresholds_for` it), checked against ``index``: DetectorError for a
    threshold that is not positive, or an index of another dimension or enrolled with another backend."""
    backend = backend or default_backend()
    poses = pose_thresholds or pose_thresholds_for(backend, threshold)
    threshold = threshold_for(backend) if threshold is None else threshold
    if not threshold > 0:
        raise DetectorError(f"threshold must be > 0, got {threshold}")
    if index.dim != backend.dim:
        raise DetectorError(f"the index holds {index.dim}-d embeddings but {backend.name} makes {backend.dim}-d ones")
    if index.backend is not None and index.backend != backend.name:
        raise DetectorError(f"the index was enrolled with {index.backend!r}; cannot scan with {backend.name!r}")
    return backend, threshold, poses


def _scan(
    samples: Iterable[tuple[int, np.ndarray]],
    fps: float,
    index: LikenessIndex,
    backend: FaceBackend,
    threshold: float,
    *,
    stride: int,
    min_face_px: int,
    max_pixels: int | None,
    max_faces: int,
    thorough_every_s: float,
    poses: PoseThresholds,
    single_frame: bool = False,
) -> ScanResult:
    if not thorough_every_s >= 0:
        raise DetectorError(f"thorough_every_s must be >= 0, got {thorough_every_s}")
    thorough_every = max(stride, round(thorough_every_s * fps)) if thorough_every_s > 0 else 0
    scanner = _Scanner(_tracking(backend), fps, stride, min_face_px, max_pixels, max_faces,
                       normalize=bool(getattr(backend, "normalized", False)), thorough_every=thorough_every,
                       single_frame=single_frame)
    tracks = scanner.run(samples)
    stats = scanner.stats
    matches, uncertain, reports = decide_tracks(tracks, index, poses, normalize=scanner.normalize)
    unmatched = sum(1 for r in reports if not r.matched)
    return ScanResult(stats.frames_scanned, stats.faces_seen, tuple(matches), unmatched, tuple(reports),
                      stats.frame_count, float(fps), stats.smallest_face_px, stats.embeddings, float(threshold),
                      backend.name, stats.keyframes, tuple(uncertain), _detector_name(backend))


def _detector_name(backend: FaceBackend) -> str:
    name = getattr(backend, "detector_name", None)
    return str(name) if name else backend.name


def scan_frames(
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float,
    index: LikenessIndex,
    backend: FaceBackend | None = None,
    *,
    threshold: float | None = None,
    min_visible_s: float = 0.5,
    min_face_px: int = 40,
    max_pixels: int | None = DEFAULT_DETECT_PIXELS,
    max_faces: int = MAX_FACES_PER_FRAME,
    thorough_every_s: float = 0.0,
    pose_thresholds: PoseThresholds | None = None,
) -> ScanResult:
    """Scan decoded RGB frames ((T, H, W, 3) uint8 or a sequence of (H, W, 3)) shown at ``fps``.

    Every track whose mean embedding is within ``threshold`` (default: :func:`threshold_for` the
    backend) of a likeness is reported, once per such likeness (a face close to two enrolled
    likenesses is in ``matches`` as both; :meth:`ScanResult.attributed` keeps only the nearest).
    ``min_face_px`` and ``max_pixels`` set the detection resolution
    (see :data:`DEFAULT_DETECT_PIXELS`; ``max_pixels=None`` looks for ``min_face_px`` faces at any cost).
    ``thorough_every_s > 0`` makes it a thorough scan: the backend's turned-head detector also runs on
    keyframes that far apart, at the first sample and after cuts (:data:`THOROUGH_EVERY_S`).
    ``pose_thresholds`` (default :func:`pose_thresholds_for` the backend and ``threshold``) compare
    turned faces with turned views and set the uncertain band (:attr:`ScanResult.uncertain`).
    """
    backend, threshold, poses = _settled(index, backend, threshold, pose_thresholds)
    if len(frames) / fps > MAX_SCAN_SECONDS:
        raise ScanError("too_long", f"{len(frames) / fps:.0f} s of video is longer than {MAX_SCAN_SECONDS:.0f} s")
    stride = sample_stride(fps, min_visible_s)
    samples = ((i, frames[i]) for i in range(len(frames)))
    return _scan(samples, fps, index, backend, threshold, stride=stride, min_face_px=min_face_px,
                 max_pixels=max_pixels, max_faces=max_faces, thorough_every_s=thorough_every_s, poses=poses,
                 single_frame=len(frames) == 1)


def _prefetch(make: Callable[[], Iterator[tuple[int, np.ndarray]]], depth: int = 16
              ) -> Iterator[tuple[int, np.ndarray]]:
    """Decode on a second thread (FFmpeg releases the GIL) while this one detects and embeds."""
    return prefetch(make, depth, name="scan-decode")


def scan_video(
    path: str | os.PathLike[str],
    index: LikenessIndex,
    backend: FaceBackend | None = None,
    *,
    threshold: float | None = None,
    min_visible_s: float = 0.5,
    max_frames: int | None = None,
    min_face_px: int = 40,
    max_pixels: int | None = DEFAULT_DETECT_PIXELS,
    max_faces: int = MAX_FACES_PER_FRAME,
    thorough_every_s: float = 0.0,
    pose_thresholds: PoseThresholds | None = None,
) -> ScanResult:
    """:func:`scan_frames` on a video file, decoding on a second thread as it goes (``max_frames``
    stops early). Decoding runs under :class:`media.limits.Limits` (frames of at most
    :data:`MAX_FRAME_PIXELS`, at most :data:`MAX_SCAN_SECONDS` counted as decoded, never from the header)
    and stops the moment one is crossed. Raises :class:`ScanError` when the file is not a readable video
    (``unreadable``), its frames are too large (``too_large``) or it is too long (``too_long``)."""
    from media.limits import DEFAULT_LIMITS
    from media.video import LimitExceeded, MediaError, iter_frames, probe

    backend, threshold, poses = _settled(index, backend, threshold, pose_thresholds)
    limits = DEFAULT_LIMITS.but(frame_pixels=MAX_FRAME_PIXELS, seconds=MAX_SCAN_SECONDS,
                                frames=max(DEFAULT_LIMITS.frames, int(MAX_SCAN_SECONDS * 60)))
    try:
        info = probe(path, limits=limits)
    except LimitExceeded as e:
        raise _limit_error(path, e) from e
    except MediaError as e:
        raise ScanError("unreadable", f"{Path(path).name}: {e}") from e
    stride = sample_stride(info.fps, min_visible_s)

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        yield from iter_frames(path, max_frames=max_frames, limits=limits)

    try:
        return _scan(_prefetch(frames), info.fps, index, backend, threshold, stride=stride,
                     min_face_px=min_face_px, max_pixels=max_pixels, max_faces=max_faces,
                     thorough_every_s=thorough_every_s, poses=poses)
    except LimitExceeded as e:
        raise _limit_error(path, e) from e
    except MediaError as e:
        raise ScanError("unreadable", f"{Path(path).name}: {e}") from e


def _limit_error(path: str | os.PathLike[str], e: LimitExceeded) -> ScanError:
    """The refusal for a crossed decoding limit, by the limit's name (``LimitExceeded.limit``), never its text."""
    reason = "too_long" if e.limit in ("seconds", "frames") else "too_large"
    return ScanError(reason, f"{Path(path).name}: {e}")


def scan_path(
    path: str | os.PathLike[str],
    index: LikenessIndex,
    backend: FaceBackend | None = None,
    **options: Any,
) -> ScanResult:
    """Scan a video or a still image file against every likeness in ``index`` (what ``consentgate scan``
    runs). An image is scanned as a one-frame video, every face embedded. ``options`` are those of
    :func:`scan_video`. Unreadable, oversized or overlong files raise :class:`ScanError`."""
    from media.video import LimitExceeded, MediaError, load_image, sniff_kind

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as e:
        raise ScanError("unreadable", f"cannot read {p}: {e.strerror or e}") from e
    kind = sniff_kind(head)
    if kind == "video" or (kind is None and p.suffix.lower() in {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"}):
        return scan_video(p, index, backend, **options)
    if kind != "image":
        raise ScanError("unreadable", f"{p.name} is neither a video nor an image this scanner reads "
                        "(MP4/MOV/MKV/WebM video, JPEG/PNG/WebP/HEIF/AVIF/GIF/TIFF image)")
    backend = backend or default_backend()
    try:
        rgb = load_image(p)
    except LimitExceeded as e:
        raise _limit_error(p, e) from e
    except MediaError as e:
        raise ScanError("unreadable", f"{p.name}: {e}") from e
    options.pop("max_frames", None)
    options.pop("min_visible_s", None)
    options.setdefault("max_pixels", _IMAGE_DETECT_PIXELS)  # one frame: afford a finer look
    return scan_frames(rgb[None], 1.0, index, backend, **options)
