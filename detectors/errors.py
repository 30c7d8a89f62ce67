"""The one exception family of :mod:`detectors`.

Every failure the library reports is a :class:`DetectorError`; enrollment rejections carry a stable
machine-readable ``reason`` so the service can map them to a user-facing message::

    >>> from detectors.errors import EnrollmentError
    >>> err = EnrollmentError("no_face", "no face was found in any of the 3 images")
    >>> err.reason
    'no_face'
"""

from __future__ import annotations

from typing import Final

__all__ = ["ENROLLMENT_REASONS", "DetectorError", "EnrollmentError"]

#: The reason codes an :class:`EnrollmentError` may carry.
ENROLLMENT_REASONS: Final = frozenset({"no_face", "multiple_people", "face_too_small", "too_blurry", "unreadable"})


class DetectorError(Exception):
    """Face detection, enrollment, indexing or scanning could not be done as asked."""


class EnrollmentError(DetectorError):
    """The enrollment images cannot make a template; ``reason`` says why (see :data:`ENROLLMENT_REASONS`)."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in ENROLLMENT_REASONS:
            raise ValueError(f"unknown enrollment reason {reason!r}; expected one of {sorted(ENROLLMENT_REASONS)}")
        super().__init__(reason, message)  # both in args, so the error survives pickling
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __repr__(self) -> str:
        return f"EnrollmentError({self.reason!r}, {self.message!r})"
