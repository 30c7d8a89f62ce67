"""The root of every error ConsentGate raises on purpose, :class:`ConsentGateError`, and the errors of
:mod:`media` under it: :class:`MediaError` and :class:`LimitExceeded`.

The root lives here because :mod:`media` is the one package every other may import (the libraries share its
helpers). Each package has one family under it: ``MediaError``, ``detectors.errors.DetectorError``,
``provenance.errors.ProvenanceError``, ``generator.base.GeneratorError`` (and ``GeneratorBusy``),
``policies.characters.PolicyError``, and the service's ``governance.errors.GovernanceError`` (every answer
with an HTTP status) and ``governance.errors.ConfigError``. Anything else that escapes is a bug::

    >>> from media.errors import ConsentGateError, LimitExceeded, MediaError
    >>> issubclass(LimitExceeded, MediaError) and issubclass(MediaError, ConsentGateError)
    True
"""

from __future__ import annotations

__all__ = ["ConsentGateError", "LimitExceeded", "MediaError"]


class ConsentGateError(Exception):
    """Base of every error ConsentGate raises on purpose; ``str()`` is a one-line message for a person."""


class MediaError(ConsentGateError):
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
