"""What both sides of a C2PA manifest agree on: the labels of our custom assertions, written by
:mod:`provenance.c2pa_seal` and read by :mod:`provenance.verify`, and the MIME type c2pa reads a file as::

    >>> from provenance.labels import mime_for
    >>> mime_for(bytes.fromhex("000000186674797069736f6d")[:12] + bytes(4))
    'video/mp4'
"""

from __future__ import annotations

from provenance.errors import VerificationError

__all__ = ["DISCLOSURE_LABEL", "GENERATOR_LABEL", "GOVERNANCE_LABEL", "mime_for"]

DISCLOSURE_LABEL = "org.consentgate.disclosure"
"""Label of the custom assertion holding SB 942's latent disclosure and the visible label's declaration."""

GOVERNANCE_LABEL = "org.consentgate.governance"
"""Label of the custom assertion holding :attr:`ManifestSpec.governance`."""

GENERATOR_LABEL = "org.consentgate.generator"
"""Label of the custom assertion holding the generator's name, version and ``learned_weights``."""


def mime_for(head: bytes) -> str:
    """The MIME type c2pa should read a file as, from its first bytes (16 are enough, 64 are safer).

    Knows every format of :func:`media.formats.sniff` that c2pa-python reads: JPEG, PNG, WebP, GIF, TIFF,
    JPEG XL, the ISO BMFF family (MP4, MOV, M4A, HEIF/HEIC, AVIF), AVI, WAV, MP3, FLAC and PDF.
    Raises :class:`VerificationError` for anything else, naming what it saw.
    """
    from media.formats import sniff

    if not head:
        raise VerificationError("expected the first bytes of an image or video, got no bytes")
    fmt = sniff(head)
    if fmt is not None and fmt.c2pa:
        return fmt.mime
    if fmt is not None:
        raise VerificationError(f"expected MP4, MOV or an image; got {fmt.name}, which cannot carry a C2PA manifest")
    raise VerificationError(
        "expected an image (JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF), a video (MP4, MOV, AVI), audio (WAV, MP3, "
        f"FLAC) or a PDF, got bytes starting {head[:12]!r}"
    )
