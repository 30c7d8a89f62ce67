"""Turning uploaded bytes into frames, with clear rejections. Nothing here writes to disk."""

from __future__ import annotations

import io
import math

import numpy as np

from governance.errors import InvalidInput, UnsupportedMedia

MAX_PIXELS = 40_000_000  # a larger still is refused before it is decoded (decompression bombs)
MAX_VIDEO_S = 60.0
MAX_CHALLENGE_S = 20.0  # a live challenge's video at most (detectors.liveness.LiveThresholds.max_seconds)
MAX_CHALLENGE_FPS = 30.0  # faster videos are decimated to about this (20 s at 640 px: ~0.4 GB at most)
CHALLENGE_SIDE = 640  # challenge frames are decoded at most this large: faces stay large, checks stay fast
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


def challenge_video(blobs: list[bytes]) -> tuple[list[np.ndarray], float]:
    """The frames (RGB, longest side at most :data:`CHALLENGE_SIDE`) and frame rate of the one selfie video
    answering a live challenge; above :data:`MAX_CHALLENGE_FPS` every k-th frame. Anything else (no file,
    several, a photo, an unreadable video, one longer than :data:`MAX_CHALLENGE_S`: reason ``too_long``) is
    refused here, before anything is decoded or the challenge touched."""
    from media.video import MediaError, iter_frames, probe

    if len(blobs) != 1:
        raise InvalidInput(f"a live challenge is answered with exactly one selfie video in the field 'media', "
                           f"got {len(blobs)} files")
    data = blobs[0]
    if media_kind(data) != "video":
        raise InvalidInput("a live challenge is answered with a selfie video (MP4 or WebM), not a photo")
    try:
        info = probe(io.BytesIO(data))
        if info.width * info.height > MAX_PIXELS:
            raise InvalidInput(f"the video is {info.width}x{info.height}; too large")
        if info.duration_s > MAX_CHALLENGE_S:
            raise InvalidInput(f"the video lasts {info.duration_s:.1f} s; a challenge video lasts at most "
                               f"{MAX_CHALLENGE_S:.0f} s", reason="too_long")
        every = max(1, math.ceil(info.fps / MAX_CHALLENGE_FPS - 0.01))  # 60 fps: every 2nd frame
        limit = int(MAX_CHALLENGE_S * info.fps) + 1
        frames = [_downscale(f, CHALLENGE_SIDE) for _, f in iter_frames(io.BytesIO(data), every=every,
                                                                        max_frames=limit)]
    except MediaError as e:
        raise UnsupportedMedia(f"the video cannot be read: {e}") from e
    if not frames:
        raise UnsupportedMedia("the video has no frames")
    return frames, float(info.fps) / every


def _downscale(rgb: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    import cv2

    return cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
