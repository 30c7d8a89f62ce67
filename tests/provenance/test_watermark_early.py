"""Reading a mark early (issue 12): :class:`provenance.watermark.MarkReader` stops at the first of
``EARLY_CHECKS`` where a mark verifies, and otherwise reads every frame and runs the full search, so nothing the
full read finds is lost; ``detect_video(early=True)`` (the gate's read-back) reads the same payload from fewer
frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from media.video import Clip, write_video
from provenance.errors import WatermarkError
from provenance.watermark import (
    EARLY_CHECKS,
    FALSE_POSITIVE_BOUND,
    MAX_HYPOTHESES,
    NATIVE_HYPOTHESES,
    MarkReader,
    WatermarkKey,
    _luma,
    detect,
    detect_video,
    early_false_positive_bound,
    embed,
    embed_threads,
)
from tests.provenance.test_watermark import PAYLOAD, synthetic_clip

KEY = WatermarkKey(b"consentgate-test-watermark-key-1")
OTHER = WatermarkKey(b"consentgate-test-watermark-key-2")


@pytest.fixture(scope="module")
def marked() -> np.ndarray:
    return embed(synthetic_clip(size=256, frames=72, seed=3), PAYLOAD, KEY)


def _feed(reader: MarkReader, frames: np.ndarray) -> int:
    """Frames fed until the reader said it was done (or all of them)."""
    for i, f in enumerate(frames):
        if reader.add_luma(_luma(f)):
            return i + 1
    return len(frames)


def test_an_intact_mark_is_read_at_the_first_check(marked: np.ndarray) -> None:
    reader = MarkReader([OTHER, KEY])
    assert _feed(reader, marked) == EARLY_CHECKS[0] == 24
    found, key = reader.result()
    assert found.payload == PAYLOAD and found.frames_used == 24 and key is KEY
    assert reader.done and reader.add_luma(_luma(marked[0])) and reader.evidence.frames == 24  # nothing more read


def test_a_rescaled_mark_is_read_to_the_end_and_still_found(marked: np.ndarray) -> None:
    """A 0.75x copy is found only by the period search, which the checks do not run: the reader reads every
    frame, then finds it as detect() does."""
    small = np.stack([cv2.resize(f, (192, 192), interpolation=cv2.INTER_AREA) for f in marked])
    reader = MarkReader([KEY])
    assert _feed(reader, small) == len(small) and not reader.done
    found, _ = reader.result()
    whole = detect(small, KEY)
    assert whole is not None and found.payload == whole.payload == PAYLOAD
    assert found.frames_used == len(small) and found.scale == pytest.approx(0.75, abs=0.01)


def test_unmarked_frames_are_read_to_max_frames_and_give_none() -> None:
    plain = synthetic_clip(size=256, frames=60, seed=4)
    reader = MarkReader([KEY, OTHER], max_frames=50)
    assert _feed(reader, plain) == 50 and reader.done
    assert reader.result() is None and reader.result() is None  # the full search runs once


def test_a_clip_shorter_than_the_first_check_gets_the_full_search(marked: np.ndarray) -> None:
    reader = MarkReader([KEY])
    assert _feed(reader, marked[:10]) == 10 and not reader.done
    found, _ = reader.result()
    assert found.payload == PAYLOAD and found.frames_used == 10


def test_a_reader_needs_keys_and_a_frame_budget() -> None:
    with pytest.raises(WatermarkError, match="at least one key"):
        MarkReader([])
    with pytest.raises(WatermarkError, match="max_frames"):
        MarkReader([KEY], max_frames=0)
    with pytest.raises(WatermarkError):
        MarkReader([b"not a key"])  # type: ignore[list-item]
    with pytest.raises(WatermarkError, match="no frames"):
        MarkReader([KEY]).result()


def test_the_early_false_positive_bound_counts_every_check() -> None:
    assert NATIVE_HYPOTHESES < MAX_HYPOTHESES
    assert early_false_positive_bound(()) == FALSE_POSITIVE_BOUND
    assert early_false_positive_bound() == pytest.approx((16 + 2 * 6) * 2.0**-32)
    assert early_false_positive_bound() < 1e-8


def test_detect_video_early_reads_the_same_payload_from_fewer_frames(marked: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "marked.mp4"
    write_video(path, Clip(frames=marked, fps=24.0), crf=23)
    full = detect_video(path, KEY, max_frames=240)
    early = detect_video(path, KEY, max_frames=240, early=True)
    assert full is not None and early is not None
    assert early.payload == full.payload == PAYLOAD
    assert (full.frames_used, early.frames_used) == (72, 24)
    assert detect_video(path, OTHER, max_frames=240, early=True) is None


def test_embed_gives_the_same_frames_on_any_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embed spreads frames over threads (issue 12) and sums their folds in frame order: bit-identical."""
    frames = synthetic_clip(size=256, frames=9, seed=5)
    out = {}
    for n in ("1", "3"):
        monkeypatch.setenv("GOVERNANCE_EMBED_THREADS", n)
        assert embed_threads() == int(n)
        out[n] = embed(frames, PAYLOAD, KEY)
    np.testing.assert_array_equal(out["1"], out["3"])


@pytest.mark.parametrize("raw", ["0", "-2", "two"])
def test_a_bad_thread_count_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("GOVERNANCE_EMBED_THREADS", raw)
    with pytest.raises(WatermarkError, match="GOVERNANCE_EMBED_THREADS"):
        embed(synthetic_clip(size=128, frames=2), PAYLOAD, KEY)


def test_without_the_setting_the_embed_uses_the_cores_up_to_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVERNANCE_EMBED_THREADS", raising=False)
    assert 1 <= embed_threads() <= 4
