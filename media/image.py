"""Still images: decode any photo a phone, camera or browser makes to (H, W, 3) uint8 RGB, under limits.

    >>> from media.image import load_image
    >>> load_image("../shared/testdata/faces/obama.jpg").shape
    (1137, 910, 3)
    >>> int(load_image("../shared/testdata/field-reports/face-gray16.png").mean())  # 16-bit: not all white
    72

Readers: Pillow for JPEG, PNG, GIF, TIFF, WebP and AVIF (Pillow >= 11.2 bundles libavif), pillow-heif
for HEIF/HEIC (docs/adr/0006-media-limits-and-formats.md). What is normalised, so that every caller sees
the same upright 8-bit RGB:

- orientation: the EXIF orientation tag (JPEG, TIFF, WebP, PNG); HEIF ``irot``/``imir`` (pillow-heif
  applies them);
- bit depth: 16-bit and 32-bit integer samples keep their high byte (a 16-bit grayscale portrait is not
  clipped to white), float samples in [0, 1] are scaled to [0, 255];
- colour: CMYK through its embedded ICC profile when there is one (else Pillow's plain conversion),
  palette and grayscale expanded, transparency (LA, PA, RGBA, palette with a transparent index)
  composited over white;
- animation: the first frame of an animated GIF, WebP or AVIF.

The pixel count is read from the header and refused (:class:`~media.limits.LimitExceeded`) before any
pixel is decoded; the decoder itself then cannot produce more pixels than the header states.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from typing import Any, BinaryIO

import numpy as np

from media.errors import LimitExceeded, MediaError
from media.limits import DEFAULT_LIMITS, Limits, Meter

__all__ = ["image_size", "load_image"]

Source = str | os.PathLike[str] | bytes | BinaryIO

_HEIF_LOCK = threading.Lock()
_heif_registered = False

# bytes per pixel of Pillow's decoded modes (for the memory estimate)
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 4, "PA": 4, "La": 4, "RGB": 4, "YCbCr": 4, "LAB": 4, "HSV": 4,
               "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4, "F": 4, "I;16": 2, "I;16L": 2, "I;16B": 2,
               "I;16N": 2}


def load_image(source: Source, *, limits: Limits | None = DEFAULT_LIMITS, meter: Meter | None = None,
               max_side: int | None = None) -> np.ndarray:
    """Decode a still image to an upright (H, W, 3) uint8 RGB array (see the module docstring).

    ``limits`` (default :data:`~media.limits.DEFAULT_LIMITS`; ``meter.limits`` when a meter is given;
    None: unlimited, for trusted files only) bounds ``image_pixels`` and ``memory_bytes``, both checked
    from the header before decoding. ``max_side`` shrinks the result so that its longer side is at most
    that many pixels (area averaging); JPEGs are then decoded at a reduced scale directly (less memory).
    Raises :class:`~media.limits.LimitExceeded` or :class:`MediaError`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if meter is not None:
        limits = meter.limits
    _register_heif()
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(fh)  # reads the header only
    except Image.DecompressionBombError as e:  # Pillow's own guard, past twice its MAX_IMAGE_PIXELS
        raise _bomb(e, limits) from e
    except UnidentifiedImageError as e:  # its message names the stream object: say what it means instead
        raise MediaError("not a readable image: no image format recognised") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise MediaError(f"not a readable image: {e}") from e
    with opened as im:
        w, h = im.size
        if limits is not None:
            limits.check("image_pixels", w * h, f"the image is {w}x{h}")
        try:
            if max_side is not None and im.format == "JPEG" and max(w, h) > 2 * max_side:
                scale = max_side / max(w, h)  # libjpeg decodes at 1/2, 1/4 or 1/8 of the size directly
                im.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
            if limits is not None:
                dw, dh = im.size
                limits.check("memory_bytes", limits.image_bytes(dw * dh, _MODE_BYTES.get(im.mode, 4)),
                             f"decoding a {dw}x{dh} {im.mode} image would need")
            im.load()
            ImageOps.exif_transpose(im, in_place=True)
            rgb = _to_rgb(im)
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise MediaError(f"the image data is corrupt: {e}") from e
    if not rgb.flags.writeable:  # Pillow's exported bytes are read-only; its own copy is gone by now
        rgb = rgb.copy()
    if meter is not None:
        meter.add_image(w * h)
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        import cv2

        scale = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb


def _to_rgb(im: Any) -> np.ndarray:
    """8-bit RGB from any Pillow mode, as the module docstring says."""
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        samples = np.asarray(im)
        top = int(samples.max()) if samples.size else 0
        # 16-bit samples keep their high byte; a 32-bit "I" image is scaled by the bits it uses
        shift = 8 if mode.startswith("I;16") else max(0, top.bit_length() - 8) if top > 255 else 0
        gray = (samples.astype(np.int64) >> shift).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode == "F":
        samples = np.nan_to_num(np.asarray(im, dtype=np.float32))
        peak = float(samples.max()) if samples.size else 0.0
        scaled = samples * 255.0 if peak <= 1.0 else samples
        gray = np.rint(scaled).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode == "CMYK" and im.info.get("icc_profile"):
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
            converted = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                out: np.ndarray = np.asarray(converted, dtype=np.uint8)
                return out
        except (OSError, ValueError, ImageCms.PyCMSError):
            pass  # a broken profile: fall back to the plain conversion
    if mode in ("LA", "PA", "La", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info) \
            or (mode in ("L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def _register_heif() -> None:
    """Teach Pillow HEIF/HEIC (pillow-heif), once per process."""
    global _heif_registered
    if _heif_registered:
        return
    with _HEIF_LOCK:
        if not _heif_registered:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True


def image_size(source: Source, *, limits: Limits | None = DEFAULT_LIMITS) -> tuple[int, int]:
    """(width, height) of a still from its header, without decoding a pixel; with ``limits``, one over
    ``image_pixels`` (a decompression bomb) raises :class:`~media.limits.LimitExceeded`. Raises
    :class:`MediaError` when no image header can be read."""
    from PIL import Image, UnidentifiedImageError

    _register_heif()
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                w, h = im.size
    except Image.DecompressionBombError as e:
        raise _bomb(e, limits) from e
    except UnidentifiedImageError as e:
        raise MediaError("not a readable image: no image format recognised") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise MediaError(f"not a readable image: {e}") from e
    if limits is not None:
        limits.check("image_pixels", w * h, f"the image is {w}x{h}")
    return w, h


def _bomb(e: Exception, limits: Limits | None) -> LimitExceeded:
    """Pillow's own guard (past twice its ``MAX_IMAGE_PIXELS``) as our ``image_pixels`` refusal."""
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(e))
    pixels = float(found.group(1)) if found else float("inf")
    allowed = limits.image_pixels if limits is not None else Image.MAX_IMAGE_PIXELS or 0
    return LimitExceeded("image_pixels", pixels, allowed, f"the image is {pixels / 1e6:.1f} megapixels; at most "
                         f"{allowed / 1e6:.1f} megapixels allowed (image_pixels)")
