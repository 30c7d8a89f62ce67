"""Reposts of a released video (the field report in ../shared/testdata/field-reports/README.md): mirrored,
upscaled and padded to 9:16 or 16:9 with black or blurred bars, downscaled, each re-encoded with H.264
crf 28. The watermark still reads the content id and the fingerprint still finds the original; unmarked
and unrelated clips treated the same way give nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import provenance.watermark as wm
from bench.watermark import mirror, pad, scale  # the reposts the benchmark measures
from media.video import Clip, read_video, write_video
from provenance._borders import BorderStats, Box, aspect_boxes
from provenance.fingerprint import Fingerprint, FingerprintIndex, fingerprint_frames
from provenance.watermark import FALSE_POSITIVE_BOUND, MAX_HYPOTHESES, WatermarkKey, detect, embed

PAYLOAD = bytes.fromhex("c0ffee00deadbeef")


@pytest.fixture(scope="module")
def key() -> WatermarkKey:
    return WatermarkKey(b"consentgate-test-watermark-key-1")


def generated(prompt: str, seed: int, size: int = 256, seconds: float = 1.0) -> np.ndarray:
    from generator.base import GenerationSpec
    from generator.procedural import ProceduralGenerator

    spec = GenerationSpec(prompt=prompt, seed=seed, width=size, height=size, duration_s=seconds)
    return ProceduralGenerator().generate(spec).frames


@pytest.fixture(scope="module")
def footage(faces_dir: Path) -> np.ndarray:
    """24 real frames of the Hamilton clip at 256p (16:9)."""
    frames = read_video(faces_dir / "short_hamilton_clip.mp4", max_frames=24, with_audio=False).frames
    return np.stack([cv2.resize(f, (454, 256), interpolation=cv2.INTER_AREA) for f in frames])


def encode(frames: np.ndarray, tmp_path: Path, crf: int = 28) -> np.ndarray:
    h, w = frames.shape[1:3]
    path = tmp_path / "repost.mp4"
    write_video(path, Clip(frames=np.ascontiguousarray(frames[:, : h - h % 2, : w - w % 2]), fps=24.0), crf=crf,
                preset="veryfast")
    return read_video(path, with_audio=False).frames


REPOSTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mirrored": mirror,
    "2.8x, 9:16, black bars": lambda f: pad(scale(f, 2.8), 9, 16),
    "mirrored, 2.8x, 9:16, black bars": lambda f: pad(scale(mirror(f), 2.8), 9, 16),
    "3x, 16:9, black bars": lambda f: pad(scale(f, 3.0), 16, 9),
    "2.8x, 9:16, blurred bars": lambda f: pad(scale(f, 2.8), 9, 16, blurred=True),
    "2x": lambda f: scale(f, 2.0),
}
UPSCALE = {"2.8x, 9:16, black bars": 2.8, "mirrored, 2.8x, 9:16, black bars": 2.8, "3x, 16:9, black bars": 3.0,
           "2.8x, 9:16, blurred bars": 2.8, "2x": 2.0}


# --- the watermark ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marked_scene(key: WatermarkKey) -> np.ndarray:
    return embed(generated("snowy mountains with a forest", 1), PAYLOAD, key)


@pytest.mark.parametrize("repost", list(REPOSTS))
def test_the_mark_survives_a_repost(key: WatermarkKey, marked_scene: np.ndarray, tmp_path: Path, repost: str) -> None:
    copy = encode(REPOSTS[repost](encode(marked_scene, tmp_path, crf=18)), tmp_path)
    found = detect(copy, key)
    assert found is not None and found.payload == PAYLOAD, repost
    assert found.mirrored == repost.startswith("mirrored")
    assert found.scale == pytest.approx(UPSCALE.get(repost, 1.0), rel=0.01)


def test_a_mirrored_copy_reports_the_grid_of_the_frames_flipped_back(
    key: WatermarkKey, marked_scene: np.ndarray
) -> None:
    cropped = marked_scene[:, 7:, :-13]
    straight, flipped = detect(cropped, key), detect(mirror(cropped), key)
    assert straight is not None and flipped is not None
    assert (straight.mirrored, flipped.mirrored) == (False, True)
    assert straight.shift == flipped.shift == (121, 0)


def test_real_footage_reposted_and_downscaled(key: WatermarkKey, footage: np.ndarray, tmp_path: Path) -> None:
    released = encode(embed(footage, PAYLOAD, key), tmp_path, crf=18)
    for change in (mirror, lambda f: pad(scale(f, 2.8), 9, 16), lambda f: scale(f, 0.5)):
        found = detect(encode(change(released), tmp_path), key)
        assert found is not None and found.payload == PAYLOAD


def test_unmarked_reposts_give_nothing(key: WatermarkKey, footage: np.ndarray, tmp_path: Path) -> None:
    """False positives stay at zero: every repost of unmarked clips (generated and real), and of a clip
    marked with another key, reads as unmarked."""
    other = embed(generated("a city street at night", 0), PAYLOAD, WatermarkKey(b"another-deployment-watermark-key"))
    for frames in (generated("sunset over the ocean waves", 2), footage, other):
        released = encode(frames, tmp_path, crf=18)
        for name, change in REPOSTS.items():
            assert detect(encode(change(released), tmp_path), key) is None, name


def test_no_call_decodes_more_than_the_hypotheses_counted_in_the_bound(
    key: WatermarkKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The false-positive bound counts every (period, shift, orientation) hypothesis decoded: the full search
    on an unmarked frame large enough for the half-size image stays within it."""
    assert FALSE_POSITIVE_BOUND == MAX_HYPOTHESES * 2.0**-32 < 1e-8
    decoded = []
    real = wm.viterbi

    def counting(soft: np.ndarray) -> np.ndarray:
        decoded.append(1)
        return real(soft)

    monkeypatch.setattr(wm, "viterbi", counting)
    rng = np.random.default_rng(7)
    noise = cv2.resize(rng.integers(0, 256, (4, 160, 96, 3), dtype=np.uint8)[0], (540, 960))
    assert detect(np.repeat(noise[None], 3, axis=0), key) is None
    assert 6 < len(decoded) <= MAX_HYPOTHESES


# --- the fingerprint --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released() -> dict[str, np.ndarray]:
    prompts = [f"{t} {s}" for t in ("day", "sunset", "night") for s in ("hills", "city", "forest", "ocean", "snow")]
    return {f"clip-{i:02d}": generated(p, 500 + i, size=128) for i, p in enumerate(prompts)}


@pytest.fixture(scope="module")
def index(released: dict[str, np.ndarray]) -> FingerprintIndex:
    idx = FingerprintIndex()
    for k, frames in released.items():
        idx.add(k, fingerprint_frames(frames, query_views=False))
    return idx


@pytest.mark.parametrize("repost", [r for r in REPOSTS if r != "2x"])
def test_a_repost_finds_its_original_only(
    released: dict[str, np.ndarray], index: FingerprintIndex, tmp_path: Path, repost: str
) -> None:
    for k in ("clip-01", "clip-07", "clip-13"):
        copy = encode(REPOSTS[repost](encode(released[k], tmp_path, crf=18)), tmp_path)
        matches = index.match(fingerprint_frames(copy))
        assert [m.key for m in matches] == [k], (repost, k, matches[:3])


def test_unrelated_reposts_match_nothing(index: FingerprintIndex, footage: np.ndarray, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    for frames in (footage, rng.integers(0, 256, (8, 96, 96, 3), dtype=np.uint8)):
        for name, change in REPOSTS.items():
            assert index.match(fingerprint_frames(encode(change(frames), tmp_path))) == [], name


def test_what_is_stored_does_not_change(released: dict[str, np.ndarray], footage: np.ndarray) -> None:
    """A query's stored view is the stored fingerprint, whatever views it adds for reposts (tall, wide and
    square frames), so fingerprints stored before the repost views still compare as they did."""
    for frames in (released["clip-03"], footage, np.ascontiguousarray(footage.transpose(0, 2, 1, 3))):
        query, stored = fingerprint_frames(frames), fingerprint_frames(frames, query_views=False)
        assert query == stored and query.views is not None and stored.views is None
        assert query.distance(Fingerprint.from_bytes(stored.to_bytes())) == pytest.approx(0.0, abs=1e-6)


def test_the_mirrored_views_describe_the_mirrored_frames(released: dict[str, np.ndarray]) -> None:
    frames = released["clip-05"]
    flipped = fingerprint_frames(mirror(frames), query_views=False)
    assert fingerprint_frames(frames).distance(flipped) < 1e-3
    assert fingerprint_frames(frames, query_views=False).distance(flipped) > 0.06  # the stored view alone does not


# --- bars -------------------------------------------------------------------------------------------


def _luma(frames: np.ndarray) -> list[np.ndarray]:
    return [f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) for f in frames]


def test_black_bars_are_found_where_they_are(footage: np.ndarray, tmp_path: Path) -> None:
    scene = generated("day forest", 3)
    for frames, want in ((pad(scene, 9, 16), (99, 355, 0, 256)), (pad(scene, 16, 9), (0, 256, 99, 355)),
                         (pad(footage, 9, 16), (275, 531, 0, 454))):
        stats = BorderStats()
        for y in _luma(encode(frames, tmp_path)):
            stats.add(y)
        box = stats.box()
        assert box is not None
        got = (box.top, box.bottom, box.left, box.right)
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 2, (got, want)


def test_no_bars_are_found_in_pictures_without_them(footage: np.ndarray, tmp_path: Path) -> None:
    clips = [footage, generated("night ocean", 4), generated("day desert", 5), generated("sunset hills", 6),
             np.zeros((3, 128, 128, 3), np.uint8)]
    for frames in clips:
        stats = BorderStats()
        for y in _luma(encode(frames, tmp_path)):
            stats.add(y)
        assert stats.box() is None
    with pytest.raises(ValueError, match="one size"):
        stats.add(np.zeros((64, 65), np.float32))


def test_frames_added_together_give_the_sums_of_frames_added_one_by_one() -> None:
    """``BorderStats.add_many`` (what the fingerprint's reader uses, in batches) sums to the bit what ``add`` sums
    frame after frame, whatever the batches, for frames the statistics take as they are and for frames they
    reduce first; and it refuses a batch of another size as ``add`` does."""
    rng = np.random.default_rng(8)
    for shape in ((90, 160), (300, 500)):
        frames = rng.integers(0, 256, (40, *shape), dtype=np.uint8)
        frames[:, :, : shape[1] // 5] = 0  # bars left and right
        frames[:, :, -shape[1] // 5 :] = 0
        one, many = BorderStats(), BorderStats()
        for f in frames:
            one.add(f)
        for part in (frames[:1], frames[1:17], frames[17:17], frames[17:]):
            many.add_many(part)
        assert one.frames == many.frames == 40
        for a, b in zip([*one._detail, *one._step], [*many._detail, *many._step], strict=True):
            assert np.array_equal(a, b)
        assert one.box() == many.box() is not None
        with pytest.raises(ValueError, match="one size"):
            many.add_many(np.zeros((2, shape[0] + 1, shape[1]), np.uint8))


def test_aspect_boxes() -> None:
    assert aspect_boxes(1280, 720)[0] == Box(280, 1000, 0, 720, 1280, 720)  # a square picture in 9:16
    assert Box(0, 720, 280, 1000, 720, 1280) in aspect_boxes(720, 1280)  # ...and in 16:9
    assert all(b != Box(0, 720, 0, 1280, 720, 1280) for b in aspect_boxes(720, 1280))  # 16:9 in 16:9: none
    assert len(aspect_boxes(256, 256)) == 5
    with pytest.raises(ValueError):
        Box(10, 5, 0, 4, 20, 20)
