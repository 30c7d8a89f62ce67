"""Video scanning: find every enrolled likeness that appears in a video.

Frames are sampled so that a face on screen for ``min_visible_s`` is looked at at least three times;
faces are detected and embedded, linked across samples into tracks, and each track's mean embedding
is compared with every likeness in the index. Averaging a track's looks cancels most of the
per-frame noise (pose, blur, compression), which is what lets one strict threshold hold::

    >>> from media.video import load_image
    >>> from detectors.enroll import enroll
    >>> from detectors.index import LikenessIndex
    >>> from detectors.scan import scan_video
    >>> index = LikenessIndex()
    >>> index.add("lin", enroll([load_image("../shared/testdata/faces/lin-manuel-miranda.png")]))
    >>> result = scan_video("../shared/testdata/faces/short_hamilton_clip.mp4", index, max_frames=150)
    >>> sorted(result.likeness_ids())
    ['lin']

``MATCH_THRESHOLD`` and the measurements behind it are in ``docs/face-matching.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from detectors.errors import DetectorError
from detectors.faces import Box, Face, FaceBackend, default_backend
from detectors.index import LikenessIndex

__all__ = ["MATCH_THRESHOLD", "ScanResult", "TrackMatch", "sample_stride", "scan_frames", "scan_video"]

#: Largest distance between a track's mean embedding and a likeness that counts as that likeness.
#: Calibrated with ``python -m detectors.calibrate`` (docs/face-matching.md): no impostor came closer
#: than 0.57 (one video frame) or 0.60 (a track); a face composited from the enrolled reference stays
#: under 0.3, and a person tracked for a second or more from another photo or video at 0.36-0.45.
MATCH_THRESHOLD: Final[float] = 0.5

_LOOKS: Final = 3  # looks at a face visible for min_visible_s
_UPSAMPLE_BELOW: Final = 500  # frames with a shorter side below this are upsampled once (finds ~40 px faces)
_LINK_IOU: Final = 0.3  # a detection overlapping a live track this much ...
_LINK_SAME: Final = 0.55  # ... continues it if it is at most this far from the track's mean embedding;
_LINK_REID: Final = 0.4  # anywhere in the frame, this close continues it (cuts, fast motion)
_MAX_GAP_S: Final = 1.0  # a track not seen for longer than this is closed


@dataclass(frozen=True)
class TrackMatch:
    """A face track that matched ``likeness_id``: its mean embedding was ``distance`` away; it was
    seen in ``frames_matched`` sampled frames between ``first_frame`` and ``last_frame`` (inclusive)."""

    likeness_id: str
    distance: float
    first_frame: int
    last_frame: int
    frames_matched: int


@dataclass(frozen=True)
class ScanResult:
    """What a scan saw: frames looked at, faces detected, matched tracks, and tracks matching no one."""

    frames_scanned: int
    faces_seen: int
    matches: tuple[TrackMatch, ...]
    unmatched_tracks: int

    def likeness_ids(self) -> frozenset[str]:
        return frozenset(m.likeness_id for m in self.matches)


@dataclass(eq=False)
class _Track:
    first_frame: int
    last_frame: int
    box: Box
    total: np.ndarray  # sum of the embeddings, float64
    looks: int = 1

    @classmethod
    def start(cls, frame: int, face: Face) -> _Track:
        return cls(frame, frame, face.box, face.embedding.astype(np.float64))

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.looks

    def extend(self, frame: int, face: Face) -> None:
        self.last_frame, self.box = frame, face.box
        self.total = self.total + face.embedding
        self.looks += 1


class _Tracker:
    """Greedy linking of detections into tracks by overlap and embedding distance."""

    def __init__(self, max_gap_frames: int) -> None:
        self.max_gap = max_gap_frames
        self.live: list[_Track] = []
        self.done: list[_Track] = []

    def update(self, frame: int, faces: list[Face]) -> None:
        still: list[_Track] = []
        for t in self.live:
            (still if frame - t.last_frame <= self.max_gap else self.done).append(t)
        self.live = still
        candidates = []
        for fi, face in enumerate(faces):
            for ti, track in enumerate(self.live):
                d = float(np.linalg.norm(track.mean - face.embedding))
                if track.box.iou(face.box) >= _LINK_IOU and d <= _LINK_SAME:
                    candidates.append((d, fi, ti))
                elif d <= _LINK_REID:
                    candidates.append((d + 0.1, fi, ti))  # prefer a link that also overlaps
        used_faces: set[int] = set()
        used_tracks: set[int] = set()
        for _, fi, ti in sorted(candidates):
            if fi in used_faces or ti in used_tracks:
                continue
            self.live[ti].extend(frame, faces[fi])
            used_faces.add(fi)
            used_tracks.add(ti)
        self.live += [_Track.start(frame, f) for i, f in enumerate(faces) if i not in used_faces]

    def tracks(self) -> list[_Track]:
        return self.done + self.live


def sample_stride(fps: float, min_visible_s: float = 0.5) -> int:
    """Frames between samples so that a face visible for ``min_visible_s`` is sampled >= 3 times."""
    if not fps > 0 or not min_visible_s > 0:
        raise DetectorError(f"fps and min_visible_s must be > 0, got {fps} and {min_visible_s}")
    return max(1, math.floor(fps * min_visible_s / _LOOKS))


def _check(index: LikenessIndex, backend: FaceBackend, threshold: float) -> None:
    if not threshold > 0:
        raise DetectorError(f"threshold must be > 0, got {threshold}")
    if index.dim != backend.dim:
        raise DetectorError(f"the index holds {index.dim}-d embeddings but {backend.name} makes {backend.dim}-d ones")
    if index.backend is not None and index.backend != backend.name:
        raise DetectorError(f"the index was enrolled with {index.backend!r}; cannot scan with {backend.name!r}")


def _scan(
    samples: Iterable[tuple[int, np.ndarray]],
    fps: float,
    index: LikenessIndex,
    backend: FaceBackend,
    threshold: float,
) -> ScanResult:
    tracker = _Tracker(max_gap_frames=max(1, round(_MAX_GAP_S * fps)))
    frames_scanned = faces_seen = 0
    for frame_index, rgb in samples:
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3:
            raise DetectorError(f"frame {frame_index} is not an (H, W, 3) image: {getattr(rgb, 'shape', rgb)!r}")
        upsample = 1 if min(rgb.shape[:2]) < _UPSAMPLE_BELOW else 0
        faces = backend.faces(rgb, upsample=upsample)
        frames_scanned += 1
        faces_seen += len(faces)
        tracker.update(frame_index, faces)

    tracks = tracker.tracks()
    matches: list[TrackMatch] = []
    unmatched = 0
    if tracks:
        ids, dist = index.distance_matrix(np.stack([t.mean for t in tracks]))
        for track, row in zip(tracks, dist, strict=True):
            hits = [(float(row[j]), ids[j]) for j in np.flatnonzero(row <= threshold)]
            if not hits:
                unmatched += 1
            for d, likeness_id in sorted(hits):
                matches.append(TrackMatch(likeness_id, d, track.first_frame, track.last_frame, track.looks))
    matches.sort(key=lambda m: (m.first_frame, m.distance))
    return ScanResult(frames_scanned, faces_seen, tuple(matches), unmatched)


def scan_frames(
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float,
    index: LikenessIndex,
    backend: FaceBackend | None = None,
    *,
    threshold: float = MATCH_THRESHOLD,
    min_visible_s: float = 0.5,
) -> ScanResult:
    """Scan decoded RGB frames ((T, H, W, 3) uint8 or a sequence of (H, W, 3)) shown at ``fps``.

    Every track whose mean embedding is within ``threshold`` of a likeness is reported, once per such
    likeness (a face close to two enrolled likenesses is reported as both).
    """
    backend = backend or default_backend()
    _check(index, backend, threshold)
    stride = sample_stride(fps, min_visible_s)
    samples = ((i, frames[i]) for i in range(0, len(frames), stride))
    return _scan(samples, fps, index, backend, threshold)


def scan_video(
    path: str | os.PathLike[str],
    index: LikenessIndex,
    backend: FaceBackend | None = None,
    *,
    threshold: float = MATCH_THRESHOLD,
    min_visible_s: float = 0.5,
    max_frames: int | None = None,
) -> ScanResult:
    """:func:`scan_frames` on a video file, decoding only as it goes (``max_frames`` stops early).

    Raises :class:`media.video.MediaError` when the file is not a readable video.
    """
    from media.video import iter_frames, probe

    backend = backend or default_backend()
    _check(index, backend, threshold)
    fps = probe(path).fps
    stride = sample_stride(fps, min_visible_s)
    samples: Iterator[tuple[int, np.ndarray]] = iter_frames(path, every=stride, max_frames=max_frames)
    return _scan(samples, fps, index, backend, threshold)
