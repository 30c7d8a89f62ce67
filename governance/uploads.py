"""Turning uploaded bytes into frames, with clear rejections. Nothing here writes to disk.

Every decode runs under the request's :class:`~media.limits.Meter` (``governance.admission``): a crossed
limit is a 422 naming it, an unreadable file a 415.
"""

from __future__ import annotations

import numpy as np

from governance.errors import InvalidInput, UnsupportedMedia
from media.limits import DEFAULT_LIMITS, Meter

MAX_SIDE = 1280  # enrollment works on downscaled copies: faces stay large, detection stays fast
ENROLL_FRAMES = 40  # frames spread over a selfie video (about 4 a second), judged for the face and its turning


def media_kind(data: bytes) -> str:
    """``"image"``, ``"video"``, ``"audio"`` or ``"document"`` (:func:`media.formats.sniff`); 422 for no
    bytes, 415 for bytes that are none of them."""
    from media.formats import HEAD_BYTES, sniff_kind

    if not data:
        raise InvalidInput("the upload is empty")
    kind = sniff_kind(data[:HEAD_BYTES])
    if kind is None:
        raise UnsupportedMedia("expected a photo (JPEG, PNG, WebP, HEIF, AVIF, GIF, TIFF) or a video (MP4, MOV, "
                               "WebM); the bytes are none of these")
    return kind


def image_size(data: bytes, meter: Meter | None = None) -> tuple[int, int]:
    """A still's width and height, from its header: a decompression bomb (a small file that would decode to
    more than the ``image_pixels`` limit) is refused (422 naming it) before anything decodes it; a file with
    no readable image header is 415."""
    from governance.admission import limit_error
    from media.image import image_size as header_size
    from media.video import LimitExceeded, MediaError

    try:
        return header_size(data, limits=meter.limits if meter is not None else DEFAULT_LIMITS)
    except LimitExceeded as e:
        raise limit_error(e) from e
    except MediaError as e:
        raise UnsupportedMedia(f"the image cannot be read: {e}") from e


def decode_image(data: bytes, meter: Meter | None = None) -> np.ndarray:
    """An upright 8-bit RGB photo, its longer side at most :data:`MAX_SIDE`."""
    from governance.admission import limit_error
    from media.image import load_image
    from media.video import LimitExceeded, MediaError

    try:
        return load_image(data, meter=meter or Meter(DEFAULT_LIMITS), max_side=MAX_SIDE)
    except LimitExceeded as e:
        raise limit_error(e) from e
    except MediaError as e:
        raise UnsupportedMedia(f"the photo cannot be read: {e}") from e


def sample_video(data: bytes, *, max_frames: int = ENROLL_FRAMES, meter: Meter | None = None) -> list[np.ndarray]:
    """Up to ``max_frames`` upright frames spread over the whole video, decoded under the meter's limits
    (the length is counted while decoding, never taken from the header)."""
    from governance.admission import limit_error
    from media.video import LimitExceeded, MediaError, sample_frames

    try:
        return sample_frames(data, max_frames, per_second=4.0, max_side=MAX_SIDE,
                             meter=meter or Meter(DEFAULT_LIMITS.but(seconds=60.0)))
    except LimitExceeded as e:
        raise limit_error(e) from e
    except MediaError as e:
        raise UnsupportedMedia(f"the video cannot be read: {e}") from e


def enrollment_frames(blobs: list[bytes], meter: Meter | None = None) -> tuple[list[np.ndarray], bool]:
    """Decoded photos and sampled video frames, and whether the input was video only (a selfie video must
    show the head turning: liveness-lite)."""
    if not blobs:
        raise InvalidInput("send one or more photos, or a short video, in the multipart field 'media'")
    check_photos(len(blobs), meter)
    frames: list[np.ndarray] = []
    kinds = set()
    for data in blobs:
        kind = media_kind(data)
        kinds.add(kind)
        if kind == "image":
            frames.append(decode_image(data, meter))
        elif kind == "video":
            frames.extend(sample_video(data, meter=meter))
        else:
            raise UnsupportedMedia(f"an {kind} file shows no face: send photos or a short selfie video")
    return frames, kinds == {"video"}


def reference_images(blobs: list[bytes], meter: Meter | None = None, *,
                     what: str = "reference images must be photos or stills") -> list[np.ndarray]:
    """Decoded reference images (photos or stills, never videos: 422 saying ``what``), for a character or a
    protected figure; at most ``max_photos`` of them (:func:`check_photos`)."""
    check_photos(len(blobs), meter)
    images = []
    for blob in blobs:
        if media_kind(blob) != "image":
            raise InvalidInput(f"{what} (JPEG, PNG, WebP, HEIF, AVIF), not videos")
        images.append(decode_image(blob, meter))
    return images


def check_photos(count: int, meter: Meter | None) -> None:
    """422 naming the ``photos`` limit when a request carries more files than it allows."""
    from governance.admission import limit_error
    from media.video import LimitExceeded

    try:
        (meter.limits if meter is not None else DEFAULT_LIMITS).check("photos", count, "files in the request")
    except LimitExceeded as e:
        raise limit_error(e) from e


MAX_CHALLENGE_S = 20.0  # a live challenge's video at most (detectors.liveness.LiveThresholds.max_seconds)


def challenge_video(blobs: list[bytes], meter: Meter | None = None) -> bytes:
    """The one selfie video answering a live challenge, checked as far as its header: exactly one file, a
    video whose header reads (415 otherwise), not declared longer than :data:`MAX_CHALLENGE_S` (422
    ``too_long``). Refused here, the challenge stays unused; the live check decodes it
    (:func:`detectors.liveness.verify_video`, frames at most 640 px, two held at a time)."""
    from governance.admission import limit_error
    from media.video import LimitExceeded, MediaError, probe

    if len(blobs) != 1:
        raise InvalidInput(f"a live challenge is answered with exactly one selfie video in the field 'media', "
                           f"got {len(blobs)} files")
    data = blobs[0]
    if media_kind(data) != "video":
        raise InvalidInput("a live challenge is answered with a selfie video (MP4, MOV or WebM), not a photo")
    try:
        info = probe(data, limits=meter.limits if meter is not None else DEFAULT_LIMITS)
    except LimitExceeded as e:
        raise limit_error(e) from e
    except MediaError as e:
        raise UnsupportedMedia(f"the video cannot be read: {e}") from e
    if info.duration_s > MAX_CHALLENGE_S:
        raise InvalidInput(f"the video lasts {info.duration_s:.1f} s; a challenge video lasts at most "
                           f"{MAX_CHALLENGE_S:.0f} s", reason="too_long")
    return data
