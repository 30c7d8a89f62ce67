"""Invisible watermark: round trips (raw and through H.264 + remux), keyed rejection, input errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from media.video import Clip, load_image, read_video, write_video
from provenance.errors import ProvenanceError, WatermarkError
from provenance.label import add_visible_label
from provenance.watermark import (
    FALSE_POSITIVE_BOUND,
    PAYLOAD_BYTES,
    Evidence,
    WatermarkDetection,
    WatermarkKey,
    detect,
    detect_video,
    embed,
    embed_video,
    parse_payload,
    psnr,
)
from tests.media_tools import remux

PAYLOAD = bytes.fromhex("c0ffee00deadbeef")


@pytest.fixture(scope="module")
def key() -> WatermarkKey:
    return WatermarkKey(b"consentgate-test-watermark-key-1")


def synthetic_clip(size: int = 256, frames: int = 48, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with a few flat shapes drifting across: the procedural generator's look."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([60 + 150 * xx, 40 + 120 * yy, 180 - 100 * xx * yy], axis=-1)
    shapes = [(rng.uniform(0.15, 0.85, 2), rng.uniform(-0.004, 0.004, 2), rng.uniform(0.05, 0.2),
               rng.integers(0, 256, 3)) for _ in range(5)]
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        f = base.copy()
        for i, (centre, velocity, r, colour) in enumerate(shapes):
            cx, cy = centre + velocity * t
            if i % 2:
                inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            else:
                inside = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < 0.6 * r)
            f[inside] = colour
        out[t] = np.clip(f, 0, 255)
    return out


@pytest.fixture(scope="module")
def footage(faces_dir: Path) -> np.ndarray:
    """48 real frames: the centre square of the Hamilton clip, scaled to 256x256."""
    frames = read_video(faces_dir / "short_hamilton_clip.mp4", max_frames=48, with_audio=False).frames
    h, w = frames.shape[1:3]
    x0 = (w - h) // 2
    return np.stack([cv2.resize(f[:, x0:x0 + h], (256, 256), interpolation=cv2.INTER_AREA) for f in frames])


@pytest.fixture(scope="module")
def still_photo(faces_dir: Path) -> np.ndarray:
    """A textured still (face, flag, suit) held for 24 frames: no motion to average the picture away."""
    im = load_image(faces_dir / "obama.jpg")
    s = min(im.shape[:2])
    y0, x0 = (im.shape[0] - s) // 2, (im.shape[1] - s) // 2
    frame = cv2.resize(im[y0:y0 + s, x0:x0 + s], (256, 256), interpolation=cv2.INTER_AREA)
    return np.repeat(frame[None], 24, axis=0)


def h264_round_trip(frames: np.ndarray, tmp_path: Path, crf: int) -> np.ndarray:
    """write_video -> remux (container copy, as a re-upload would do) -> read_video."""
    encoded, remuxed = tmp_path / f"crf{crf}.mp4", tmp_path / f"crf{crf}-remuxed.mp4"
    write_video(encoded, Clip(frames=frames, fps=24.0), crf=crf)
    remux(encoded, remuxed)
    return read_video(remuxed, with_audio=False).frames


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 256, 256), (4, 64, 64), (3, 130, 250), (2, 360, 640), (1, 512, 512)])
def test_round_trip_raw_frames(key: WatermarkKey, footage: np.ndarray, shape: tuple[int, int, int]) -> None:
    t, h, w = shape
    frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in footage[:t]])
    marked = embed(frames, PAYLOAD, key)
    assert marked.shape == frames.shape and marked.dtype == np.uint8
    assert psnr(frames, marked) >= 38
    found = detect(marked, key)
    assert isinstance(found, WatermarkDetection)
    assert (found.payload, found.frames_used) == (PAYLOAD, t)
    assert 0.9 < found.confidence <= 1.0


def test_embed_returns_a_new_array_and_leaves_the_input_alone(key: WatermarkKey) -> None:
    frames = synthetic_clip(frames=4)
    before = frames.copy()
    marked = embed(frames, PAYLOAD, key)
    assert marked is not frames and np.array_equal(frames, before)
    assert not np.array_equal(marked, frames)


def test_single_frame_and_iterables_are_accepted(key: WatermarkKey) -> None:
    frames = synthetic_clip(frames=6)
    marked = embed(frames, PAYLOAD, key)
    one = embed(frames[0], PAYLOAD, key)
    assert one.shape == frames[0].shape
    assert detect(one, key).payload == PAYLOAD
    from_generator = detect((f for f in marked), key)
    assert from_generator is not None and from_generator.frames_used == 6
    from_batches = detect([marked[:2], marked[2:]], key)
    assert from_batches is not None and from_batches.payload == PAYLOAD and from_batches.frames_used == 6


def test_one_evidence_serves_every_key(key: WatermarkKey) -> None:
    """Evidence gathered once (frame by frame, as verification decodes) reads the mark with the right key
    among several, and nothing with the others."""
    marked = embed(synthetic_clip(frames=6), PAYLOAD, key)
    evidence = Evidence()
    for f in marked:
        evidence.add(f)
    others = [WatermarkKey.generate() for _ in range(3)]
    assert [evidence.detect(k) for k in others] == [None, None, None]
    found = evidence.detect(key)
    assert found == detect(marked, key) and found is not None and found.frames_used == 6
    with pytest.raises(WatermarkError, match="one .H, W, 3. frame"):
        evidence.add(marked)  # a batch goes through Evidence.of or detect
    with pytest.raises(WatermarkError, match="one size"):
        evidence.add(np.zeros((128, 130, 3), np.uint8))
    assert evidence.frames == 6  # a refused frame adds nothing
    with pytest.raises(WatermarkError, match="no frames"):
        Evidence().detect(key)


def test_survives_h264_crf23_and_remux_on_a_synthetic_clip(key: WatermarkKey, tmp_path: Path) -> None:
    frames = synthetic_clip()
    marked = embed(frames, PAYLOAD, key)
    assert psnr(frames, marked) >= 38
    found = detect(h264_round_trip(marked, tmp_path, crf=23), key)
    assert found is not None and found.payload == PAYLOAD and found.frames_used == 48


@pytest.mark.parametrize("crf", [23, 28])
def test_survives_h264_and_remux_on_real_footage(
    key: WatermarkKey, footage: np.ndarray, tmp_path: Path, crf: int
) -> None:
    marked = embed(footage, PAYLOAD, key)
    assert psnr(footage, marked) >= 38
    found = detect(h264_round_trip(marked, tmp_path, crf=crf), key)
    assert found is not None and found.payload == PAYLOAD


def test_survives_h264_on_a_textured_still(key: WatermarkKey, still_photo: np.ndarray, tmp_path: Path) -> None:
    marked = embed(still_photo, PAYLOAD, key)
    assert psnr(still_photo, marked) >= 38
    found = detect(h264_round_trip(marked, tmp_path, crf=23), key)
    assert found is not None and found.payload == PAYLOAD


def test_survives_half_size_rescale_and_back(key: WatermarkKey, footage: np.ndarray) -> None:
    marked = embed(footage[:24], PAYLOAD, key)
    rescaled = np.stack([
        cv2.resize(cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA), (256, 256),
                   interpolation=cv2.INTER_LINEAR)
        for f in marked
    ])
    found = detect(rescaled, key)
    assert found is not None and found.payload == PAYLOAD


def test_gate_pipeline_label_then_watermark(key: WatermarkKey, tmp_path: Path) -> None:
    frames = add_visible_label(synthetic_clip(), sub="ConsentGate c0ffee00")
    marked = embed(frames, PAYLOAD, key)
    found = detect(h264_round_trip(marked, tmp_path, crf=23), key)
    assert found is not None and found.payload == PAYLOAD


# --- geometry and timing: crops, rescales, frame rates, trims, levels -----------------------------


def crop(frames: np.ndarray, frac: float, fy: float = 0.5, fx: float = 0.5) -> np.ndarray:
    """Keep (1 - frac) of each side (even sides); fy/fx: share of the removed rows/columns taken from the top/left."""
    h, w = frames.shape[1:3]
    ch, cw = round(h * (1 - frac)) // 2 * 2, round(w * (1 - frac)) // 2 * 2
    y0, x0 = round((h - ch) * fy), round((w - cw) * fx)
    return frames[:, y0:y0 + ch, x0:x0 + cw]


@pytest.fixture(scope="module")
def marked_footage(key: WatermarkKey, footage: np.ndarray) -> np.ndarray:
    return embed(footage, PAYLOAD, key)


@pytest.mark.parametrize("frac, fy, fx", [(0.05, 0.5, 0.5), (0.10, 0.5, 0.5), (0.10, 0.8, 0.25), (0.05, 0.0, 1.0)])
def test_survives_crop_then_h264(
    key: WatermarkKey, marked_footage: np.ndarray, tmp_path: Path, frac: float, fy: float, fx: float
) -> None:
    cropped = crop(marked_footage, frac, fy, fx)
    found = detect(h264_round_trip(cropped, tmp_path, crf=23), key)
    assert found is not None and found.payload == PAYLOAD
    assert found.scale == 1.0


def test_survives_crop_of_a_generated_clip(key: WatermarkKey, tmp_path: Path) -> None:
    frames = synthetic_clip(frames=24)
    marked = embed(frames, PAYLOAD, key)
    found = detect(h264_round_trip(crop(marked, 0.10, 0.3, 0.7), tmp_path, crf=23), key)
    assert found is not None and found.payload == PAYLOAD


def test_survives_resize_to_three_quarters(key: WatermarkKey, marked_footage: np.ndarray, tmp_path: Path) -> None:
    small = np.stack([cv2.resize(f, (192, 192), interpolation=cv2.INTER_AREA) for f in marked_footage])
    found = detect(h264_round_trip(small, tmp_path, crf=23), key)
    assert found is not None and found.payload == PAYLOAD
    assert found.scale == pytest.approx(0.75, abs=0.01)


def test_survives_frame_rate_change_and_trim(key: WatermarkKey, marked_footage: np.ndarray, tmp_path: Path) -> None:
    t = np.arange(60) * 24 / 30  # 24 -> 30 fps by blending neighbours
    i0 = np.minimum(np.floor(t).astype(int), len(marked_footage) - 1)
    i1 = np.minimum(i0 + 1, len(marked_footage) - 1)
    a = (t - i0)[:, None, None, None]
    blended = np.rint((1 - a) * marked_footage[i0] + a * marked_footage[i1]).astype(np.uint8)
    path = tmp_path / "30fps.mp4"
    write_video(path, Clip(frames=blended, fps=30.0), crf=23)
    found = detect_video(path, key)
    assert found is not None and found.payload == PAYLOAD and found.frames_used == 60
    trimmed = detect(marked_footage[20:32], key)  # half a second from the middle
    assert trimmed is not None and trimmed.payload == PAYLOAD


@pytest.mark.parametrize("gain, pivot", [(1.2, 0.0), (0.8, 0.0), (1.2, 128.0), (0.8, 128.0)])
def test_survives_brightness_and_contrast(
    key: WatermarkKey, marked_footage: np.ndarray, gain: float, pivot: float
) -> None:
    changed = np.clip(np.rint((marked_footage[:24].astype(np.float32) - pivot) * gain + pivot), 0, 255)
    found = detect(changed.astype(np.uint8), key)
    assert found is not None and found.payload == PAYLOAD


def test_survives_gaussian_noise(key: WatermarkKey, marked_footage: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    noisy = np.clip(np.rint(marked_footage + rng.normal(0, 5, marked_footage.shape)), 0, 255).astype(np.uint8)
    found = detect(noisy, key)
    assert found is not None and found.payload == PAYLOAD


def test_small_frames_use_a_half_size_tile(key: WatermarkKey, footage: np.ndarray) -> None:
    frames = np.stack([cv2.resize(f, (96, 96), interpolation=cv2.INTER_AREA) for f in footage[:8]])
    found = detect(embed(frames, PAYLOAD, key), key)
    assert found is not None and found.payload == PAYLOAD and found.scale == 0.5


# --- keyed rejection ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_unmarked_input_gives_none(key: WatermarkKey, footage: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (4, 128, 160, 3), dtype=np.uint8)
    assert detect(noise, key) is None
    assert detect(synthetic_clip(frames=8, seed=seed), key) is None
    start = 8 * seed
    assert detect(footage[start:start + 8], key) is None


def test_unmarked_crops_and_rescales_give_none(key: WatermarkKey, footage: np.ndarray) -> None:
    assert detect(crop(footage, 0.1, 0.8, 0.25), key) is None
    small = np.stack([cv2.resize(f, (192, 192), interpolation=cv2.INTER_AREA) for f in footage[:24]])
    assert detect(small, key) is None


def test_false_positive_bound_is_stated() -> None:
    assert FALSE_POSITIVE_BOUND < 1e-8


@pytest.mark.parametrize("seed", range(3))
def test_wrong_key_gives_none(footage: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    right, wrong = WatermarkKey(rng.bytes(32)), WatermarkKey(rng.bytes(32))
    marked = embed(footage[:12], PAYLOAD, right)
    assert detect(marked, right) is not None
    assert detect(marked, wrong) is None


def test_payloads_round_trip_exactly(key: WatermarkKey) -> None:
    frames = synthetic_clip(frames=4)
    for payload in (bytes(8), b"\xff" * 8, bytes(range(8))):
        assert detect(embed(frames, payload, key), key).payload == payload


# --- keys and bad input ---------------------------------------------------------------------------


def test_key_repr_hides_the_secret() -> None:
    key = WatermarkKey.generate()
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert key.secret.hex() not in text and repr(key.secret) not in text
    assert "hidden" in repr(key) and key.key_id in repr(key)
    assert len(key.secret) >= 16 and WatermarkKey.generate() != key


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 15, "a string secret of enough length"])
def test_key_needs_sixteen_secret_bytes(secret: object) -> None:
    with pytest.raises(WatermarkError):
        WatermarkKey(secret)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [b"", b"1234567", b"123456789", "12345678"])
def test_payload_must_be_eight_bytes(key: WatermarkKey, payload: object) -> None:
    assert PAYLOAD_BYTES == 8
    with pytest.raises(WatermarkError, match="8 bytes"):
        embed(synthetic_clip(frames=1), payload, key)  # type: ignore[arg-type]


@pytest.mark.parametrize("h, w", [(63, 256), (256, 40), (32, 32)])
def test_frames_too_small(key: WatermarkKey, h: int, w: int) -> None:
    frames = np.zeros((2, h, w, 3), np.uint8)
    with pytest.raises(WatermarkError, match=f"{w}x{h}"):
        embed(frames, PAYLOAD, key)
    with pytest.raises(WatermarkError, match=f"{w}x{h}"):
        detect(frames, key)


def test_empty_input(key: WatermarkKey) -> None:
    empty = np.zeros((0, 128, 128, 3), np.uint8)
    with pytest.raises(WatermarkError, match="no frames"):
        embed(empty, PAYLOAD, key)
    with pytest.raises(WatermarkError, match="no frames"):
        detect(empty, key)
    with pytest.raises(WatermarkError, match="no frames"):
        detect([], key)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int64])
def test_wrong_dtype(key: WatermarkKey, dtype: type) -> None:
    frames = np.zeros((2, 128, 128, 3), dtype)
    with pytest.raises(WatermarkError, match="uint8"):
        embed(frames, PAYLOAD, key)
    with pytest.raises(WatermarkError, match="uint8"):
        detect(frames, key)


def test_wrong_shape_and_mixed_sizes(key: WatermarkKey) -> None:
    with pytest.raises(WatermarkError, match="shape"):
        embed(np.zeros((2, 128, 128, 4), np.uint8), PAYLOAD, key)
    with pytest.raises(WatermarkError, match="one size"):
        detect([np.zeros((128, 128, 3), np.uint8), np.zeros((128, 130, 3), np.uint8)], key)
    with pytest.raises(WatermarkError):
        detect(b"not frames", key)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, ok", [("c0ffee00deadbeef", True), ("0xC0FFEE00DEADBEEF", True),
                                      ("c0ffee", False), ("c0ffee00deadbeef00", False), ("not hex!", False)])
def test_parse_payload(text: str, ok: bool) -> None:
    if ok:
        assert parse_payload(text) == PAYLOAD
    else:
        with pytest.raises(WatermarkError, match="payload"):
            parse_payload(text)


def test_video_files_round_trip(key: WatermarkKey, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_video(src, Clip(frames=synthetic_clip(frames=24), fps=24.0))
    assert embed_video(src, dst, PAYLOAD, key) >= 38
    found = detect_video(dst, key)
    assert found is not None and found.payload == PAYLOAD
    assert detect_video(dst.read_bytes(), key) == found
    assert detect_video(src, key) is None
    with pytest.raises(WatermarkError, match="8 bytes"):
        embed_video(src, tmp_path / "x.mp4", b"short", key)


def test_bad_video_files_give_clear_errors(key: WatermarkKey, faces_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 this is not a video" * 100)
    cases = [(empty, "empty"), (junk, "not a readable video"), (tmp_path / "missing.mp4", "cannot read"),
             (faces_dir / "obama.jpg", "still image"), ((faces_dir / "obama.jpg").read_bytes(), "still image")]
    for source, message in cases:
        with pytest.raises(WatermarkError, match=message):
            detect_video(source, key)
    with pytest.raises(WatermarkError, match="still image"):
        embed_video(faces_dir / "obama.jpg", tmp_path / "o.mp4", PAYLOAD, key)
    # a container whose video stream holds no frame at all
    head = tmp_path / "head.mp4"
    write_video(head, Clip(frames=synthetic_clip(frames=2), fps=24.0))
    with pytest.raises(WatermarkError):
        detect_video(head.read_bytes()[:200], key)


def test_errors_belong_to_the_provenance_family() -> None:
    assert issubclass(WatermarkError, ProvenanceError)


def test_psnr() -> None:
    a = np.zeros((2, 8, 8, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(48.13, abs=0.01)
    with pytest.raises(WatermarkError):
        psnr(a, a[0])
