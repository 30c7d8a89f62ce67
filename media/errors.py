"""The errors of :mod:`media`: one base, :class:`MediaError`, and :class:`LimitExceeded` under it."""

from __future__ import annotations

__all__ = ["LimitExceeded", "MediaError"]


class MediaError(Exception):
    """The input could not be read or written as the expected kind of media."""


class LimitExceeded(MediaError):
    """Decoding stopped because the input crossed a limit (:class:`media.limits.Limits`).

    ``limit`` is the limit's name (``"frame_pixels"``, ``"seconds"``...), ``value`` what the input reached
    (at least) and ``allowed`` the limit. ``str()`` is a one-line message that says both, for a person.
    Catch it before :class:`MediaError`: it is a refusal of the input's size, not of its format.
    """

    def __init__(self, limit: str, value: float, allowed: float, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.allowed = allowed
