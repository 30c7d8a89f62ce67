"""Decoding limits are counted while decoding and stop it at once (media/limits.py, docs/limits.md).

The hostile inputs are those of ../shared/testdata/field-reports/README.md, built in memory by
bench/inputs.py: a 13000x13000 PNG of 20 KB, 100,000 16x16 frames at 1000 fps, 900 tracks, and a 400 s
WebM whose header states no duration.
"""

from __future__ import annotations

import io
import time

import av
import numpy as np
import pytest

from bench.inputs import many_frames_mp4, many_tracks_mp4, no_duration_webm, png_bomb
from media.limits import DEFAULT_LIMITS, FRAME_COST_FLOOR, LimitExceeded, Limits, Meter
from media.video import Clip, iter_frames, load_image, probe, read_video, sample_frames, write_video


@pytest.fixture(scope="module")
def webm() -> bytes:
    data = no_duration_webm()
    with av.open(io.BytesIO(data)) as c:  # what a browser's MediaRecorder writes: no duration anywhere
        assert c.duration is None and c.streams.video[0].duration is None
    return data


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    frames = np.random.default_rng(1).integers(0, 256, (12, 64, 96, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    write_video(path, Clip(frames, 24.0), preset="ultrafast")
    return path.read_bytes()


def refused(fn, limit: str) -> tuple[LimitExceeded, float]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    with pytest.raises(LimitExceeded) as info:
        fn()
    assert info.value.limit == limit, info.value
    assert f"({limit})" in str(info.value) and "\n" not in str(info.value)
    return info.value, time.perf_counter() - start


@pytest.mark.parametrize("side", [13000, 30000])
def test_png_bomb_is_refused_from_its_header(side: int) -> None:
    data = png_bomb(side)
    assert len(data) < 120_000
    e, _ = refused(lambda: load_image(data), "image_pixels")
    assert e.value == side * side and e.allowed == DEFAULT_LIMITS.image_pixels


def test_image_memory_budget() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2000, 1500), (10, 20, 30)).save(buf, "PNG")
    e, _ = refused(lambda: load_image(buf.getvalue(), limits=Limits(memory_bytes=20 * 2**20)), "memory_bytes")
    assert "MiB" in str(e)
    assert load_image(buf.getvalue()).shape == (1500, 2000, 3)


def test_100k_frames_at_1000_fps_are_refused_at_once() -> None:
    data = many_frames_mp4()
    assert len(data) < 2_000_000
    e, _ = refused(lambda: list(iter_frames(data)), "frames")
    assert e.value == 100_000


def test_frames_are_counted_when_the_header_states_none(webm: bytes) -> None:
    meter = Meter(DEFAULT_LIMITS.but(frames=500))
    refused(lambda: list(iter_frames(webm, meter=meter)), "frames")
    assert meter.frames == 500  # the 501st frame was not handed out


def test_900_tracks_are_refused_before_any_stream_is_set_up() -> None:
    data = many_tracks_mp4()
    e, _ = refused(lambda: list(iter_frames(data)), "tracks")
    refused(lambda: probe(data), "tracks")


@pytest.mark.parametrize("seconds", [300.0, 60.0])
def test_a_webm_without_duration_stops_after_the_allowed_seconds(webm: bytes, seconds: float) -> None:
    meter = Meter(DEFAULT_LIMITS.but(seconds=seconds))
    e, _ = refused(lambda: list(iter_frames(webm, meter=meter)), "seconds")
    assert seconds < e.value <= seconds + 0.2
    assert meter.frames == int(seconds * 10) + 1  # 10 fps: decoding stopped at the first frame past the limit
    assert probe(webm).duration_s == 0.0  # the header's silence is reported, never relied on


def test_frame_pixels_and_memory_are_counted_on_decoded_frames(small_mp4: bytes) -> None:
    refused(lambda: list(iter_frames(small_mp4, limits=Limits(frame_pixels=64 * 95))), "frame_pixels")
    refused(lambda: list(iter_frames(small_mp4, limits=Limits(memory_bytes=64 * 96 * 20))), "memory_bytes")
    refused(lambda: read_video(small_mp4, limits=Limits(memory_bytes=64 * 96 * 30)), "memory_bytes")
    assert len(list(iter_frames(small_mp4))) == 12


def test_the_meter_counts_decoded_pixels_with_a_floor_per_frame(small_mp4: bytes) -> None:
    meter = Meter()
    list(iter_frames(small_mp4, meter=meter))
    assert meter.frames == 12 and meter.pixels == 12 * FRAME_COST_FLOOR  # 64x96 is under the floor
    load_image(png_bomb(300), meter=meter)
    assert meter.files == 1 and meter.pixels == 12 * FRAME_COST_FLOOR + 90_000


def test_sample_frames_spreads_over_a_video_of_unknown_length_in_bounded_memory(tmp_path) -> None:
    levels = np.arange(0, 250, 2, dtype=np.uint8)  # 125 frames, each a flat grey naming its index
    frames = np.repeat(levels[:, None, None, None], 64, axis=1).repeat(64, axis=2).repeat(3, axis=3)
    write_video(tmp_path / "ramp.mp4", Clip(frames, 25.0), crf=0, preset="ultrafast")
    picked = sample_frames(tmp_path / "ramp.mp4", 10)
    got = [round(float(f.mean()) / 2) for f in picked]
    assert len(got) == 10 and got == sorted(got) and got[0] == 0 and got[-1] >= 112
    assert max(np.diff(got)) <= 2 * min(np.diff(got)) + 2  # evenly spread
    few = sample_frames(tmp_path / "ramp.mp4", 40, per_second=4.0)  # 5 s at 4 a second
    assert 19 <= len(few) <= 21
    assert max(f.shape[0] for f in sample_frames(tmp_path / "ramp.mp4", 3, max_side=32)) == 32


def test_limits_are_checked_values() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Limits(seconds=0)
    assert DEFAULT_LIMITS.but(tracks=2).tracks == 2 and DEFAULT_LIMITS.tracks == 16
