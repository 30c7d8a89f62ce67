"""One decode of an upload for both readers of a verification (and of a soft-binding query by content): the
watermark's evidence and the fingerprint, under the request's decoding limits (:func:`read_upload`)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from media.limits import Meter
    from provenance.fingerprint import Fingerprint, FingerprintBuilder
    from provenance.watermark import MarkReader, WatermarkDetection, WatermarkKey

__all__ = ["Read", "read_upload"]


@dataclass
class Read:
    """What one decode of the upload gave each reader, or why that reader got nothing."""

    marks: MarkReader | None = None
    watermark_error: Exception | None = None
    prints: FingerprintBuilder | None = None
    fingerprint_error: Exception | None = None
    decode_error: Exception | None = None  # what stopped the decoder (MediaError), whoever was reading

    def watermark(self) -> tuple[WatermarkDetection, WatermarkKey] | None:
        """The verified mark and the key that made it, or None; or the error that stopped the watermark's
        reader."""
        if self.watermark_error is not None:
            raise self.watermark_error
        if self.marks is None:
            raise RuntimeError("the watermark reader was not asked for")
        return self.marks.result()

    def fingerprint(self) -> Fingerprint | None:
        """The fingerprint (None when its reader was not asked for), or the error that stopped its reader."""
        if self.fingerprint_error is not None:
            raise self.fingerprint_error
        return None if self.prints is None else self.prints.fingerprint()


def read_upload(data: bytes, kind: str, *, watermark_keys: Sequence[WatermarkKey], fingerprint: bool,
                meter: Meter) -> Read:
    """Decode the upload once for both readers, under ``meter``'s limits: the watermark with every one of
    ``watermark_keys`` (none: not read) from the luma of the first :data:`provenance.watermark.DETECT_MAX_FRAMES`
    frames, stopping early once a mark verifies (:class:`provenance.watermark.MarkReader`), and the fingerprint's
    thumbnails from every frame, both read from the decoder's planes (:func:`media.video.iter_planes`; no RGB
    conversion of whole frames). Frames stream through, so memory stays about one frame. A reader whose input
    fails is dropped with its error; the other one goes on. A crossed limit (:class:`~media.limits.LimitExceeded`)
    stops both and is raised."""
    from media.video import LimitExceeded, MediaError, iter_planes, load_image
    from provenance.errors import FingerprintError, WatermarkError
    from provenance.fingerprint import FingerprintBuilder
    from provenance.watermark import EVIDENCE_MAX_SIDE, MarkReader

    out = Read(marks=MarkReader(watermark_keys) if watermark_keys else None,
               prints=FingerprintBuilder() if fingerprint else None)
    if kind != "video":
        if out.marks is not None:
            try:
                out.marks.evidence.add(load_image(data, meter=meter, max_side=EVIDENCE_MAX_SIDE))
            except LimitExceeded:
                raise
            except (MediaError, WatermarkError) as e:
                out.marks, out.watermark_error = None, e
                if isinstance(e, MediaError):
                    out.decode_error = e
        return out
    try:
        # the readers take luma and thumbnails straight from the decoder's planes (no full-size RGB frame), the
        # decode running a few frames ahead on a second thread
        # (up to nine frames beyond the last one read may be decoded, and counted by the meter, meanwhile)
        with contextlib.closing(iter_planes(io.BytesIO(data), meter=meter, ahead=8, name="verify-decode")) as decoded:
            for _, planes in decoded:
                if out.marks is not None and not out.marks.done:
                    try:
                        out.marks.add_luma(planes.luma)
                    except WatermarkError as e:
                        out.marks, out.watermark_error = None, e
                if out.prints is not None:
                    try:
                        out.prints.add_planes(planes)
                    except FingerprintError as e:
                        out.prints, out.fingerprint_error = None, e
                if out.prints is None and (out.marks is None or out.marks.done):
                    break  # nobody needs more frames
    except LimitExceeded:
        raise
    except MediaError as e:
        out.decode_error = e
        if out.marks is not None and not out.marks.done:
            out.marks, out.watermark_error = None, e
        if out.prints is not None:
            out.prints, out.fingerprint_error = None, FingerprintError(f"not a readable video: {e}")
    return out
