"""Turning uploaded bytes into frames, with clear rejections. Nothing here writes to disk."""

from __future__ import annotations

import io

import numpy as np

from governance.errors import InvalidInput, UnsupportedMedia

MAX_PIXELS = 40_000_000  # a larger still is refused before it is decoded (decompression bombs)
MAX_VIDEO_S = 60.0
MAX_SIDE = 1280  # enrollment works on downscaled copies: faces stay large, detection stays fast
ENROLL_FRAMES = 40


def media_kind(data: bytes) -> str:
    from media.video import sniff_kind

    if not data:
        raise InvalidInput("the upload is empty")
    kind = sniff_kind(data[:16])
    if kind is None:
        raise UnsupportedMedia("expected a JPEG, PNG or WebP photo or an MP4/WebM video; the bytes are neither")
    return kind


def image_size(data: bytes) -> tuple[int, int]:
    """A still's width and height, from its header: a decompression bomb (a small file that would decode to
    more than :data:`MAX_PIXELS` pixels) is refused (422) before anything decodes it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError as e:  # Pillow's own limit, far above ours: the size is in the header
        raise InvalidInput(f"the image is larger than {MAX_PIXELS // 1_000_000} megapixels, the most accepted") from e
    except UnidentifiedImageError as e:
        raise UnsupportedMedia("the image cannot be read: it is not a JPEG, PNG or WebP file") from e
    except Exception as e:  # Pillow's format plugins raise what they like on a broken header
        raise UnsupportedMedia(f"the image cannot be read: {e}") from e
    if w * h > MAX_PIXELS:
        raise InvalidInput(f"the image is {w}x{h}; at most {MAX_PIXELS // 1_000_000} megapixels are accepted")
    return w, h


def decode_image(data: bytes) -> np.ndarray:
    from media.video import MediaError, load_image

    image_size(data)
    try:
        return _downscale(load_image(data))
    except MediaError as e:
        raise UnsupportedMedia(str(e)) from e


def sample_video(data: bytes, *, max_frames: int = ENROLL_FRAMES) -> list[np.ndarray]:
    from media.video import MediaError, iter_frames, probe

    try:
        info = probe(io.BytesIO(data))
        if info.width * info.height > MAX_PIXELS:
            raise InvalidInput(f"the video is {info.width}x{info.height}; too large")
        if info.duration_s > MAX_VIDEO_S:
            raise InvalidInput(f"the video lasts {info.duration_s:.0f} s; at most {MAX_VIDEO_S:.0f} s are accepted")
        every = max(1, int(round(info.fps / 4)))  # about 4 frames a second
        frames = [_downscale(f) for _, f in iter_frames(io.BytesIO(data), every=every)]
    except MediaError as e:
        raise UnsupportedMedia(f"the video cannot be read: {e}") from e
    if len(frames) > max_frames:
        picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in picks]
    return frames


def enrollment_frames(blobs: list[bytes]) -> tuple[list[np.ndarray], bool]:
    """Decoded photos and sampled video frames, and whether the input was video only (a selfie video must
    show the head turning: liveness-lite)."""
    if not blobs:
        raise InvalidInput("send one or more photos, or a short video, in the multipart field 'media'")
    frames: list[np.ndarray] = []
    kinds = set()
    for data in blobs:
        kind = media_kind(data)
        kinds.add(kind)
        if kind == "image":
            frames.append(decode_image(data))
        else:
            frames.extend(sample_video(data))
    return frames, kinds == {"video"}


def _downscale(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return rgb
    import cv2

    return cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
