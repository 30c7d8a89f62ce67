"""One error family for the provenance library; callers catch :class:`ProvenanceError` (a
:class:`media.errors.ConsentGateError`)."""

from media.errors import ConsentGateError


class ProvenanceError(ConsentGateError):
    """Base of every error raised by ``provenance``."""


class SigningError(ProvenanceError):
    """A manifest could not be built or signed."""


class VerificationError(ProvenanceError):
    """The input could not be read for verification (not the same as an *invalid* manifest)."""


class WatermarkError(ProvenanceError):
    """Bad watermark input: wrong payload size, too few or too small frames, a bad key."""


class FingerprintError(ProvenanceError):
    """The input cannot be fingerprinted (not a video, no frames) or a stored fingerprint is malformed."""


def one_line(e: BaseException) -> str:
    """``e``'s message on one line (c2pa's errors span several), or its type's name when it has none."""
    return " ".join(str(e).split()) or type(e).__name__
