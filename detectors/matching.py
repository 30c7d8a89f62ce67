"""Whom a face track is: its looks compared with every likeness, like with like, and the decision.

:func:`decide_tracks` takes the tracks a scan followed (:mod:`detectors.scan`: each with its looks, the
head-pose bin of each look, its frames and last box) and the likeness index, and returns what the scan
reports: :class:`TrackMatch` values for the likenesses each track matches, the same for the likenesses it
is in the uncertain band of, and a :class:`TrackReport` per track. The thresholds per kind of comparison
and how they were measured are in :mod:`detectors.pose` and ``docs/face-matching.md`` ("Turned faces").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

from detectors.faces import Box
from detectors.index import LikenessIndex
from detectors.pose import TURNED, PoseThresholds

if TYPE_CHECKING:
    from detectors.faces import FaceBackend

__all__ = ["MATCH_THRESHOLD", "Track", "TrackMatch", "TrackReport", "decide_tracks", "threshold_for"]

#: Largest distance between a track's mean embedding and a likeness that counts as that likeness, for
#: the dlib backend. Calibrated with ``python -m detectors.calibrate`` (docs/face-matching.md).
MATCH_THRESHOLD: Final[float] = 0.5


def threshold_for(backend: FaceBackend) -> float:
    """The match threshold measured for ``backend`` (its ``match_threshold`` attribute, else
    :data:`MATCH_THRESHOLD`, which was measured for dlib)."""
    value = getattr(backend, "match_threshold", None)
    return float(value) if value is not None else MATCH_THRESHOLD


class Track(Protocol):
    """What :func:`decide_tracks` reads of a followed face (``detectors.scan._Track``)."""

    track_id: int
    first_frame: int
    last_frame: int
    frames_seen: int
    max_face_px: int
    box: Box
    looks: list[np.ndarray]
    look_bins: list[str]

    @property
    def mean(self) -> np.ndarray: ...


@dataclass(frozen=True)
class TrackMatch:
    """A face track that matched ``likeness_id`` (or, in :attr:`ScanResult.uncertain`, may be it): the
    mean embedding of its looks in head pose ``pose_bin`` was ``distance`` away from the likeness's
    template rows of bin ``compared`` (``None``: all rows); it was seen in ``frames_matched`` sampled
    frames between ``first_frame`` and ``last_frame`` (inclusive)."""

    likeness_id: str
    distance: float
    first_frame: int
    last_frame: int
    frames_matched: int
    track_id: int = 0
    pose_bin: str = "frontal"
    compared: str | None = "frontal"

    def to_dict(self) -> dict[str, Any]:
        return {"likeness": self.likeness_id, "distance": round(self.distance, 4), "first_frame": self.first_frame,
                "last_frame": self.last_frame, "frames_matched": self.frames_matched, "track": self.track_id,
                "pose": self.pose_bin, "compared": self.compared}


@dataclass(frozen=True)
class TrackReport:
    """One face track: where it was (frames, largest face, ``box`` at its last sighting), how often it
    was embedded (``looks``), its nearest likeness and distance whether or not that was a match
    (``None`` with an empty index), the head pose most of its looks had (``pose_bin``) and whether it
    is in the uncertain band of some likeness (``uncertain``)."""

    track_id: int
    first_frame: int
    last_frame: int
    frames_seen: int
    looks: int
    max_face_px: int
    best_likeness: str | None
    distance: float | None
    matched: bool
    pose_bin: str = "frontal"
    uncertain: bool = False
    box: Box | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"track": self.track_id, "first_frame": self.first_frame, "last_frame": self.last_frame,
                "frames_seen": self.frames_seen, "looks": self.looks, "max_face_px": self.max_face_px,
                "best_likeness": self.best_likeness,
                "distance": None if self.distance is None else round(self.distance, 4), "matched": self.matched,
                "pose": self.pose_bin, "uncertain": self.uncertain,
                "box": None if self.box is None else [self.box.left, self.box.top, self.box.right, self.box.bottom]}



def decide_tracks(tracks: Sequence[Track], index: LikenessIndex, poses: PoseThresholds, *, normalize: bool
                  ) -> tuple[list[TrackMatch], list[TrackMatch], list[TrackReport]]:
    """Each track against every likeness, like with like (:mod:`detectors.pose`): the mean of all its
    looks against frontal rows (the ``frontal`` thresholds), and the mean of its looks in each turned
    bin against the likeness's rows of that bin (``*_same``) or, lacking them, its frontal rows
    (``*_frontal``). A track matches a likeness when any comparison is within its match distance; it
    is uncertain for a likeness it does not match when any is within its protect distance."""
    if not tracks:
        return [], [], []
    queries: list[np.ndarray] = []
    owner: list[int] = []
    bins: list[str] = []
    for ti, t in enumerate(tracks):
        queries.append(t.mean)
        owner.append(ti)
        bins.append("frontal")
        for b in TURNED:
            group = [e for e, lb in zip(t.looks, t.look_bins, strict=True) if lb == b]
            if group:
                queries.append(np.mean(np.stack(group), axis=0))
                owner.append(ti)
                bins.append(b)
    q = np.stack(queries).astype(np.float32)
    if normalize:
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    means = q[[i for i, b in enumerate(bins) if b == "frontal"]]
    nearest = index.search(means, k=1)
    hits = index.search(q, k=max(1, min(len(index), 16)), threshold=poses.widest, pose_bins=bins)
    compared: dict[tuple[str, str], str | None] = {}
    best: dict[tuple[int, str], tuple[bool, float, str, str | None]] = {}  # (track, likeness) -> decisive look
    for qi, found in enumerate(hits):
        ti, b = owner[qi], bins[qi]
        for lid, d in found:
            key = (lid, b)
            if key not in compared:
                compared[key] = index.compared_bin(lid, b)
            seen = compared[key]
            limits = poses.get(b, same_bin=b != "frontal" and seen == b)
            if d > limits.protect:
                continue
            candidate = (d <= limits.match, d, b, seen)
            held = best.get((ti, lid))
            if held is None or (candidate[0], -candidate[1]) > (held[0], -held[1]):
                best[(ti, lid)] = candidate
    matches: list[TrackMatch] = []
    uncertain: list[TrackMatch] = []
    reports: list[TrackReport] = []
    for (ti, lid), (is_match, d, b, seen) in best.items():
        t = tracks[ti]
        m = TrackMatch(lid, d, t.first_frame, t.last_frame, t.frames_seen, t.track_id, b, seen)
        (matches if is_match else uncertain).append(m)
    matched_tracks = {m.track_id for m in matches}
    uncertain_tracks = {m.track_id for m in uncertain}
    for t, top in zip(tracks, nearest, strict=True):
        dominant = max(set(t.look_bins), key=lambda b: (t.look_bins.count(b), b == "frontal"))
        reports.append(TrackReport(
            t.track_id, t.first_frame, t.last_frame, t.frames_seen, len(t.looks), t.max_face_px,
            top[0][0] if top else None, top[0][1] if top else None, t.track_id in matched_tracks, dominant,
            t.track_id in uncertain_tracks, t.box))
    matches.sort(key=lambda m: (m.first_frame, m.distance))
    uncertain.sort(key=lambda m: (m.first_frame, m.distance))
    reports.sort(key=lambda r: (r.first_frame, r.track_id))
    return matches, uncertain, reports
