"""Findings of the session-26 review of issue 12's fifth pass (the query's windows described together, the border
statistics in batches, ``iter_planes(ahead=N)``). One defect: an empty batch of border statistics fixed their frame
size. The rest are gaps: the code gave the right answers, but no test of the suite failed when those parts broke;
each test here fails under the mutation its docstring names, and the report lists them."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import media.video
from media.limits import Meter
from media.video import Clip, iter_planes, write_video
from provenance import fingerprint as fp
from provenance._borders import BorderStats

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"


def _scene(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """A smooth picture drifting a little every frame."""
    base = np.random.default_rng(seed).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    big = cv2.resize(base, (w + 40, h + 40), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[t % 20:t % 20 + h, (2 * t) % 40:(2 * t) % 40 + w])


def _padded(count: int, frame: tuple[int, int], picture: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``count`` frames of ``frame`` (height, width) px: the picture in the middle, black bars around it."""
    (fh, fw), (ph, pw) = frame, picture
    out = []
    for t in range(count):
        f = np.zeros((fh, fw, 3), np.uint8)
        y, x = (fh - ph) // 2, (fw - pw) // 2
        f[y:y + ph, x:x + pw] = _scene(t, ph, pw, seed)
        out.append(f)
    return out


def _reference(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """The query a fingerprint of ``frames`` (at most MAX_THUMBNAILS: every frame kept) is defined to carry, step by
    step: the border statistics of every frame's shaped thumbnail added one at a time, the box windows they give,
    and every window of every sampled frame by the reference descriptor (``_describe``), the box windows on the
    thumbnails that keep the frame's shape. Returns (stored view, views, number of box windows)."""
    thumbs = [fp._thumbnails(f, shaped=True) for f in frames]
    stats = BorderStats()
    for _, shaped in thumbs:
        stats.add(shaped[..., 0])
    n = len(frames)
    picked = [thumbs[min(n - 1, int((i + 0.5) * n / fp.SAMPLES))] for i in range(fp.SAMPLES)]
    boxes = fp._box_windows(stats, frames[0].shape[:2])
    described = [np.stack([fp._describe(square, w) for square, _ in picked]) for w in fp._windows()]
    described += [np.stack([fp._describe(shaped, w) for _, shaped in picked]) for w in boxes]
    q = np.clip(np.rint(np.stack(described) * 127), -127, 127).astype(np.int8)
    return q[0], np.concatenate([q[1:], q[..., fp._mirror_order()]]), len(boxes)


@pytest.mark.parametrize("count", [20, 45])
@pytest.mark.parametrize(("frame", "picture"), [((90, 160), (90, 100)), ((160, 90), (100, 90))],
                         ids=["wide", "tall"])
def test_a_query_carries_the_box_views_of_the_bars_in_all_its_frames(
        count: int, frame: tuple[int, int], picture: tuple[int, int]) -> None:
    """The builder hands its frames' border statistics over 32 at a time; ``fingerprint()`` must hand over the
    frames still waiting, and describe the box windows on the thumbnails that keep the frame's shape. No test failed
    with either broken: without the hand-over in ``fingerprint()`` a clip of under 32 frames found no bars (its box
    views were missing), and with the box windows read from the square thumbnails (``same = True``) a tall or wide
    frame's box views were not the picture's. Here the bars leave a picture of no usual aspect ratio, so only the
    bars found give its box (six more windows), against the reference definition frame by frame."""
    frames = _padded(count, frame, picture, seed=count + frame[0])
    data, views, boxes = _reference(frames)
    assert boxes == len(fp._box_windows(BorderStats(), frame)) + 6  # the bars found give a box of their own
    got = fp.fingerprint_frames(frames)
    assert got.views is not None and got.views.shape == views.shape, "the query lacks the views of the bars found"
    assert int(np.abs(got.data.astype(int) - data).max()) <= 1
    assert int(np.abs(got.views.astype(int) - views).max()) <= 1


def test_a_fingerprint_taken_midway_then_more_frames_is_a_fresh_fingerprint_of_them_all() -> None:
    """``fingerprint()`` now changes the builder (it hands the waiting frames to the border statistics): taking one
    after 20 frames and another after 50 more must give, bit for bit, what builders fed 20 and 70 frames give, with
    the box views of the bars; and the statistics must hold every frame once, as frame-by-frame ``add`` sums them
    (the suite passed with a batch of 32 dropped instead of handed over, or handed over twice)."""
    frames = _padded(70, (90, 160), (90, 100), seed=4)
    builder = fp.FingerprintBuilder()
    for f in frames[:20]:
        builder.add(f)
    midway = builder.fingerprint()
    _assert_the_sums_of(builder, frames[:20])
    for f in frames[20:]:
        builder.add(f)
    assert len(builder._lumas) < fp._BORDER_BATCH  # handed over as they come, not held to the end
    final = builder.fingerprint()
    _assert_the_sums_of(builder, frames)
    with_bars = 2 * (len(fp._windows()) + len(fp._box_windows(BorderStats(), (90, 160))) + 6) - 1
    for got, fresh in ((midway, fp.fingerprint_frames(frames[:20])), (final, fp.fingerprint_frames(frames))):
        assert got.views is not None and fresh.views is not None
        assert np.array_equal(got.data, fresh.data) and np.array_equal(got.views, fresh.views)
        assert len(got.views) == with_bars


def _assert_the_sums_of(builder: fp.FingerprintBuilder, frames: list[np.ndarray]) -> None:
    """The builder's border statistics (after ``fingerprint()``) are those of ``frames`` added one at a time."""
    one = BorderStats()
    for f in frames:
        one.add(fp._thumbnails(f, shaped=True)[1][..., 0])
    got = builder._borders
    assert got is not None and got.frames == one.frames == len(frames)
    for a, b in zip([*got._detail, *got._step], [*one._detail, *one._step], strict=True):
        assert np.array_equal(a, b)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(26)
    frames = rng.integers(0, 256, (12, 64, 96, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("s26") / "clip.mp4"
    write_video(path, Clip(frames=frames, fps=24.0))
    return path


class _ThreadMeter(Meter):
    """A real meter that also notes the thread each decoded frame was counted on (the decoder's)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def add_frame(self, pixels: int) -> None:
        self.threads.add(threading.current_thread().name)
        super().add_frame(pixels)


def test_planes_ahead_are_decoded_on_the_named_thread_and_made_on_the_readers(
        clip_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``iter_planes(ahead=N)`` is meant to decode on a second thread named ``name`` and to make each ``Planes`` on
    the reader's thread (the point of the change). The suite's test compared the frames only, so it passed with
    ``ahead`` ignored (all inline) and with the planes made on the decoding thread; and its check that closing
    early stops the thread held as well when there never was one."""
    made: list[str] = []
    real = media.video.Planes

    class Noted(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(threading.current_thread().name)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(media.video, "Planes", Noted)
    meter = _ThreadMeter()
    reader = threading.current_thread().name
    frames = iter_planes(clip_path, meter=meter, ahead=2, name="s26-decode")
    next(frames)
    assert any(t.name == "s26-decode" and t.is_alive() for t in threading.enumerate())
    frames.close()
    assert not any(t.name == "s26-decode" and t.is_alive() for t in threading.enumerate())
    assert meter.threads == {"s26-decode"} and made == [reader]
    assert 1 <= meter.frames <= 1 + 2 + 1  # the one read, ``ahead`` queued, one in the decoder's hand: no more
    made.clear()
    inline = _ThreadMeter()
    assert len(list(iter_planes(clip_path, meter=inline))) == 12
    assert inline.threads == {reader} and set(made) == {reader}


def test_planes_ahead_of_a_sideways_phone_video_are_the_inline_ones() -> None:
    """With ``ahead`` the frames wait in the queue and a rotated frame is turned upright (through the reader's
    converter) on the reader's thread, after the decoder may have closed the container: the same planes as inline,
    for the field report's phone video stored sideways (the existing test covers only planar frames)."""
    path = TESTDATA / "field-reports" / "selfie-portrait-rotated90.mp4"
    if not path.exists():
        pytest.fail(f"test data missing: {path}", pytrace=False)
    inline = [(i, p.shape, p.luma, p.ycrcb(36, 64)) for i, p in iter_planes(path)]
    ahead = [(i, p.shape, p.luma, p.ycrcb(36, 64)) for i, p in iter_planes(path, ahead=8, name="s26-sideways")]
    assert len(inline) == len(ahead) > 8
    for (i, s, y, t), (j, s2, y2, t2) in zip(inline, ahead, strict=True):
        assert i == j and s == s2 and s[0] > s[1]  # upright: portrait
        assert np.array_equal(y, y2) and np.array_equal(t, t2)


def test_an_empty_batch_of_border_statistics_adds_nothing() -> None:
    """``BorderStats.add_many`` is documented as ``add`` of each frame in turn, but an empty batch given first fixed
    the statistics' frame size (from its (0, H, W) shape): the first real frame, of another size, was then refused
    as "frames of one video must have one size", though no frame had been added."""
    rng = np.random.default_rng(26)
    frames = rng.integers(0, 256, (3, 64, 114), dtype=np.uint8)
    stats, one = BorderStats(), BorderStats()
    stats.add_many(np.zeros((0, 90, 160), np.uint8))
    assert stats.frames == 0 and stats.box() is None
    stats.add_many(frames)
    for f in frames:
        one.add(f)
    assert stats.frames == one.frames == 3
    for a, b in zip([*stats._detail, *stats._step], [*one._detail, *one._step], strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="one size"):  # a real frame of another size is still refused
        stats.add(np.zeros((90, 160), np.uint8))
