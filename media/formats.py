"""What a file is, from its first bytes: one table for the decoders and for the C2PA reader.

    >>> from media.formats import sniff
    >>> sniff(b"\\x00\\x00\\x00\\x20ftypavif\\x00\\x00\\x00\\x00avifmif1")
    Format(mime='image/avif', kind='image', name='AVIF')

``kind`` is ``"image"`` (a still, or the first frame of an animated image), ``"video"``, ``"audio"`` or
``"document"``. ISO-BMFF files (``ftyp``) are told apart by their major brand: ``avif``/``heic``/``mif1``
and friends are still images (phones save photos that way), ``M4A`` is audio, the rest is video.
Every format here except Matroska/WebM is one that c2pa-python reads (``c2pa`` is False for WebM).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HEAD_BYTES", "Format", "sniff", "sniff_kind"]

HEAD_BYTES = 64
"""How many leading bytes :func:`sniff` needs."""

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}


@dataclass(frozen=True)
class Format:
    """A file format: its MIME type (as c2pa-python names it), kind and a short name for messages;
    ``c2pa``: whether c2pa-python reads it; ``pixels``: whether :mod:`media` decodes its pictures."""

    mime: str
    kind: str
    name: str
    c2pa: bool = field(default=True, repr=False, compare=False)
    pixels: bool = field(default=True, repr=False, compare=False)


def sniff(head: bytes) -> Format | None:
    """The format of a file starting with ``head`` (:data:`HEAD_BYTES` are enough), or None."""
    head = bytes(head[:HEAD_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return Format("image/jpeg", "image", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Format("image/png", "image", "PNG")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Format("image/gif", "image", "GIF")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return Format("image/tiff", "image", "TIFF")
    if head[:4] == b"RIFF" and len(head) >= 12:
        sub = head[8:12]
        if sub == b"WEBP":
            return Format("image/webp", "image", "WebP")
        if sub == b"WAVE":
            return Format("audio/wav", "audio", "WAV", pixels=False)
        if sub == b"AVI ":
            return Format("video/x-msvideo", "video", "AVI")
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return Format("image/avif", "image", "AVIF")
        if brand in _HEIF_BRANDS:
            return Format("image/heic" if brand.startswith(b"he") else "image/heif", "image", "HEIF")
        if brand in _AUDIO_BRANDS:
            return Format("audio/mp4", "audio", "M4A", pixels=False)
        if brand == b"qt  ":
            return Format("video/quicktime", "video", "QuickTime")
        return Format("video/mp4", "video", "MP4")
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"free", b"wide", b"uuid", b"skip"):
        return Format("video/mp4", "video", "MP4")  # a QuickTime file without ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Format("video/webm", "video", "Matroska/WebM", c2pa=False)
    if head.startswith(b"fLaC"):
        return Format("audio/flac", "audio", "FLAC", pixels=False)
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xfa"):
        return Format("audio/mpeg", "audio", "MP3", pixels=False)
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return Format("image/jxl", "image", "JPEG XL", pixels=False)
    if head.startswith(b"%PDF-"):
        return Format("application/pdf", "document", "PDF", pixels=False)
    return None


def sniff_kind(head: bytes) -> str | None:
    """``"image"``, ``"video"``, ``"audio"``, ``"document"`` or None: the kind of :func:`sniff`."""
    fmt = sniff(head)
    return fmt.kind if fmt is not None else None
