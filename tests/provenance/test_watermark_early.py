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
    MAX_EMBED_THREADS,
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
    assert _feed(reader, marked) == EARLY_CHECKS[0] == 8
    found, key = reader.result()
    assert found.payload == PAYLOAD and found.frames_used == 8 and key is KEY
    assert reader.done and reader.add_luma(_luma(marked[0])) and reader.evidence.frames == 8  # nothing more read


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
    assert _feed(reader, marked[:6]) == 6 and not reader.done
    found, _ = reader.result()
    assert found.payload == PAYLOAD and found.frames_used == 6


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
    assert early_false_positive_bound() == pytest.approx((16 + 3 * 6) * 2.0**-32)
    assert early_false_positive_bound((24, 48)) == pytest.approx((16 + 2 * 6) * 2.0**-32)
    assert early_false_positive_bound() < 1e-8


def test_detect_video_early_reads_the_same_payload_from_fewer_frames(marked: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "marked.mp4"
    write_video(path, Clip(frames=marked, fps=24.0), crf=23)
    full = detect_video(path, KEY, max_frames=240)
    early = detect_video(path, KEY, max_frames=240, early=True)
    assert full is not None and early is not None
    assert early.payload == full.payload == PAYLOAD
    assert (full.frames_used, early.frames_used) == (72, EARLY_CHECKS[0])
    assert detect_video(path, OTHER, max_frames=240, early=True) is None


def test_embed_gives_the_same_frames_on_any_number_of_threads() -> None:
    """The embed spreads frames over threads (issue 12) and sums their folds in frame order: bit-identical."""
    frames = synthetic_clip(size=256, frames=9, seed=5)
    one = embed(frames, PAYLOAD, KEY, threads=1)
    for n in (3, MAX_EMBED_THREADS, None):
        np.testing.assert_array_equal(embed(frames, PAYLOAD, KEY, threads=n), one)


@pytest.mark.parametrize("threads", [0, -2, MAX_EMBED_THREADS + 1, 2.0, True, "2"])
def test_a_bad_thread_count_is_refused(threads: object) -> None:
    with pytest.raises(WatermarkError, match="threads must be a whole number from 1 to 64"):
        embed(synthetic_clip(size=128, frames=2), PAYLOAD, KEY, threads=threads)  # type: ignore[arg-type]


def test_by_default_the_embed_uses_the_cores_up_to_four() -> None:
    assert 1 <= embed_threads() <= 4


def test_the_service_setting_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GOVERNANCE_EMBED_THREADS`` is a setting like the others: a bad value stops the service at start (not
    every seal later); the pipeline's sealer passes a good one to the embed."""
    from governance.config import Settings
    from governance.errors import ConfigError

    for bad in (-1, 65):
        with pytest.raises(ConfigError, match="embed_threads"):
            Settings(embed_threads=bad)
    assert Settings(embed_threads=3).embed_threads == 3 and Settings().embed_threads == 0
    monkeypatch.setenv("GOVERNANCE_EMBED_THREADS", "2")
    assert Settings.from_env().embed_threads == 2


def test_a_native_check_tries_no_more_hypotheses_than_the_bound_counts() -> None:
    """``early_false_positive_bound`` counts NATIVE_HYPOTHESES tag checks per early check: a native-only search of
    unmarked frames large enough for the half-size image (every native hypothesis tried, none verifying) makes at
    most that many, and the full search more."""
    from provenance.watermark import Evidence, _Search

    evidence = Evidence.of(synthetic_clip(size=512, frames=3, seed=6))
    levels = [(evidence._image, 1), (evidence._half, 2)]
    assert evidence._half is not None
    native = _Search(levels, KEY)
    assert native.run(native_only=True) is None
    assert 0 < native.tried <= NATIVE_HYPOTHESES
    full = _Search(levels, KEY)
    assert full.run() is None and native.tried < full.tried <= MAX_HYPOTHESES


def test_a_reader_without_a_frame_budget_reads_every_frame_it_is_given(marked: np.ndarray) -> None:
    reader = MarkReader([KEY], max_frames=None, checks=())
    assert _feed(reader, marked) == len(marked) and not reader.done
    found, _ = reader.result()
    assert found.payload == PAYLOAD and found.frames_used == len(marked)


def test_the_services_thread_bound_is_the_embeds() -> None:
    from governance.config import Settings
    from governance.errors import ConfigError

    assert Settings(embed_threads=MAX_EMBED_THREADS).embed_threads == MAX_EMBED_THREADS
    with pytest.raises(ConfigError):
        Settings(embed_threads=MAX_EMBED_THREADS + 1)
