"""The frame rate media.video reports, and the frames' own timestamps.

A browser's MediaRecorder writes variable-rate WebM whose header states no rate: FFmpeg then reports the time
base's 1000 frames a second (what Chromium's recordings read as on a busy machine: docs/enrollment.md, "Time").
:func:`media.video.probe` measures the rate from the packets' timestamps instead, and keeps the header's exact
rate where the two agree; :func:`media.video.iter_timed_frames` gives every frame its timestamp.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media.video import Clip, iter_frames, iter_timed_frames, probe, read_video, write_video
from tests.media_tools import encode_timed

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"


def _frames(n: int, side: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    return np.stack([np.roll(base, i, axis=1) for i in range(n)])


def _dropped(n: int = 120, step_ms: int = 50, seed: int = 1) -> list[int]:
    """Timestamps of a 1000/step_ms fps camera after a busy recorder dropped about a third of the frames."""
    rng = np.random.default_rng(seed)
    times = [k * step_ms for k in range(n) if k in (0, n - 1) or rng.random() < 0.67]
    times[5] = times[4]  # a late frame stamped with its predecessor's time
    return times


def test_a_browser_recording_is_measured_not_read_from_its_header() -> None:
    times = _dropped()
    data = encode_timed(_frames(len(times)), times)
    with av.open(io.BytesIO(data)) as c:
        assert c.streams.video[0].average_rate == 1000  # what the header claims
    rate = (len(times) - 1) / ((times[-1] - times[0]) / 1000)
    assert 12 < rate < 15
    assert probe(data).fps == pytest.approx(rate)
    clip = read_video(data, with_audio=False)  # a clip of 1000 fps would be refused (at most 240)
    assert clip.frame_count == len(times) and clip.fps == pytest.approx(rate)


def test_every_frame_comes_with_its_timestamp() -> None:
    times = _dropped(40)
    data = encode_timed(_frames(len(times)), times)
    timed = list(iter_timed_frames(data))
    assert [i for i, _, _ in timed] == list(range(len(times)))
    assert [round(t * 1000) for _, t, _ in timed] == times  # equal neighbours kept, as written
    for (_, _, a), (_, b) in zip(timed, iter_frames(data), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_long_recording_is_measured_from_its_first_packets() -> None:
    times = [k * 50 for k in range(150)] + [7500 + k * 100 for k in range(1, 200)]  # 20 fps for 7.5 s, then 10
    data = encode_timed(_frames(len(times), 16), times)
    assert probe(data).fps == 20.0  # the first 104 timestamps (120, less 16), not the whole file's 13.4


@pytest.mark.parametrize("fps", [24.0, 30000 / 1001, 15.0])
def test_a_constant_rate_file_keeps_its_header_rate_exactly(tmp_path: Path, fps: float) -> None:
    path = tmp_path / "cfr.mp4"
    write_video(path, Clip(frames=_frames(150), fps=fps))  # libx264 "medium": B-frames, packets out of order
    assert probe(path).fps == float(Fraction(fps).limit_denominator(1001))


@pytest.mark.parametrize("name", ["faces/short_hamilton_clip.mp4", "c2pa/video1.mp4",
                                  "field-reports/selfie-portrait-rotated90.mp4"])
def test_real_files_keep_their_header_rate(name: str) -> None:
    path = TESTDATA / name
    with av.open(str(path)) as c:
        header = float(c.streams.video[0].average_rate)
    assert probe(path).fps == header
