"""Pose-aware matching: which template bin a probe face is compared with, and the thresholds per bin.

A face turned 40-60 degrees sits 0.5-0.65 from the same person's frontal photo with dlib's encoder, as
far as a different person's frontal face; and a turned face resembles *anyone's* turned face more
than their frontal one (pose dominates the embedding). So a probe is compared like with like: a
turned probe with the same person's turned views where the template has them (``Template.bins``, from
the live challenge), else with the frontal ones; and each kind of comparison has its own thresholds,
measured with ``python -m detectors.calibrate`` (``docs/face-matching.md``, "Turned faces")::

    >>> from detectors.pose import DLIB_POSE_THRESHOLDS, probe_bin
    >>> probe_bin(-52.0, -3.0), probe_bin(4.0, 2.0), probe_bin(None, None)
    ('right', 'frontal', 'frontal')
    >>> t = DLIB_POSE_THRESHOLDS.get("right", same_bin=True)
    >>> t.match <= t.protect
    True

Each :class:`BinThreshold` has a *match* distance (at or under it the face is that likeness) and a
wider *protect* distance: between the two a face *may* be that likeness, and a generation showing it
is not released silently (held for the likeness owner's review, or blocked; ``governance``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from detectors.errors import DetectorError
from detectors.template import POSE_BINS

__all__ = [
    "DLIB_POSE_THRESHOLDS",
    "PROBE_PITCH",
    "PROBE_YAW",
    "TURNED",
    "BinThreshold",
    "PoseThresholds",
    "probe_bin",
]

#: A probe whose yaw (degrees, :mod:`detectors.headpose` signs) is beyond this is compared as turned
#: (``left`` > 0, ``right`` < 0): half way between facing the camera and the turns the live challenge
#: enrolls (held at 33-48 degrees, docs/enrollment.md).
PROBE_YAW: Final = 20.0
#: The same for pitch (``up`` > 0, ``down`` < 0); the challenge's pitch holds measure 14-30 degrees.
PROBE_PITCH: Final = 15.0
#: The turned bins (every bin but ``frontal``).
TURNED: Final = tuple(b for b in POSE_BINS if b != "frontal")


def probe_bin(yaw: float | None, pitch: float | None) -> str:
    """The :data:`~detectors.template.POSE_BINS` bin nearest a probe's head angles (degrees): the turn it
    goes furthest past :data:`PROBE_YAW` / :data:`PROBE_PITCH` into (relative to those), else
    ``frontal``. Unknown angles (a detector that does not estimate them, such as HOG, which finds faces
    turned up to ~30 degrees) count as frontal."""
    y = 0.0 if yaw is None else float(yaw)
    p = 0.0 if pitch is None else float(pitch)
    depth = {"left": y / PROBE_YAW, "right": -y / PROBE_YAW, "up": p / PROBE_PITCH, "down": -p / PROBE_PITCH}
    pose, how_far = max(depth.items(), key=lambda kv: kv[1])
    return pose if how_far >= 1.0 else "frontal"


@dataclass(frozen=True)
class BinThreshold:
    """Distances for one kind of comparison: ``match`` (at or under: the likeness) and ``protect``
    (at or under, but over ``match``: the uncertain band); ``protect >= match > 0``."""

    match: float
    protect: float

    def __post_init__(self) -> None:
        if not (isinstance(self.match, int | float) and isinstance(self.protect, int | float)
                and 0 < self.match <= self.protect):
            raise DetectorError(f"a bin threshold needs 0 < match <= protect, got {self.match!r}, {self.protect!r}")


@dataclass(frozen=True)
class PoseThresholds:
    """Thresholds per kind of comparison. ``frontal``: a frontal probe (or a track's mean over all its
    looks) against frontal or unbinned template rows. ``yaw_same`` / ``pitch_same``: a probe turned
    left/right (up/down) against the template's rows of the same bin. ``yaw_frontal`` /
    ``pitch_frontal``: such a probe against frontal rows, for a template without that bin (a photo)."""

    frontal: BinThreshold
    yaw_same: BinThreshold
    yaw_frontal: BinThreshold
    pitch_same: BinThreshold
    pitch_frontal: BinThreshold

    def get(self, probe: str, *, same_bin: bool) -> BinThreshold:
        """The thresholds for a probe in bin ``probe`` compared with rows of its own bin (``same_bin``)
        or with frontal rows."""
        if probe not in POSE_BINS:
            raise DetectorError(f"unknown pose bin {probe!r}; expected one of {', '.join(POSE_BINS)}")
        if probe == "frontal":
            return self.frontal
        if probe in ("left", "right"):
            return self.yaw_same if same_bin else self.yaw_frontal
        return self.pitch_same if same_bin else self.pitch_frontal

    @property
    def widest(self) -> float:
        """The largest ``protect`` of any kind: what a search must reach to see every candidate."""
        return max(t.protect for t in (self.frontal, self.yaw_same, self.yaw_frontal, self.pitch_same,
                                       self.pitch_frontal))

    @classmethod
    def uniform(cls, match: float, protect: float | None = None) -> PoseThresholds:
        """The same thresholds for every kind: what a backend without pose measurements gets."""
        t = BinThreshold(match, match if protect is None else protect)
        return cls(t, t, t, t, t)

    def with_frontal_match(self, match: float) -> PoseThresholds:
        """These thresholds with the frontal match distance replaced (a deployment's ``match_threshold``);
        its protect distance is kept unless the new match is wider."""
        return replace(self, frontal=BinThreshold(match, max(match, self.frontal.protect)))


#: Measured for dlib's ResNet encoder (mirror-averaged looks, BlazeFace detections aligned by dlib's
#: 5-point model) with ``python -m detectors.calibrate``; the data, the pairs in each band and the
#: reasoning are in docs/face-matching.md ("Turned faces").
DLIB_POSE_THRESHOLDS: Final = PoseThresholds(
    frontal=BinThreshold(0.50, 0.55),
    yaw_same=BinThreshold(0.45, 0.57),
    yaw_frontal=BinThreshold(0.50, 0.60),
    pitch_same=BinThreshold(0.45, 0.55),
    pitch_frontal=BinThreshold(0.50, 0.60),
)
