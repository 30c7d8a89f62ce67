"""Every format a phone or a browser makes, decoded to upright 8-bit RGB (media/formats.py, media/image.py)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media.formats import sniff, sniff_kind
from media.image import load_image
from media.video import MediaError, video_source

FIELD = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "field-reports"


def encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    """A 96x128 picture with distinct quadrants (orientation shows)."""
    a = np.zeros((96, 128, 3), np.uint8)
    a[:48, :64] = (220, 30, 30)
    a[:48, 64:] = (30, 220, 30)
    a[48:, :64] = (30, 30, 220)
    a[48:, 64:] = (230, 230, 40)
    return Image.fromarray(a)


def wav_bytes() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, "<i2").tobytes())
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "options", "mime"), [
    ("JPEG", {}, "image/jpeg"), ("PNG", {}, "image/png"), ("GIF", {}, "image/gif"), ("TIFF", {}, "image/tiff"),
    ("WEBP", {}, "image/webp"), ("AVIF", {}, "image/avif"), ("HEIF", {}, "image/heic"),
])
def test_stills_in_every_container_are_images(picture: Image.Image, fmt: str, options: dict, mime: str) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    data = encoded(picture, fmt, **options)
    assert sniff(data).mime == mime and sniff_kind(data) == "image"
    rgb = load_image(data)
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8 and rgb.flags.writeable
    assert np.abs(rgb.astype(int) - np.asarray(picture)).mean() < 12
    with pytest.raises(MediaError, match="an image, not a video"):
        video_source(data)


def test_a_12mp_avif_photo_is_an_image_not_a_video() -> None:
    data = (FIELD / "photo-12mp.avif").read_bytes()
    assert sniff(data).kind == "image"
    assert load_image(data).shape == (3024, 4032, 3)
    assert load_image(data, max_side=1000).shape == (750, 1000, 3)


@pytest.mark.parametrize(("head", "mime", "kind"), [
    (b"\x00\x00\x00\x18ftypisom", "video/mp4", "video"),
    (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime", "video"),
    (b"\x00\x00\x00\x1cftypheic", "image/heic", "image"),
    (b"\x00\x00\x00\x1cftypmif1", "image/heif", "image"),
    (b"\x00\x00\x00\x1cftypavis", "image/avif", "image"),
    (b"\x00\x00\x00\x1cftypM4A ", "audio/mp4", "audio"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav", "audio"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo", "video"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video/webm", "video"),
    (b"fLaC\x00\x00\x00\x22", "audio/flac", "audio"),
    (b"ID3\x04\x00\x00\x00\x00", "audio/mpeg", "audio"),
    (b"%PDF-1.7\n", "application/pdf", "document"),
    (b"\xff\x0a\xfa\x7f", "image/jxl", "image"),
])
def test_sniff(head: bytes, mime: str, kind: str) -> None:
    fmt = sniff(head)
    assert fmt is not None and (fmt.mime, fmt.kind) == (mime, kind)
    assert sniff(b"hello, plain text") is None and sniff(b"") is None
    assert sniff_kind(wav_bytes()) == "audio"


def test_16_bit_grayscale_keeps_its_tones() -> None:
    """The field report: Pillow's plain conversion clips I;16 to almost white."""
    path = FIELD / "face-gray16.png"
    with Image.open(path) as im:
        assert im.mode == "I;16"
        samples = np.asarray(im)
        clipped = np.asarray(im.convert("RGB"))
    assert clipped.mean() > 240  # what happened before
    rgb = load_image(path)
    assert np.array_equal(rgb[..., 0], (samples >> 8).astype(np.uint8))
    assert 40 < rgb.mean() < 200 and np.array_equal(rgb[..., 0], rgb[..., 2])


def test_16_bit_tiff_and_32_bit_and_float_samples() -> None:
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    rgb = load_image(encoded(Image.fromarray(ramp), "TIFF"))
    assert np.array_equal(rgb[..., 1], (ramp >> 8).astype(np.uint8))
    floats = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    rgb = load_image(encoded(Image.fromarray(floats, "F"), "TIFF"))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_cmyk_palette_and_transparency(picture: Image.Image) -> None:
    cmyk = load_image(encoded(picture.convert("CMYK"), "JPEG", quality=95))
    assert np.abs(cmyk.astype(int) - np.asarray(picture)).mean() < 12
    adaptive = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    assert np.array_equal(load_image(encoded(adaptive, "PNG")), np.asarray(adaptive.convert("RGB")))
    la = Image.new("LA", (10, 10), (0, 0))  # black, fully transparent: composited over white
    assert load_image(encoded(la, "PNG")).min() == 255
    rgba = picture.convert("RGBA")
    rgba.putalpha(255)
    assert np.array_equal(load_image(encoded(rgba, "PNG")), np.asarray(picture))
    assert load_image(encoded(adaptive, "PNG", transparency=adaptive.getpixel((0, 0))))[0, 0].tolist() == [255] * 3


def test_animated_images_give_their_first_frame(picture: Image.Image) -> None:
    turned = picture.rotate(180)
    for fmt in ("GIF", "WEBP"):
        data = encoded(picture, fmt, save_all=True, append_images=[turned], duration=100, loop=0)
        first = load_image(data)
        assert np.abs(first.astype(int) - np.asarray(picture)).mean() < 20, fmt


def test_exif_orientation_is_applied(picture: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: display rotated 90 degrees clockwise
    data = encoded(picture, "JPEG", exif=exif, quality=95)
    rgb = load_image(data)
    assert rgb.shape == (128, 96, 3)
    assert np.abs(rgb.astype(int) - np.rot90(np.asarray(picture), -1)).mean() < 12


def test_unreadable_images_say_so() -> None:
    with pytest.raises(MediaError, match="not a readable image"):
        load_image(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
