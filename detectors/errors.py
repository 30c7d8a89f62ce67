"""The one exception family of :mod:`detectors`.

Every failure the library reports is a :class:`DetectorError`; enrollment rejections and scan
refusals carry a stable machine-readable ``reason`` so the service can map them to a user-facing
message::

    >>> from detectors.errors import EnrollmentError, LivenessError, ScanError
    >>> err = EnrollmentError("no_face", "no face was found in any of the 3 images")
    >>> err.reason
    'no_face'
    >>> str(ScanError("too_large", "a 8000x6000 frame is larger than 4096x2304"))
    'too_large: a 8000x6000 frame is larger than 4096x2304'
    >>> LivenessError("pose_not_reached", "pose 'up' never reached: max pitch 6 deg, need 15").reason
    'pose_not_reached'
"""

from __future__ import annotations

from typing import Final

from media.errors import ConsentGateError

__all__ = [
    "ENROLLMENT_REASONS", "LIVENESS_REASONS", "SCAN_REASONS", "DetectorError", "EnrollmentError", "LivenessError",
    "ScanError",
]

#: The reason codes an :class:`EnrollmentError` may carry. ``single_pose``: a selfie video whose
#: face never turns (a replayed still photo looks like that); ``too_short``: too few usable frames.
ENROLLMENT_REASONS: Final = frozenset({
    "no_face", "multiple_people", "face_too_small", "too_blurry", "unreadable", "single_pose", "too_short",
})
#: The reason codes a :class:`ScanError` may carry.
SCAN_REASONS: Final = frozenset({"unreadable", "too_large", "too_long", "too_many_faces"})
#: The reason codes a :class:`LivenessError` may carry (the live challenge, :mod:`detectors.liveness`):
#: the video as a whole (``unreadable``, ``too_short``, ``too_long``, ``frame_rate``), the face in it
#: (``no_face``, ``face_too_small``, ``multiple_faces``), a picture that does not move like a live head
#: (``replayed_still``, ``slideshow``), one continuous take of one person (``track_break``: a cut, a
#: jump of the face or the face lost for too long; ``identity_changed``), and the challenge itself
#: (``pose_not_reached``, ``pose_order``).
LIVENESS_REASONS: Final = frozenset({
    "unreadable", "too_short", "too_long", "frame_rate", "no_face", "face_too_small", "multiple_faces",
    "replayed_still", "slideshow", "track_break", "identity_changed", "pose_not_reached", "pose_order",
})


class DetectorError(ConsentGateError):
    """Face detection, enrollment, indexing or scanning could not be done as asked."""


class _ReasonedError(DetectorError):
    REASONS: frozenset[str] = frozenset()

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown {type(self).__name__} reason {reason!r}; expected one of {sorted(self.REASONS)}")
        super().__init__(reason, message)  # both in args, so the error survives pickling
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r})"


class EnrollmentError(_ReasonedError):
    """The enrollment images cannot make a template; ``reason`` says why (see :data:`ENROLLMENT_REASONS`)."""

    REASONS = ENROLLMENT_REASONS


class ScanError(_ReasonedError):
    """A file or clip cannot be scanned as given; ``reason`` says why (see :data:`SCAN_REASONS`). A scan
    that cannot vouch for its input fails closed with this error rather than report "nobody found"."""

    REASONS = SCAN_REASONS


class LivenessError(_ReasonedError):
    """A selfie video does not pass the live challenge; ``reason`` says why (see
    :data:`LIVENESS_REASONS`) and the message says what was measured against what was needed, e.g.
    ``pose 'up' never reached: max pitch 6 deg, need 15``."""

    REASONS = LIVENESS_REASONS
