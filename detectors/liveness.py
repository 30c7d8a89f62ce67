"""The live challenge: a selfie video in which one person turns their head through random poses.

The service draws a challenge with :func:`random_poses` (3-5 of :data:`POSES`), the person records
themselves performing it, and :func:`verify_challenge` (decoded frames) or :func:`verify_video` (a file)
checks the recording. A pass returns a :class:`LiveResult`: the head's yaw and pitch in every frame,
the frames that satisfied each asked pose, and face embeddings binned by pose, ready to be stored as a
:class:`~detectors.enroll.Template` with turned views (:meth:`LiveResult.template`). A refusal raises
:class:`~detectors.errors.LivenessError` with a ``reason`` code and a message that says what was
measured against what was needed::

    >>> import random
    >>> from detectors.liveness import POSES, random_poses
    >>> poses = random_poses(rng=random.Random(7))  # the service uses the default, secrets.SystemRandom
    >>> 3 <= len(poses) <= 5 and set(poses) <= set(POSES)
    True
    >>> poses[0] != "center" and poses[-1] != "center"
    True

What is checked, in the order a refusal is reported (the first failing check wins):

1. the video: its frames' timestamps in time order (``unreadable``) with no pause longer than
   :attr:`LiveThresholds.max_gap_s` between two frames (``track_break``); at least
   :attr:`LiveThresholds.min_fps` frames a second, long enough for the poses, at most
   :attr:`LiveThresholds.max_seconds` (``frame_rate``, ``too_short``, ``too_long``);
2. a face: found at all, large enough, and never a second one (``no_face``, ``face_too_small``,
   ``multiple_faces``);
3. motion: the face region changes between frames; a still image replayed as a video is
   ``replayed_still``, a few stills held and swapped is ``slideshow``;
4. one continuous take: no cut, the face in view from the first second to the last (``no_face``),
   no jump of the face between consecutive frames, the face not lost for long (``track_break``), the
   same person throughout (``identity_changed``: within each pose, the mean embedding of any stretch
   of the video against the rest's; each turned pose's mean against the frontal mean);
5. the challenge: every asked pose held for :attr:`LiveThresholds.hold_s` (``pose_not_reached``), in
   the asked order with no other turn in between (``pose_order``).

Time comes from the frames' timestamps. A browser's MediaRecorder writes a variable-rate WebM: the
camera runs at its rate (say 20 frames a second), frames are dropped whenever the machine is busy, and
the header states no rate (FFmpeg then reports the time base's 1000, or the average of a few early
frames). So a recording's duration is the span of its timestamps plus one frame, its rate (``frame_rate``)
the frames over that duration, and every rule written in frames (a pose held, the face lost, a jump
between frames) counts time in the camera's nominal frames (the median interval between frames): a frame
standing for a dropped one counts as both. The frames are not resampled onto an even grid, which would
repeat frames, and repeated frames read as a replayed still. A video whose frames carry no timestamps is
timed by its header's rate.

How head pose is measured is in :mod:`detectors.headpose`; the thresholds, how they were measured and
what the check proves and does not are in ``docs/enrollment.md`` ("The live check").
"""

from __future__ import annotations

import io
import math
import os
import random
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np

from detectors.enroll import POSE_BINS, Template
from detectors.errors import DetectorError, LivenessError
from detectors.faces import Box, Detection, FaceBackend, TrackingBackend, as_rgb, crop_face, default_backend
from detectors.headpose import LandmarkDetector, default_landmarks, head_pose

__all__ = [
    "MAX_POSES",
    "MIN_POSES",
    "POSES",
    "HeadTrack",
    "LiveResult",
    "LiveThresholds",
    "PoseSpan",
    "random_poses",
    "track_head",
    "verify_challenge",
    "verify_video",
]

#: The head poses a challenge is drawn from: turned to the person's own ``left`` or ``right``, chin
#: ``up`` or ``down``, or facing the camera (``center``).
POSES: Final = ("left", "right", "up", "down", "center")
_TURNS: Final = ("left", "right", "up", "down")
#: A challenge asks for this many poses at least, and at most :data:`MAX_POSES`.
MIN_POSES: Final = 3
MAX_POSES: Final = 5

_WORK_SIDE: Final = 640  # frames are analysed with their longer side at most this (a 1080p selfie: 640x360)
_THUMB: Final = 32  # the whole frame's gray thumbnail, for cuts
_PATCH: Final = 64  # the face region's gray patch, for motion
_FOLLOW: Final = 32  # the patch correlated to follow a face the detector lost
_FOLLOW_MIN: Final = 0.5  # ... and the correlation it must keep
_FOLLOW_MAX_S: Final = 1.0  # a lost face is followed at most this long
_FIT_MAX_ERROR: Final = 0.2  # a pose fit worse than this (HeadPose.error) is not a face
_SECOND_FACE: Final = 0.5  # another face at least this fraction of the main face's size is a second person
_SAMPLE_EVERY_S: Final = 0.4  # identity samples at least this often ...
_MIN_SAMPLES: Final = 8  # ... and at least this many in all ...
_MAX_SAMPLES: Final = 24  # ... and at most this many
_SEGMENT: Final = 3  # the identity check compares stretches of at least this many samples
_ACROSS_POSES: Final = 1.2  # a turned pose's mean may be this much further from the frontal mean
_PER_BIN: Final = 2  # a template keeps at most this many embeddings per pose bin
_DUPLICATE: Final = 0.06  # embeddings closer than this add nothing to a bin
_MAX_FPS: Final = 240.0  # verify_video stops decoding past this many frames a second (media.video.Clip allows 240)
_ON_GRID: Final = 0.25  # timestamps within this many frame intervals of an even grid: a constant-rate video

#: Gives the frames at the asked indices again, scaled as :func:`track_head` scaled them.
_Picker = Callable[[Sequence[int]], dict[int, np.ndarray]]


@dataclass(frozen=True)
class LiveThresholds:
    """What the live check requires. Angles in degrees (:mod:`detectors.headpose`), times in seconds,
    frame changes in gray levels (0-255, mean absolute difference). The defaults and the measurements
    behind them are in ``docs/enrollment.md``; ``python -m bench liveness`` measures them again."""

    #: ``left`` / ``right``: yaw at least this far to that side. Frontal portraits measure |yaw| <= 18
    #: (one turned photo 23); a real head turn in short_hamilton_clip.mp4 reaches 36-42.
    turn_yaw: float = 25.0
    #: ``up`` / ``down``: pitch at least this far. Frontal portraits measure -4 to +8.
    turn_pitch: float = 15.0
    #: ``center`` (and the ``frontal`` bin): |yaw| and |pitch| at most this.
    center: float = 12.0
    #: A pose counts when the head stays in it this long (consecutive frames).
    hold_s: float = 0.2
    #: The video must last at least this long per asked pose, and at least ``min_seconds`` in all ...
    min_seconds_per_pose: float = 0.5
    min_seconds: float = 1.5
    #: ... and at most this long (a challenge of 5 poses takes 5-8 s).
    max_seconds: float = 20.0
    #: Fewer frames a second cannot show the head's motion between poses.
    min_fps: float = 10.0
    #: The face's shorter side (px, after frames are scaled to at most 640 px) at least this on average.
    min_face_px: int = 80
    #: A second face in at least this many frames is ``multiple_faces``.
    second_face_frames: int = 3
    #: Face-region change below this (gray levels) between consecutive frames: a near-duplicate frame.
    still_level: float = 0.6
    #: Face-region change above this between consecutive frames: an abrupt jump (slideshow, cut).
    jump_level: float = 20.0
    #: At least this share of near-duplicate consecutive frames: a still (no jump) or a slideshow.
    still_share: float = 0.7
    #: Whole-frame change (a 32x32 gray thumbnail) above this between consecutive frames: a cut.
    cut_level: float = 20.0
    #: The face's landmark centre moving more than this times the face's size between consecutive
    #: frames, or its size changing by more than ``max_scale_step`` times: a jump (``track_break``).
    max_jump: float = 0.5
    max_scale_step: float = 1.4
    #: The face out of view longer than this inside the video is ``track_break``; at its start or end
    #: (the recording began before the face was in view) longer than ``edge_slack_s`` is ``no_face``.
    max_gap_s: float = 0.5
    edge_slack_s: float = 1.0
    #: Within one pose, a stretch of the video whose mean embedding is further than this from the mean
    #: of the rest shows someone else (``identity_changed``); ``None``: the backend's match threshold
    #: (0.50 for dlib, ``detectors.scan.threshold_for``).
    identity_distance: float | None = None
    #: A turned pose's mean embedding further than this from the frontal mean is someone else; ``None``:
    #: 1.2 times ``identity_distance`` (0.60 for dlib: turned faces sit 0.29-0.49 from their frontal
    #: mean, different people 0.63 and more).
    pose_identity_distance: float | None = None

    def __post_init__(self) -> None:
        for name in ("turn_yaw", "turn_pitch", "center", "hold_s", "min_seconds_per_pose", "min_seconds",
                     "max_seconds", "min_fps", "still_level", "jump_level", "still_share", "cut_level", "max_jump",
                     "max_scale_step", "max_gap_s", "edge_slack_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise DetectorError(f"LiveThresholds.{name} must be a positive number, got {value!r}")
        if self.center >= min(self.turn_yaw, self.turn_pitch):
            raise DetectorError(f"LiveThresholds.center ({self.center}) must be below turn_yaw and turn_pitch")
        if self.still_level >= self.jump_level or self.still_share > 1 or self.max_scale_step <= 1:
            raise DetectorError("LiveThresholds: need still_level < jump_level, still_share <= 1, max_scale_step > 1")
        if self.min_seconds >= self.max_seconds:
            raise DetectorError("LiveThresholds: min_seconds must be below max_seconds")
        if self.min_face_px < 1 or self.second_face_frames < 1:
            raise DetectorError("LiveThresholds: min_face_px and second_face_frames must be >= 1")
        for name in ("identity_distance", "pose_identity_distance"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise DetectorError(f"LiveThresholds.{name} must be positive or None, got {value!r}")


def random_poses(n: int | None = None, *, rng: random.Random | None = None) -> tuple[str, ...]:
    """A challenge: ``n`` poses (default: 3, 4 or 5 at random) from :data:`POSES`, no pose twice in a row.

    The first and the last pose are turns (``left``, ``right``, ``up``, ``down``), never ``center``: a
    recording starts and ends facing the camera anyway, so ``center`` there would prove nothing;
    between two turns it asks the person to face the camera again. There are 1,076 sequences (52 of
    3 poses, 204 of 4, 820 of 5); none is drawn with a probability above 1/144, the best chance that a
    video recorded beforehand fits a fresh challenge. ``rng`` defaults to
    :class:`secrets.SystemRandom`; pass a seeded :class:`random.Random` only in tests."""
    gen: random.Random = rng if rng is not None else secrets.SystemRandom()
    if n is None:
        n = gen.randint(MIN_POSES, MAX_POSES)
    if not isinstance(n, int) or not MIN_POSES <= n <= MAX_POSES:
        raise ValueError(f"a challenge has {MIN_POSES} to {MAX_POSES} poses, got {n!r}")
    poses: list[str] = []
    for i in range(n):
        allowed = POSES if 0 < i < n - 1 else _TURNS
        poses.append(gen.choice([p for p in allowed if not poses or p != poses[-1]]))
    return tuple(poses)


def _check_poses(poses: Sequence[str]) -> tuple[str, ...]:
    asked = tuple(poses)
    if not MIN_POSES <= len(asked) <= MAX_POSES or not set(asked) <= set(POSES):
        raise ValueError(f"a challenge is {MIN_POSES}-{MAX_POSES} of {', '.join(POSES)}, got {asked!r}")
    if any(a == b for a, b in zip(asked, asked[1:], strict=False)):
        raise ValueError(f"a challenge never asks the same pose twice in a row, got {asked!r}")
    return asked


# -- following one head through the frames -------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class HeadTrack:
    """What :func:`track_head` measured in each of ``T`` frames, before any judgement. Frames are
    analysed scaled by ``scale`` (their longer side at most 640 px); boxes and sizes are in those pixels.

    Per frame (arrays of shape ``(T,)``, read-only; NaN where not measured): ``yaw`` and ``pitch`` of
    the followed face (degrees, :func:`detectors.headpose.head_pose`), ``face_px`` its box's shorter
    side, ``face_change`` the mean absolute change (gray levels) of its region since the previous
    frame, ``frame_change`` that of the whole frame (a 32x32 thumbnail), ``jump`` how far its landmarks'
    centre moved since the last frame with a face, in units of the face's size, ``scale_step`` the
    ratio of its size to that frame's (>= 1); ``followed`` is True where the detector lost the face and
    its landmarks were placed from the previous frame; ``others`` counts other faces at least half its
    size; ``time`` is when the frame was shown, in seconds from the first frame. ``boxes`` holds the
    followed face's box per frame (``None`` without a face)."""

    yaw: np.ndarray
    pitch: np.ndarray
    face_px: np.ndarray
    face_change: np.ndarray
    frame_change: np.ndarray
    jump: np.ndarray
    scale_step: np.ndarray
    followed: np.ndarray
    others: np.ndarray
    time: np.ndarray
    boxes: tuple[Box | None, ...]
    scale: float

    def __post_init__(self) -> None:
        for name in ("yaw", "pitch", "face_px", "face_change", "frame_change", "jump", "scale_step", "followed",
                     "others", "time"):
            arr = np.array(getattr(self, name))
            if arr.shape != (len(self.boxes),):
                raise DetectorError(f"HeadTrack.{name} must have one value per frame ({len(self.boxes)}), "
                                    f"got shape {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def frame_count(self) -> int:
        return len(self.boxes)

    @property
    def has_face(self) -> np.ndarray:
        """``(T,)`` bool: a face was measured in the frame."""
        return np.isfinite(self.yaw)


def _work_frame(frame: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    img = as_rgb(frame)
    longest = max(img.shape[:2])
    if longest <= _WORK_SIDE:
        return img, 1.0
    scale = _WORK_SIDE / longest
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    return np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA)), scale


def _region(gray: np.ndarray, box: Box, side: int, grow: float = 0.2) -> np.ndarray | None:
    """``box`` grown by ``grow`` of its size on every side, cut from ``gray`` and resized to ``side``."""
    import cv2

    h, w = gray.shape
    gx, gy = round(box.width * grow), round(box.height * grow)
    grown = Box(top=box.top - gy, right=box.right + gx, bottom=box.bottom + gy, left=box.left - gx).clipped(w, h)
    if grown is None or grown.width < 4 or grown.height < 4:
        return None
    patch = gray[grown.top:grown.bottom, grown.left:grown.right]
    return np.asarray(cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA), np.float32)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-6 else 0.0


def _centre_and_size(points: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (lo + hi) / 2.0, float(math.sqrt(max(1.0, float((hi - lo).prod()))))


def track_head(frames: Iterable[np.ndarray], fps: float | None = None, *, times: Iterable[float] | None = None,
               landmarks: LandmarkDetector | None = None) -> HeadTrack:
    """Follow the main face through ``frames`` (RGB uint8 ``(H, W, 3)`` images: a ``(T, H, W, 3)`` array,
    a sequence or any iterable, read once, in order) and measure its pose and motion in every frame (see
    :class:`HeadTrack`). The frames are timed by ``fps`` (a constant rate) or by ``times`` (when each was
    shown, in seconds, non-decreasing: a variable-rate recording); exactly one of the two is given.

    The face is found by dlib's HOG detector in every frame (the one overlapping the last frame's face
    most, else the largest). Where the detector loses it (a head turned past ~40 degrees), its landmarks
    are placed inside its last box, moved with it, for up to 1 s, as long as the face patch keeps a
    normalised correlation of 0.5 with the previous frame's. Cost: ~13 ms of CPU a 640x360 frame."""
    if (fps is None) == (times is None):
        raise DetectorError("track_head times the frames by fps or by times: give exactly one")
    if times is None:
        rate = float(fps)  # type: ignore[arg-type]
        if not rate > 0:
            raise DetectorError(f"fps must be positive, got {fps!r}")
        return _track(((i / rate, f) for i, f in enumerate(frames)), landmarks)
    stamps = iter(times)

    def timed() -> Iterator[tuple[float, np.ndarray]]:
        for frame in frames:
            t = next(stamps, None)
            if t is None:
                raise DetectorError("track_head needs one time per frame: the times ran out first")
            yield float(t), frame
        if next(stamps, None) is not None:
            raise DetectorError("track_head needs one time per frame: more times than frames")

    return _track(timed(), landmarks)


def _track(timed: Iterable[tuple[float, np.ndarray]], landmarks: LandmarkDetector | None) -> HeadTrack:
    """:func:`track_head` on ``(seconds, frame)`` pairs."""
    import cv2

    landmarks = landmarks or default_landmarks()
    rows: list[tuple[float, float, float, float, float, float, float, bool, int]] = []
    boxes: list[Box | None] = []
    prev_gray: np.ndarray | None = None
    prev_thumb: np.ndarray | None = None
    last_box: Box | None = None  # the face in the previous frame
    last_centre: np.ndarray | None = None  # the landmarks' centre and size in the last frame with a face
    last_size = 0.0
    followed_from = 0.0  # when the detector last saw the face
    times: list[float] = []
    scale = 1.0
    nan = float("nan")
    for shown_at, frame in timed:
        step = shown_at - times[-1] if times else 0.0
        times.append(shown_at)
        img, scale = _work_frame(frame)
        height, width = img.shape[:2]
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        thumb = np.asarray(cv2.resize(gray, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA), np.float32)
        frame_change = nan
        if prev_thumb is not None and prev_thumb.shape == thumb.shape:
            frame_change = float(np.abs(thumb - prev_thumb).mean())
        yaw = pitch = face_px = face_change = jump = scale_step = nan
        followed, others = False, 0
        found = landmarks.detect(img)
        box: Box | None = None
        points: np.ndarray | None = None
        if found:
            pick = 0
            if last_box is not None:
                overlaps = [b.iou(last_box) for b, _ in found]
                if max(overlaps) > 0:
                    pick = int(np.argmax(overlaps))
            box, points = found[pick]
            others = sum(1 for i, (b, _) in enumerate(found) if i != pick and b.size >= _SECOND_FACE * box.size)
            followed_from = shown_at
        elif last_box is not None and last_centre is not None and prev_gray is not None \
                and shown_at - followed_from <= _FOLLOW_MAX_S + step / 2:  # up to 1 s, to the nearest frame
            box, points = _follow(landmarks, img, gray, prev_gray, last_box, last_centre)
            if box is not None:
                followed = True
        if box is not None and points is not None:
            try:
                pose = head_pose(points, width, height)
            except DetectorError:
                pose = None
            if pose is not None and pose.error <= _FIT_MAX_ERROR:
                yaw, pitch, face_px = pose.yaw, pose.pitch, float(box.size)
                centre, size = _centre_and_size(points)
                if last_centre is not None:
                    jump = float(np.linalg.norm(centre - last_centre)) / max(last_size, 1.0)
                    scale_step = max(size, last_size) / max(min(size, last_size), 1.0)
                last_centre, last_size = centre, size
                if prev_gray is not None and prev_gray.shape == gray.shape:
                    before, now = _region(prev_gray, box, _PATCH), _region(gray, box, _PATCH)
                    if before is not None and now is not None:
                        face_change = float(np.abs(now - before).mean())
            else:
                box, followed = None, False
        rows.append((yaw, pitch, face_px, face_change, frame_change, jump, scale_step, followed, others))
        boxes.append(box)
        last_box = box
        prev_gray, prev_thumb = gray, thumb
    cols = list(zip(*rows, strict=True)) if rows else [()] * 9
    f32 = [np.array(c, np.float32) for c in cols[:7]]
    shown = np.array(times, np.float64)
    return HeadTrack(yaw=f32[0], pitch=f32[1], face_px=f32[2], face_change=f32[3], frame_change=f32[4], jump=f32[5],
                     scale_step=f32[6], followed=np.array(cols[7], bool), others=np.array(cols[8], np.int32),
                     time=shown - shown[0] if shown.size else shown, boxes=tuple(boxes), scale=scale)


def _follow(landmarks: LandmarkDetector, img: np.ndarray, gray: np.ndarray, prev_gray: np.ndarray, last: Box,
            last_centre: np.ndarray) -> tuple[Box | None, np.ndarray | None]:
    """The landmarks of a face the detector lost: placed in its last box, the box moved as they moved
    since the previous frame (``last_centre``), and placed again; ``None`` when the face patch no longer
    looks like the previous frame's (the face left, or something covers it)."""
    h, w = gray.shape
    centre, _ = _centre_and_size(landmarks.fit(img, last))
    dx, dy = (round(float(v)) for v in centre - last_centre)
    moved = Box(top=last.top + dy, right=last.right + dx, bottom=last.bottom + dy, left=last.left + dx)
    if moved.clipped(w, h) != moved:
        return None, None
    before, now = _region(prev_gray, last, _FOLLOW, grow=0.0), _region(gray, moved, _FOLLOW, grow=0.0)
    if before is None or now is None or _correlation(before, now) < _FOLLOW_MIN:
        return None, None
    return moved, landmarks.fit(img, moved)


# -- the result ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoseSpan:
    """Where one asked ``pose`` was performed: frames ``first_frame``..``last_frame`` (inclusive) held it;
    ``peak_frame`` went furthest into it (for ``center``: faced the camera most directly), where the
    head measured ``yaw`` and ``pitch`` degrees."""

    pose: str
    first_frame: int
    last_frame: int
    peak_frame: int
    yaw: float
    pitch: float

    def to_dict(self) -> dict[str, object]:
        return {"pose": self.pose, "first_frame": self.first_frame, "last_frame": self.last_frame,
                "peak_frame": self.peak_frame, "yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1)}


@dataclass(frozen=True, eq=False)
class LiveResult:
    """A passed live challenge.

    ``poses``: the challenge; ``spans``: one :class:`PoseSpan` per asked pose, in order; ``yaw`` and
    ``pitch``: ``(T,)`` float32 degrees per frame, NaN where no face was measured (read-only; yaw > 0
    is a turn to the person's left, a ``mirrored`` recording's yaw already flipped);
    ``fps``: frames a second, over the recording's duration as its timestamps measure it (so
    ``duration_s``, ``frame_count / fps``, is that duration); ``views``: for each of
    :data:`~detectors.enroll.POSE_BINS` a ``(k, dim)`` float32 array of embeddings of the face in that
    pose (``k`` from 0 to 2; every asked turn's bin holds at least one); ``reference``: an RGB crop of
    the most frontal face, square, the face in the middle (as :func:`detectors.faces.crop_face` cuts it);
    ``backend``: the embedding backend's name; ``identity_distance``: the largest distance found, within
    one pose, between the mean embedding of a stretch of the video and the rest's; ``pose_distance``:
    the largest between a turned pose's mean and the frontal mean (both below their thresholds, or this
    would be a refusal); ``thresholds``: what was required."""

    poses: tuple[str, ...]
    spans: tuple[PoseSpan, ...]
    yaw: np.ndarray
    pitch: np.ndarray
    fps: float
    views: Mapping[str, np.ndarray]
    reference: np.ndarray
    backend: str
    identity_distance: float
    pose_distance: float
    thresholds: LiveThresholds = field(default_factory=LiveThresholds)

    def __post_init__(self) -> None:
        for name in ("yaw", "pitch"):
            arr = np.array(getattr(self, name), np.float32)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        views = {}
        for b in POSE_BINS:
            arr = np.array(self.views.get(b, np.zeros((0, 0), np.float32)), np.float32)
            arr.setflags(write=False)
            views[b] = arr
        object.__setattr__(self, "views", MappingProxyType(views))
        ref = np.array(self.reference, np.uint8)
        ref.setflags(write=False)
        object.__setattr__(self, "reference", ref)

    @property
    def frame_count(self) -> int:
        return int(self.yaw.shape[0])

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def template(self) -> Template:
        """The views as an enrollment :class:`~detectors.enroll.Template`: every bin's embeddings, in
        :data:`~detectors.enroll.POSE_BINS` order, labelled with their bin (``Template.bins``)."""
        rows = [(b, e) for b in POSE_BINS for e in self.views[b] if e.size]
        if not rows:
            raise DetectorError("this live result holds no embeddings to make a template of")
        return Template(embeddings=np.stack([e for _, e in rows]), backend=self.backend, reference=self.reference,
                        bins=tuple(b for b, _ in rows))

    def to_dict(self) -> dict[str, object]:
        """A JSON-able summary (no embeddings, no pixels)."""
        return {"poses": list(self.poses), "spans": [s.to_dict() for s in self.spans], "fps": round(self.fps, 3),
                "frame_count": self.frame_count, "views": {b: int(self.views[b].shape[0]) for b in POSE_BINS},
                "backend": self.backend, "identity_distance": round(self.identity_distance, 4),
                "pose_distance": round(self.pose_distance, 4)}


# -- judging the track ----------------------------------------------------------------------------------------
def _smoothed(values: np.ndarray) -> np.ndarray:
    """A 3-frame median of a series with gaps (NaN stays NaN): landmark jitter is a frame or two."""
    out = np.full_like(values, np.nan)
    for t in np.flatnonzero(np.isfinite(values)):
        window = values[max(0, t - 1):t + 2]
        out[t] = np.median(window[np.isfinite(window)])
    return out


def _labels(yaw: np.ndarray, pitch: np.ndarray, th: LiveThresholds) -> list[str | None]:
    """Per frame, the pose the head is in: the turn it goes furthest past its threshold into (relative to
    the threshold), ``center`` when it faces the camera, ``None`` in between or without a face."""
    out: list[str | None] = []
    for y, p in zip(yaw.tolist(), pitch.tolist(), strict=True):
        if not (math.isfinite(y) and math.isfinite(p)):
            out.append(None)
            continue
        past = {"left": y / th.turn_yaw, "right": -y / th.turn_yaw, "up": p / th.turn_pitch, "down": -p / th.turn_pitch}
        pose, depth = max(past.items(), key=lambda kv: kv[1])
        if depth >= 1.0:
            out.append(pose)
        elif abs(y) <= th.center and abs(p) <= th.center:
            out.append("center")
        else:
            out.append(None)
    return out


@dataclass(frozen=True)
class _Event:
    pose: str
    first: int
    last: int
    frames: tuple[int, ...]


def _events(labels: Sequence[str | None], hold: int, weights: np.ndarray) -> list[_Event]:
    """Runs of one pose held at least ``hold`` nominal frames (each frame weighs the nominal frames it
    stands for, ``weights``: 1 at a constant rate) and at least 2 frames, in time order; a run broken by
    up to 2 frames without a pose (a blink of the landmarks) is one run."""
    runs: list[list[int]] = []
    run_pose: list[str] = []
    for t, lab in enumerate(labels):
        if lab is None:
            continue
        if runs and run_pose[-1] == lab and t - runs[-1][-1] <= 3 and all(
                labels[k] is None for k in range(runs[-1][-1] + 1, t)):
            runs[-1].append(t)
        else:
            runs.append([t])
            run_pose.append(lab)
    return [_Event(p, r[0], r[-1], tuple(r)) for p, r in zip(run_pose, runs, strict=True)
            if len(r) >= 2 and float(weights[r].sum()) >= hold - 1e-6]


def _longest_run(labels: Sequence[str | None], pose: str, clock: _Clock) -> str:
    """The longest run of consecutive frames in ``pose``: how many, and how long they stand for."""
    best = cur = 0
    span = weight = 0.0
    for lab, w in zip(labels, clock.weights.tolist(), strict=True):
        cur, weight = (cur + 1, weight + w) if lab == pose else (0, 0.0)
        if (cur, weight) > (best, span):
            best, span = cur, weight
    return f"{best} frames in a row ({span / clock.fps:.2f} s)"


def _never_reached(pose: str, yaw: np.ndarray, pitch: np.ndarray, labels: Sequence[str | None],
                   th: LiveThresholds, clock: _Clock) -> str:
    ok = np.isfinite(yaw) & np.isfinite(pitch)
    y, p = yaw[ok], pitch[ok]
    if pose == "center":
        k = int(np.argmin(np.maximum(np.abs(y), np.abs(p))))
        if max(abs(y[k]), abs(p[k])) > th.center:
            return (f"pose 'center' never reached: the head never came within {th.center:.0f} deg of facing the "
                    f"camera (closest: yaw {y[k]:.0f}, pitch {p[k]:.0f} deg)")
        return (f"pose 'center' never held: the head faced the camera for at most "
                f"{_longest_run(labels, pose, clock)}, need {th.hold_s:g} s")
    what, values, need = {
        "left": ("max yaw to the left", y, th.turn_yaw), "right": ("max yaw to the right", -y, th.turn_yaw),
        "up": ("max pitch", p, th.turn_pitch), "down": ("max downward pitch", -p, th.turn_pitch),
    }[pose]
    best = float(values.max())
    if best < need:
        shown = f"{best:.0f}" if round(best) < need else f"{best:.1f}"  # never "25 deg, need 25"
        return f"pose '{pose}' never reached: {what} {shown} deg, need {need:g}"
    return (f"pose '{pose}' never held: {what} {best:.0f} deg (need {need:g}), but for at most "
            f"{_longest_run(labels, pose, clock)}, need {th.hold_s:g} s")


def _frames(e: _Event) -> str:
    return f"frames {e.first}-{e.last}"


def _match(asked: tuple[str, ...], events: list[_Event]) -> tuple[list[_Event], str | None]:
    """The event performing each asked pose, in order, and ``None``; or the events matched so far and
    why the order is wrong. Between two asked poses the head may pass through ``center`` and repeat the
    previous pose, but no other turn may happen (or a video cycling through every pose would pass any
    challenge); what follows the last pose does not matter."""
    matched: list[_Event] = []
    for e in events:
        k = len(matched)
        if k == len(asked):
            break
        if e.pose == asked[k]:
            matched.append(e)
        elif e.pose == "center" or (k > 0 and e.pose == asked[k - 1]):
            continue
        elif k + 1 < len(asked) and e.pose == asked[k + 1]:
            return matched, f"expected '{asked[k]}' then '{asked[k + 1]}', saw '{e.pose}' first ({_frames(e)})"
        elif k == 0:
            return matched, f"expected '{asked[0]}' first, saw '{e.pose}' first ({_frames(e)})"
        else:
            return matched, (f"expected '{asked[k - 1]}' then '{asked[k]}', saw '{e.pose}' in between "
                             f"({_frames(e)})")
    if len(matched) < len(asked):
        k = len(matched)
        before = f"'{asked[k - 1]}' (frames {matched[-1].first}-{matched[-1].last})" if k else "the start"
        return matched, f"expected '{asked[k]}' after {before}, but it was performed only before"
    return matched, None


def _span(pose: str, e: _Event, yaw: np.ndarray, pitch: np.ndarray) -> PoseSpan:
    idx = np.array(e.frames)
    depth = {"left": yaw[idx], "right": -yaw[idx], "up": pitch[idx], "down": -pitch[idx],
             "center": -np.maximum(np.abs(yaw[idx]), np.abs(pitch[idx]))}[pose]
    peak = int(idx[int(np.argmax(depth))])
    return PoseSpan(pose, e.first, e.last, peak, float(yaw[peak]), float(pitch[peak]))


def _fail(reason: str, message: str) -> LivenessError:
    return LivenessError(reason, message)


@dataclass(frozen=True, eq=False)
class _Clock:
    """When each of ``T`` frames was shown. ``times``: ``(T,)`` seconds from the first frame; ``fps``: the
    camera's nominal rate (1 / the median interval between frames); ``pos``: ``(T,)`` time in nominal
    frames (``times * fps``; at a constant rate, the frame's index); ``rate``: frames a second over
    ``duration``, the span of the timestamps plus one frame (``T / rate``). Rules written in frames
    count ``pos``, so a frame that stands for a dropped one counts as both."""

    times: np.ndarray
    pos: np.ndarray
    fps: float
    rate: float
    duration: float

    @classmethod
    def constant(cls, n: int, fps: float) -> _Clock:
        """``n`` frames at ``fps`` (not checked here: :func:`_check_video` refuses a rate that is not positive)."""
        index = np.arange(n, dtype=np.float64)
        ok = math.isfinite(fps) and fps > 0
        return cls(index / fps if ok else index, index, fps, fps, n / fps if ok else math.nan)

    @classmethod
    def measured(cls, times: np.ndarray) -> _Clock:
        """From timestamps that :func:`_measured_clock` accepted (at least 2, non-decreasing, spanning time)."""
        t = np.asarray(times, np.float64) - float(times[0])
        steps = np.diff(t)
        typical = float(np.median(steps[steps > 0]))
        rate = (t.size - 1) / float(t[-1])
        return cls(t, t / typical, 1.0 / typical, rate, t.size / rate)

    @property
    def weights(self) -> np.ndarray:
        """``(T,)``: the nominal frames each frame stands for, until the next one (the last: 1)."""
        return np.append(np.diff(self.pos), 1.0)


def _check_step(i: int, before: float, now: float, th: LiveThresholds) -> None:
    """Frame ``i``'s timestamp ``now`` (seconds) after frame ``i - 1``'s ``before``: never earlier (equal
    happens: a browser stamps a late frame with its predecessor's time), never more than ``max_gap_s`` later."""
    if not math.isfinite(now):
        raise _fail("unreadable", f"frame {i} has no timestamp ({now!r}) while the frames before it have one")
    if now < before:
        raise _fail("unreadable", f"the frames' timestamps go backwards at frame {i} ({before:.3f} s, then "
                                  f"{now:.3f} s): a recording's frames are in time order")
    if now - before > th.max_gap_s + 1e-9:
        raise _fail("track_break", f"the video skips {now - before:.1f} s between frames {i - 1} and {i} (at "
                                   f"{before:.1f} s): a live video is one continuous take, at most "
                                   f"{th.max_gap_s:g} s between frames")


def _measured_clock(times: Sequence[float] | np.ndarray, asked: tuple[str, ...], th: LiveThresholds) -> _Clock:
    """The clock of frames shown at ``times`` (seconds), checked: in time order with no pause longer than
    ``max_gap_s`` (:func:`_check_step`), spanning some time."""
    t = np.asarray(times, np.float64)
    if t.ndim != 1:
        raise _fail("unreadable", f"expected one timestamp per frame, got shape {t.shape}")
    if t.size and not math.isfinite(float(t[0])):
        raise _fail("unreadable", f"frame 0 has no timestamp ({float(t[0])!r})")
    for i in range(1, t.size):
        _check_step(i, float(t[i - 1]), float(t[i]), th)
    if t.size < 2:
        need = max(th.min_seconds, th.min_seconds_per_pose * len(asked))
        raise _fail("too_short", f"the video has {t.size} frame{'' if t.size == 1 else 's'}; {len(asked)} poses "
                                 f"need at least {need:.1f} s")
    if t[-1] == t[0]:
        raise _fail("unreadable", f"all {t.size} frames carry the same timestamp ({float(t[0]):.3f} s)")
    return _Clock.measured(t)


def _check_video(clock: _Clock, asked: tuple[str, ...], th: LiveThresholds) -> None:
    fps = clock.rate
    if not math.isfinite(fps) or fps <= 0:
        raise _fail("unreadable", f"the video's frame rate is not a positive number ({fps!r})")
    if fps < th.min_fps:
        raise _fail("frame_rate", f"the video runs at {fps:.1f} frames a second; at least {th.min_fps:.0f} are "
                                  "needed to follow the head's motion")
    seconds = clock.duration
    need = max(th.min_seconds, th.min_seconds_per_pose * len(asked))
    if seconds < need:
        raise _fail("too_short", f"the video lasts {seconds:.1f} s; {len(asked)} poses need at least {need:.1f} s")
    if seconds > th.max_seconds:
        raise _fail("too_long", f"the video lasts {seconds:.1f} s; at most {th.max_seconds:.0f} s are accepted")


def _check_face(track: HeadTrack, pick: _Picker, th: LiveThresholds, landmarks: LandmarkDetector) -> None:
    has = track.has_face
    n = track.frame_count
    if not has.any():
        # The HOG detector finds faces of ~80 px and more; look again at a few frames for smaller ones.
        wanted = sorted({int(t) for t in np.linspace(0, n - 1, num=min(4, n)).round()})
        for frame in pick(wanted).values():
            small = landmarks.detect(frame, upsample=1)
            if small:
                raise _fail("face_too_small", f"the face is about {small[0][0].size} px, at least "
                                              f"{th.min_face_px} px are needed: hold the camera closer")
        raise _fail("no_face", f"no face was found in any of the {n} frames")
    size = float(np.nanmedian(track.face_px))
    if size < th.min_face_px:
        raise _fail("face_too_small", f"the face is {size:.0f} px (median), at least {th.min_face_px} px are "
                                      "needed: hold the camera closer")
    crowded = np.flatnonzero(track.others > 0)
    if crowded.size >= th.second_face_frames:
        raise _fail("multiple_faces", f"a second face is in view in {crowded.size} frames (first in frame "
                                      f"{crowded[0]}): only the person enrolling may be in the video")


def _check_motion(track: HeadTrack, clock: _Clock, th: LiveThresholds) -> None:
    change = track.face_change[np.isfinite(track.face_change)]
    if change.size < 2:
        return
    still = float((change < th.still_level).mean())
    abrupt = np.isfinite(track.face_change) & (track.face_change > th.jump_level)
    abrupt |= np.nan_to_num(track.frame_change, nan=0.0) > th.cut_level
    jumps = int(abrupt.sum())
    if still < th.still_share:
        return
    if jumps == 0:
        raise _fail("replayed_still", f"the face does not move: {still:.0%} of consecutive frames are near-identical "
                                      f"(face region change < {th.still_level:g} gray levels); a still image "
                                      "replayed as a video is not accepted")
    holds = jumps + 1
    raise _fail("slideshow", f"{holds} still images shown about {clock.duration / holds:.1f} s each, one "
                             f"after another ({still:.0%} of consecutive frames near-identical, {jumps} abrupt "
                             "changes): a slideshow is not a live video")


def _check_continuity(track: HeadTrack, clock: _Clock, th: LiveThresholds) -> None:
    has = track.has_face
    present = np.flatnonzero(has)
    first, last = int(present[0]), int(present[-1])
    n = len(has)
    fps, pos, times = clock.fps, clock.pos, clock.times
    cuts = np.flatnonzero(np.nan_to_num(track.frame_change, nan=0.0) > th.cut_level)
    if cuts.size:
        t = int(cuts[0])
        raise _fail("track_break", f"the picture changes abruptly between frames {t - 1} and {t} (whole-frame change "
                                   f"{track.frame_change[t]:.0f} > {th.cut_level:g} gray levels): a live video is "
                                   "one continuous take")
    slack = th.edge_slack_s * fps
    lead, tail = pos[first] - pos[0], pos[n - 1] - pos[last]
    if lead > slack + 1e-6 or tail > slack + 1e-6:
        where = (f"the first {times[first] - times[0]:.1f} s" if lead > slack + 1e-6
                 else f"the last {times[n - 1] - times[last]:.1f} s")
        raise _fail("no_face", f"the face is out of view for {where}; it must stay in view throughout")
    gap_limit = max(1, round(th.max_gap_s * fps))
    steps = np.diff(pos[present])
    gaps = np.flatnonzero((steps > gap_limit + 1e-6) & (np.diff(present) > 1))
    if gaps.size:
        a, b = int(present[gaps[0]]), int(present[gaps[0] + 1])
        lost = (pos[b] - pos[a] - 1) / fps
        raise _fail("track_break", f"the face is lost for {lost:.1f} s (frames {a + 1}-{b - 1}); it may leave the "
                                   f"view for at most {th.max_gap_s:g} s")
    for i in range(1, present.size):
        t = int(present[i])
        elapsed = max(1, round(float(steps[i - 1])))
        jump = float(track.jump[t]) / elapsed
        grow = float(track.scale_step[t]) ** (1.0 / elapsed)
        if jump > th.max_jump or grow > th.max_scale_step:
            raise _fail("track_break", f"the face jumps between frames {int(present[i - 1])} and {t} (moved "
                                       f"{jump:.2f} of its size, size x{grow:.2f} per frame; at most "
                                       f"{th.max_jump:g} and x{th.max_scale_step:g}): a live video is one "
                                       "continuous take")


def _samples(track: HeadTrack, spans: Sequence[PoseSpan], yaw: np.ndarray, pitch: np.ndarray,
             clock: _Clock) -> list[int]:
    """Frames to embed: the peak of every performed pose, the most frontal frame, and frames spread
    evenly (at least every 0.4 s, at least 8, at most 24), preferring frames where the detector saw the
    face over followed ones."""
    has = track.has_face
    good = np.flatnonzero(has & ~track.followed)
    if good.size == 0:
        good = np.flatnonzero(has)
    picks = {s.peak_frame for s in spans if has[s.peak_frame]}
    frontal = np.maximum(np.abs(yaw), np.abs(pitch))
    picks.add(int(good[int(np.nanargmin(frontal[good]))]))
    first, last = int(good[0]), int(good[-1])
    span_s = float(clock.times[last] - clock.times[first])
    count = min(_MAX_SAMPLES - len(picks), max(_MIN_SAMPLES, math.ceil(span_s / _SAMPLE_EVERY_S) + 1))
    for target in np.linspace(first, last, num=max(count, 1)):
        picks.add(int(good[int(np.argmin(np.abs(good - target)))]))
    return sorted(picks)


def _embed(backend: FaceBackend, img: np.ndarray, box: Box) -> np.ndarray | None:
    if isinstance(backend, TrackingBackend):
        return np.asarray(backend.embed(img, [Detection(box)])[0], np.float32)
    faces = backend.faces(img)
    best = max(faces, key=lambda f: f.box.iou(box), default=None)
    return best.embedding if best is not None and best.box.iou(box) > 0.3 else None


def _stretch(emb: np.ndarray) -> tuple[float, int, int]:
    """The largest distance between the mean embedding of a stretch ``[i, j)`` of consecutive samples and
    the mean of all the others (both at least 3 samples, fewer when there are fewer than 6), with ``i``
    and ``j``. A splice puts two people on either side of some stretch's edge, even when a cross-fade
    hides the cut; one person keeps every stretch near the rest, since means of several looks cancel
    most of the noise of single looks."""
    n = len(emb)
    m = min(_SEGMENT, max(1, n // 2))
    best, where = 0.0, (0, n)
    for i in range(n):
        for j in range(i + m, n + 1):
            rest = np.concatenate([emb[:i], emb[j:]])
            if len(rest) < m:
                continue
            d = float(np.linalg.norm(emb[i:j].mean(axis=0) - rest.mean(axis=0)))
            if d > best:
                best, where = d, (i, j)
    return best, where[0], where[1]


def _check_identity(taken: list[int], emb: np.ndarray, labels: Sequence[str | None], same: float,
                    across: float) -> tuple[float, float]:
    """One person throughout, comparing like with like, since a face turned 35-40 degrees is 0.3-0.5 from
    the same face frontal with dlib (docs/enrollment.md): within each pose (frontal, left, ...), no
    stretch of time against the rest further than ``same``; and every turned pose's mean against the
    frontal mean no further than ``across``. Returns the largest distance measured of each kind."""
    worst_same = worst_across = 0.0
    by_pose: dict[str, list[int]] = {}
    for k, t in enumerate(taken):
        if labels[t] is not None:
            by_pose.setdefault(str(labels[t]), []).append(k)
    for pose, ks in by_pose.items():
        if len(ks) < 2:
            continue
        d, i, j = _stretch(emb[ks])
        if d > same:
            inside = f"frames {taken[ks[i]]}-{taken[ks[j - 1]]}"
            raise _fail("identity_changed", f"{inside} do not show the same person as the other frames facing "
                                            f"'{pose}' (distance {d:.2f} > {same:.2f}): one person must be in "
                                            "view throughout")
        worst_same = max(worst_same, d)
    frontal = by_pose.get("center", [])
    if frontal:
        centre = emb[frontal].mean(axis=0)
        for pose, ks in by_pose.items():
            if pose == "center":
                continue
            d = float(np.linalg.norm(emb[ks].mean(axis=0) - centre))
            if d > across:
                raise _fail("identity_changed", f"the face turned '{pose}' (frames {taken[ks[0]]}-{taken[ks[-1]]}) "
                                                f"does not look like the face facing the camera (distance {d:.2f} > "
                                                f"{across:.2f}): one person must be in view throughout")
            worst_across = max(worst_across, d)
    return worst_same, worst_across


def _views(samples: list[int], emb: np.ndarray, labels: Sequence[str | None], yaw: np.ndarray,
           pitch: np.ndarray) -> dict[str, np.ndarray]:
    """Up to 2 embeddings per pose bin, the furthest into the pose first, near-duplicates skipped."""
    dim = emb.shape[1]
    out: dict[str, np.ndarray] = {}
    for b in POSE_BINS:
        pose = "center" if b == "frontal" else b
        idx = [k for k, t in enumerate(samples) if labels[t] == pose]
        depth = {"left": yaw, "right": -yaw, "up": pitch, "down": -pitch,
                 "center": -np.maximum(np.abs(yaw), np.abs(pitch))}[pose]
        idx.sort(key=lambda k: -float(depth[samples[k]]))
        kept: list[np.ndarray] = []
        for k in idx:
            if len(kept) == _PER_BIN:
                break
            if all(float(np.linalg.norm(emb[k] - e)) >= _DUPLICATE for e in kept):
                kept.append(emb[k])
        out[b] = np.stack(kept) if kept else np.zeros((0, dim), np.float32)
    return out


def verify_challenge(
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float | None,
    poses: Sequence[str],
    backend: FaceBackend | None = None,
    *,
    times: Sequence[float] | np.ndarray | None = None,
    thresholds: LiveThresholds = LiveThresholds(),  # noqa: B008 (frozen, so one shared default is safe)
    landmarks: LandmarkDetector | None = None,
    mirrored: bool = False,
) -> LiveResult:
    """Check that ``frames`` (RGB uint8: ``(T, H, W, 3)`` or a sequence of ``(H, W, 3)``) show one live
    person performing the challenge ``poses`` (from :func:`random_poses`), and return what was measured
    (:class:`LiveResult`). The frames were recorded at a constant ``fps``, or (``fps=None``) shown at
    ``times``: one timestamp per frame, in seconds, as a variable-rate recording's decoder reads them
    (the module docstring says how they are used). Frames are as the camera saw them (what browsers'
    MediaRecorder and phone cameras store); a client that records the mirror image it previews says
    ``mirrored=True``, or every ``left`` reads as ``right``.

    Refusals raise :class:`~detectors.errors.LivenessError` in the order the module docstring lists;
    a challenge that is not 3-5 of :data:`POSES` without repeats, or both or neither of ``fps`` and
    ``times``, is a caller's bug (``ValueError``). ``backend`` embeds faces for the identity check and
    the template views (default: dlib, as :func:`detectors.faces.default_backend`); head pose always
    comes from dlib's 68 landmarks (``landmarks``, default :func:`detectors.headpose.default_landmarks`).
    Cost, in CPU time: ~7 ms a 320x320 frame (~13 ms at 640x360) plus ~0.13 s for each of 8-24
    embeddings; 3.2 s for a 6 s, 20 fps, 320x320 video of 5 poses (measured).

    Whether the recording was made within the challenge's expiry, and by the account it was issued to,
    is for the caller to check; this function sees only pixels."""
    asked = _check_poses(poses)
    if (fps is None) == (times is None):
        raise ValueError("verify_challenge times the frames by fps or by times: give exactly one")
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise _fail("unreadable", f"expected RGB frames as a (T, H, W, 3) array, got shape {frames.shape}")
    shapes = {getattr(f, "shape", None) for f in frames}
    if len(frames) and (len(shapes) != 1 or getattr(frames[0], "dtype", None) != np.uint8):
        raise _fail("unreadable", f"frames must be RGB uint8 images of one size, got shapes {sorted(map(str, shapes))}")
    if times is None:
        rate = float(fps)  # type: ignore[arg-type]
        clock = _Clock.constant(len(frames), rate)

        def clock_of(_: np.ndarray) -> _Clock:
            return _Clock.constant(len(frames), rate)
    else:
        if len(times) != len(frames):
            raise _fail("unreadable", f"expected one timestamp per frame, got {len(times)} for {len(frames)} frames")
        clock = _measured_clock(times, asked, thresholds)

        def clock_of(_: np.ndarray) -> _Clock:
            return clock
    _check_video(clock, asked, thresholds)

    def pick(wanted: Sequence[int]) -> dict[int, np.ndarray]:
        return {t: _work_frame(frames[t])[0] for t in wanted}

    timed = zip(clock.times.tolist(), frames, strict=True)
    return _verify(timed, clock_of, asked, pick, backend, thresholds, landmarks, mirrored)


def _verify(timed: Iterable[tuple[float, np.ndarray]], clock_of: Callable[[np.ndarray], _Clock],
            asked: tuple[str, ...], pick: _Picker, backend: FaceBackend | None, th: LiveThresholds,
            landmarks: LandmarkDetector | None, mirrored: bool) -> LiveResult:
    """The checks from the face on: ``timed`` (``(seconds, frame)``) is read once, in order; ``clock_of``
    times the frames from the seconds read (refusing what :func:`_measured_clock` refuses); ``pick``
    returns chosen frames again (scaled as :func:`track_head` scales them) for the identity check and the
    reference crop."""
    landmarks = landmarks or default_landmarks()
    backend = backend or default_backend()
    try:
        track = _track(timed, landmarks)
    except DetectorError as e:
        if isinstance(e, LivenessError):
            raise
        raise _fail("unreadable", f"the frames cannot be analysed: {e}") from e
    clock = clock_of(track.time)
    _check_video(clock, asked, th)
    _check_face(track, pick, th, landmarks)
    _check_motion(track, clock, th)
    _check_continuity(track, clock, th)

    sign = -1.0 if mirrored else 1.0
    yaw, pitch = sign * _smoothed(track.yaw), _smoothed(track.pitch)
    labels = _labels(yaw, pitch, th)
    hold = max(2, math.ceil(th.hold_s * clock.fps - 1e-9))
    events = _events(labels, hold, clock.weights)
    matched, order_problem = _match(asked, events)
    spans = [_span(p, e, yaw, pitch) for p, e in zip(asked, matched, strict=False)]

    samples = _samples(track, spans, yaw, pitch, clock)
    images = pick(samples)
    looks: list[tuple[int, np.ndarray]] = []
    for t in samples:
        box = track.boxes[t]
        emb = _embed(backend, images[t], box) if box is not None and t in images else None
        if emb is not None:
            looks.append((t, emb))
    if not looks:
        raise _fail("no_face", "no face in the video could be embedded")
    taken = [t for t, _ in looks]
    emb = np.stack([e for _, e in looks]).astype(np.float32)
    same = th.identity_distance if th.identity_distance is not None else _match_threshold(backend)
    across = th.pose_identity_distance if th.pose_identity_distance is not None else same * _ACROSS_POSES
    within, between = _check_identity(taken, emb, labels, same, across)

    reached = {e.pose for e in events}
    for pose in asked:
        if pose not in reached:
            raise _fail("pose_not_reached", _never_reached(pose, yaw, pitch, labels, th, clock))
    if order_problem is not None:
        raise _fail("pose_order", order_problem)

    views = _views(taken, emb, labels, yaw, pitch)
    ref_t = min(taken, key=lambda t: (float(max(abs(yaw[t]), abs(pitch[t]))), -int(track.face_px[t])))
    ref_box = track.boxes[ref_t]
    assert ref_box is not None  # every embedded frame has a face
    reference = crop_face(images[ref_t], ref_box)
    return LiveResult(poses=asked, spans=tuple(spans), yaw=sign * track.yaw, pitch=track.pitch, fps=float(clock.rate),
                      views=views, reference=reference, backend=backend.name, identity_distance=within,
                      pose_distance=between, thresholds=th)


def _match_threshold(backend: FaceBackend) -> float:
    from detectors.matching import threshold_for

    return threshold_for(backend)


def verify_video(
    source: str | os.PathLike[str] | bytes,
    poses: Sequence[str],
    backend: FaceBackend | None = None,
    *,
    thresholds: LiveThresholds = LiveThresholds(),  # noqa: B008
    landmarks: LandmarkDetector | None = None,
    mirrored: bool = False,
) -> LiveResult:
    """:func:`verify_challenge` on a video file (a path or its bytes), decoded with :mod:`media.video`.
    The video is decoded twice, frames scaled to at most 640 px: once, in order, to measure every
    frame, and once more for the 8-24 frames embedded; no more than two frames are held at a time
    besides those. Frames are timed by their timestamps (a browser's WebM is variable-rate: see the
    module docstring); timestamps within a quarter frame of an even grid at the rate :func:`media.video.probe`
    measures are that constant rate, and a video whose frames carry none is timed by that rate. Decoding
    stops at the first frame shown after ``thresholds.max_seconds`` (``too_long``), at timestamps that go
    backwards (``unreadable``) or pause longer than ``thresholds.max_gap_s`` (``track_break``), and at more
    than 240 frames a second (``frame_rate``); a video whose header already says it is too long is
    refused without decoding, and one that cannot be decoded is ``unreadable``."""
    from media.video import MediaError, probe, video_source

    asked = _check_poses(poses)
    th = thresholds
    try:
        src = video_source(source)
        info = probe(_rewound(src))
    except MediaError as e:
        raise _fail("unreadable", f"the video cannot be read: {e}") from e
    fps = info.fps
    if not fps > 0:
        raise _fail("unreadable", "the video has no frame rate")
    if info.duration_s > th.max_seconds + 1.0 / fps:
        raise _fail("too_long", f"the video lasts {info.duration_s:.1f} s; at most {th.max_seconds:.0f} s "
                                "are accepted")
    cap = math.floor(th.max_seconds * _MAX_FPS) + 1  # frames within max_seconds at most
    stamped: list[bool] = []

    def first_pass() -> Iterator[tuple[float, np.ndarray]]:
        """Every frame, in order, with its time from the first frame's (seconds), checked as it comes."""
        start = before = 0.0
        for t, seconds, frame in _decoded(src, cap + 1):
            if t == 0:
                stamped.append(seconds is not None)
                start = before = seconds if seconds is not None else 0.0
            if not stamped[0]:
                if seconds is not None:
                    raise _fail("unreadable", f"frame {t} has a timestamp while the first frame has none")
                if t > th.max_seconds * fps:
                    return
                yield t / fps, frame
                continue
            now = seconds if seconds is not None else math.nan
            if t:
                _check_step(t, before, now, th)
            if t >= cap:
                raise _fail("frame_rate", f"the video holds more than {cap} frames in its first "
                                          f"{th.max_seconds:g} s; at most {_MAX_FPS:.0f} a second are accepted")
            before = now
            yield now - start, frame
            if now - start > th.max_seconds:
                return

    def clock_of(times: np.ndarray) -> _Clock:
        n = times.size
        if stamped and not stamped[0]:
            return _Clock.constant(n, fps)
        on_grid = np.abs(times - np.arange(n) / fps) <= _ON_GRID / fps
        return _Clock.constant(n, fps) if n and bool(on_grid.all()) else _measured_clock(times, asked, th)

    def pick(wanted: Sequence[int]) -> dict[int, np.ndarray]:
        chosen = set(wanted)
        return {t: frame for t, _, frame in _decoded(src, max(chosen) + 1) if t in chosen} if chosen else {}

    return _verify(first_pass(), clock_of, asked, pick, backend, th, landmarks, mirrored)


def _decoded(src: str | io.BytesIO, max_frames: int) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """``(index, seconds or None, frame scaled for the checks)`` of the first ``max_frames`` frames."""
    from media.video import MediaError, iter_timed_frames

    try:
        for t, seconds, frame in iter_timed_frames(_rewound(src), max_frames=max_frames):
            yield t, seconds, _work_frame(frame)[0]
    except MediaError as e:
        raise _fail("unreadable", f"the video cannot be read: {e}") from e


def _rewound(src: str | io.BytesIO) -> str | io.BytesIO:
    if isinstance(src, io.BytesIO):
        src.seek(0)
    return src
