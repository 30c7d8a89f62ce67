"""Perceptual fingerprints: altered copies find their original among many released clips; bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from media.video import Clip, read_video, write_video
from provenance.errors import ProvenanceError
from provenance.fingerprint import (
    Fingerprint,
    FingerprintError,
    FingerprintIndex,
    FingerprintMatch,
    fingerprint_clip,
    fingerprint_frames,
    fingerprint_video,
)

# Distinct scenes: the procedural generator's vocabulary (time x setting), one seed each.
PROMPTS = [f"{t} {s}" for t in ("day", "sunset", "night") for s in ("hills", "city", "forest", "ocean", "snow",
                                                                     "desert")]


@pytest.fixture(scope="module")
def released() -> dict[str, np.ndarray]:
    from generator.base import GenerationSpec
    from generator.procedural import ProceduralGenerator

    gen = ProceduralGenerator()
    out = {}
    for i in range(72):
        spec = GenerationSpec(prompt=PROMPTS[i % len(PROMPTS)], seed=1000 + i, width=128, height=128, duration_s=1.0)
        out[f"clip-{i:03d}"] = gen.generate(spec).frames
    return out


@pytest.fixture(scope="module")
def index(released: dict[str, np.ndarray]) -> FingerprintIndex:
    idx = FingerprintIndex()
    for key, frames in released.items():
        idx.add(key, fingerprint_frames(frames, query_views=False))
    return idx


def encode(frames: np.ndarray, tmp_path: Path, crf: int = 28) -> np.ndarray:
    h, w = frames.shape[1:3]
    path = tmp_path / "copy.mp4"
    write_video(path, Clip(frames=np.ascontiguousarray(frames[:, : h - h % 2, : w - w % 2]), fps=24.0), crf=crf,
                preset="veryfast")
    return read_video(path, with_audio=False).frames


def crop(frames: np.ndarray, frac: float, fy: float, fx: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    ch, cw = round(h * (1 - frac)), round(w * (1 - frac))
    y0, x0 = round((h - ch) * fy), round((w - cw) * fx)
    return frames[:, y0:y0 + ch, x0:x0 + cw]


def resize(frames: np.ndarray, s: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    return np.stack([cv2.resize(f, (round(w * s) // 2 * 2, round(h * s) // 2 * 2), interpolation=cv2.INTER_AREA)
                     for f in frames])


CHANGES = {
    "h264 crf 28": lambda f: f,
    "crop 10 %": lambda f: crop(f, 0.10, 0.5, 0.5),
    "crop 10 % off-centre": lambda f: crop(f, 0.10, 0.8, 0.25),
    "resize 0.5x": lambda f: resize(f, 0.5),
    "resize 0.75x": lambda f: resize(f, 0.75),
    "brighter": lambda f: np.clip(f * 1.2, 0, 255).astype(np.uint8),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_altered_copies_match_their_original_only(
    released: dict[str, np.ndarray], index: FingerprintIndex, tmp_path: Path, change: str
) -> None:
    for key in ("clip-003", "clip-020", "clip-041"):
        copy = encode(CHANGES[change](released[key]), tmp_path)
        matches = index.match(fingerprint_frames(copy))
        assert [m.key for m in matches] == [key], (change, key, matches[:3])
        assert 0 <= matches[0].distance < index.threshold


def test_unrelated_clips_match_nothing(index: FingerprintIndex, faces_dir: Path) -> None:
    rng = np.random.default_rng(5)
    assert index.match(fingerprint_frames(rng.integers(0, 256, (12, 96, 96, 3), dtype=np.uint8))) == []
    assert index.match(fingerprint_frames(np.full((4, 64, 64, 3), 128, np.uint8))) == []
    real = read_video(faces_dir / "short_hamilton_clip.mp4", max_frames=48, with_audio=False)
    assert index.match(fingerprint_clip(real)) == []


def test_video_files_and_storage(released: dict[str, np.ndarray], tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, Clip(frames=released["clip-007"], fps=24.0))
    from_path, from_bytes = fingerprint_video(path), fingerprint_video(path.read_bytes())
    assert from_path == from_bytes
    blob = from_path.to_bytes()
    assert len(blob) < 5000
    stored = Fingerprint.from_bytes(blob)
    assert stored == from_path and stored.views is None
    assert stored.distance(fingerprint_frames(released["clip-007"])) < 0.05
    with open(path, "rb") as fh:
        assert fingerprint_video(fh) == from_path


def test_index_add_replace_remove_and_threads(released: dict[str, np.ndarray]) -> None:
    idx = FingerprintIndex()
    fps = {k: fingerprint_frames(v, query_views=False) for k, v in list(released.items())[:8]}

    def add(items: list[tuple[str, Fingerprint]]) -> None:
        for k, fp in items:
            idx.add(k, fp)

    items = list(fps.items())
    threads = [threading.Thread(target=add, args=(items[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(idx) == 8 and "clip-000" in idx
    idx.add("clip-000", fps["clip-000"])  # replace, not duplicate
    assert len(idx) == 8
    idx.remove("clip-000")
    assert len(idx) == 7 and "clip-000" not in idx
    assert idx.match(fps["clip-000"]) == [] or idx.match(fps["clip-000"])[0].key != "clip-000"
    assert idx.match(fps["clip-005"], max_results=1) == [FingerprintMatch("clip-005", pytest.approx(0.0, abs=1e-5))]
    with pytest.raises(KeyError):
        idx.remove("clip-000")


def test_bad_input_gives_clear_errors(faces_dir: Path, tmp_path: Path) -> None:
    assert issubclass(FingerprintError, ProvenanceError)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00garbage" * 200)
    cases = [
        (faces_dir / "obama.jpg", "still image"),
        ((faces_dir / "obama.jpg").read_bytes(), "still image"),
        (faces_dir / "lin-manuel-miranda.png", "still image"),
        (empty, "empty"),
        (junk, "not a readable video"),
        (b"plain text, not media" * 10, "not a readable video"),
        (tmp_path / "missing.mp4", "cannot read"),
    ]
    for source, message in cases:
        with pytest.raises(FingerprintError, match=message):
            fingerprint_video(source)
    with pytest.raises(FingerprintError, match="no frames"):
        fingerprint_frames(iter([]))
    with pytest.raises(FingerprintError):
        fingerprint_frames(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(FingerprintError):
        fingerprint_clip("clip.mp4")  # type: ignore[arg-type]
    with pytest.raises(FingerprintError, match="bytes"):
        Fingerprint.from_bytes(b"CGFP\x01")
    with pytest.raises(FingerprintError, match="empty string"):
        FingerprintIndex().add("", fingerprint_frames(np.zeros((1, 32, 32, 3), np.uint8)))


def test_an_empty_index_matches_nothing_and_still_refuses_what_is_not_a_fingerprint(
        released: dict[str, np.ndarray]) -> None:
    """Nothing released yet (or every release removed): no match and no distance, without the query's vectors;
    a lookup with something else than a fingerprint is refused all the same."""
    key, frames = next(iter(released.items()))
    fp = fingerprint_frames(frames)
    idx = FingerprintIndex()
    assert idx.match(fp) == [] and idx.distances(fp) == []
    idx.add(key, fingerprint_frames(frames, query_views=False))
    assert [m.key for m in idx.match(fp)] == [key]
    idx.remove(key)
    assert idx.match(fp) == [] and idx.distances(fp) == []
    with pytest.raises(FingerprintError, match="expected a Fingerprint"):
        idx.match("not a fingerprint")  # type: ignore[arg-type]
