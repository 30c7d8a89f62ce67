"""``media.video.iter_planes``: what verification reads instead of RGB frames (issue 12), checked against the RGB
path it replaced, on the generator's output and on a phone video stored sideways."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from media.video import Clip, MediaError, iter_frames, iter_planes, prefetch, write_video
from provenance.errors import FingerprintError, WatermarkError
from provenance.fingerprint import FingerprintBuilder
from provenance.watermark import Evidence

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128]
    base = np.stack([xx * 2, yy * 2, (xx + yy)], axis=-1).astype(np.float32)
    frames = np.clip(base[None] + rng.normal(0, 8, (6, 96, 128, 3)), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("planes") / "clip.mp4"
    write_video(path, Clip(frames=frames, fps=24.0))
    return path


def test_planes_match_the_rgb_frames_they_replace(clip_path):
    for (i, planes), (j, rgb) in zip(iter_planes(clip_path), iter_frames(clip_path), strict=True):
        assert i == j and planes.shape == rgb.shape[:2]
        luma = rgb.astype(np.float32) @ LUMA
        assert np.abs(planes.luma - luma).mean() < 2.5  # the RGB conversion's rounding and chroma filter
        want = cv2.cvtColor(cv2.resize(rgb, (32, 24), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2YCrCb)
        assert np.abs(planes.ycrcb(32, 24).astype(int) - want).max() <= 4
        assert np.abs(planes.rgb().astype(int) - rgb).mean() < 3


def test_a_sideways_phone_video_comes_out_upright_as_with_rgb():
    path = TESTDATA / "field-reports" / "selfie-portrait-rotated90.mp4"
    if not path.exists():
        pytest.skip("needs ../shared/testdata")
    (_, planes), (_, rgb) = next(iter_planes(path)), next(iter_frames(path))
    assert planes.shape == rgb.shape[:2] and planes.shape[0] > planes.shape[1]  # portrait, as shown
    assert np.allclose(planes.luma, rgb.astype(np.float32) @ LUMA)


def test_prefetch_hands_on_the_producers_error_and_stops_early():
    def broken():
        yield 1
        raise ValueError("the decoder broke")

    got = prefetch(broken, 2)
    assert next(got) == 1
    with pytest.raises(ValueError, match="decoder broke"):
        next(got)
    many = prefetch(lambda: iter(range(10_000)), 4)
    assert next(many) == 0
    many.close()  # the thread stops; nothing hangs


def test_planes_decoded_ahead_are_the_planes_decoded_inline(clip_path):
    """``iter_planes(ahead=N)`` decodes on a second thread and makes the planes on the reader's: the same frames,
    in order, upright; a decode error reaches the reader; closing it early stops the decoding thread."""
    import threading

    inline = [(i, p.luma, p.ycrcb(16, 16)) for i, p in iter_planes(clip_path)]
    ahead = [(i, p.luma, p.ycrcb(16, 16)) for i, p in iter_planes(clip_path, ahead=2, name="test-decode")]
    assert [i for i, *_ in ahead] == [i for i, *_ in inline] == list(range(6))
    for (_, y1, t1), (_, y2, t2) in zip(inline, ahead, strict=True):
        assert np.array_equal(y1, y2) and np.array_equal(t1, t2)
    early = iter_planes(clip_path, ahead=1, name="test-decode-early")
    next(early)
    assert any(t.name == "test-decode-early" and t.is_alive() for t in threading.enumerate())  # there is one to stop
    early.close()
    assert not any(t.name == "test-decode-early" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(MediaError, match="not a readable video container"):
        next(iter_planes(b"not a video at all", ahead=2))


def test_readers_refuse_what_is_not_a_frame():
    with pytest.raises(WatermarkError, match="float32 luma"):
        Evidence().add_luma(np.zeros((64, 64), np.uint8))
    with pytest.raises(WatermarkError, match="float32 luma"):
        Evidence().add_luma(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(WatermarkError, match="at least 64x64"):
        Evidence().add_luma(np.zeros((32, 200), np.float32))

    class Tiny:
        shape = (4, 4)

    with pytest.raises(FingerprintError, match="at least 8x8"):
        FingerprintBuilder().add_planes(Tiny())  # type: ignore[arg-type]


def test_evidence_from_planes_reads_the_mark_as_from_rgb(clip_path, tmp_path):
    from provenance.watermark import WatermarkKey, embed

    key = WatermarkKey(b"k" * 32)
    frames = np.stack([f for _, f in iter_frames(clip_path)])
    marked = tmp_path / "marked.mp4"
    write_video(marked, Clip(frames=embed(np.repeat(frames, 4, axis=0), b"planes!!", key), fps=24.0))
    by_planes, by_rgb = Evidence(), Evidence()
    for (_, p), (_, f) in zip(iter_planes(marked), iter_frames(marked), strict=True):
        by_planes.add_luma(p.luma)
        by_rgb.add(f)
    assert by_planes.detect(key).payload == by_rgb.detect(key).payload == b"planes!!"


def test_video_range_thumbnails_are_the_full_range_formula_for_every_value():
    """``Planes.ycrcb`` of video-range planes (tables since issue 12's third pass): each area-averaged value ``v`` is
    ``rint((v - 16) * 255 / 219)`` for luma and ``rint((v - 128) * 255 / 224 + 128)`` for chroma in float32, clipped
    to 0-255, for all 256 values (the ends past 16-235 and 16-240 included)."""
    import av

    from media.video import Planes

    frame = av.VideoFrame(64, 32, "yuv420p")  # luma 64 x 32, chroma 32 x 16: each plane holds every byte value
    luma = (np.arange(64 * 32) % 256).astype(np.uint8).reshape(32, 64)
    cb = (np.arange(32 * 16) % 256).astype(np.uint8).reshape(16, 32)
    cr = cb[::-1, ::-1].copy()
    for plane, data in ((0, luma), (1, cb), (2, cr)):
        rows = np.zeros((data.shape[0], frame.planes[plane].line_size), np.uint8)
        rows[:, : data.shape[1]] = data
        frame.planes[plane].update(rows.tobytes())
    planes = Planes(frame)

    def full(v: np.ndarray, offset: int, scale: float, centre: int) -> np.ndarray:
        x = (v.astype(np.float32) - np.float32(offset)) * np.float32(scale) + np.float32(centre)
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)

    whole = planes.ycrcb(64, 32)  # luma at its own size: every value as stored
    assert np.array_equal(whole[..., 0], full(luma, 16, 255 / 219, 0))
    assert whole[..., 0].min() == 0 and whole[..., 0].max() == 255  # 0-15 and 236-255 clip
    half = planes.ycrcb(32, 16)  # chroma at its own size; luma area-averaged 2 x 2
    assert np.array_equal(half[..., 1], full(cr, 128, 255 / 224, 128))  # cv2's order: Y, Cr, Cb
    assert np.array_equal(half[..., 2], full(cb, 128, 255 / 224, 128))
    averaged = cv2.resize(luma, (32, 16), interpolation=cv2.INTER_AREA)
    assert np.array_equal(half[..., 0], full(averaged, 16, 255 / 219, 0))


def _frames_left_to_the_collector(decode) -> int:  # type: ignore[no-untyped-def]
    """How many ``av.VideoFrame`` a decode left in reference cycles (freed only when the collector runs)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        decode()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sum(type(o).__name__ == "VideoFrame" for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_decode_leaves_its_frames_to_reference_counting(clip_path):
    """Reading a frame's side data ties it into a cycle with PyAV's container of side data; the readers look at it
    once per decode (and when the rotation changes), so the decoded pictures are freed as soon as they are read, not
    at the next collection: before, every frame of every verification (240 for a 10 s clip, ~90 MB at 512p) waited
    for one (issue 12, third pass)."""
    assert _frames_left_to_the_collector(lambda: [p.luma for _, p in iter_planes(clip_path)]) <= 1
    assert _frames_left_to_the_collector(lambda: list(iter_frames(clip_path))) <= 1
    sideways = TESTDATA / "field-reports" / "selfie-portrait-rotated90.mp4"
    if sideways.exists():
        assert _frames_left_to_the_collector(lambda: [p.shape for _, p in iter_planes(sideways)]) <= 1


def test_the_display_matrix_is_read_again_when_the_rotation_changes():
    from media.video import _Orientation

    class Side:
        def __init__(self, matrix: list[int]) -> None:
            self.data = np.array(matrix, "<i4").tobytes()
            self.type = type("T", (), {"name": "DISPLAYMATRIX"})()

        def __bytes__(self) -> bytes:
            return self.data

    class Frame:
        reads = 0

        def __init__(self, rotation: int, matrix: list[int] | None) -> None:
            self.rotation, self._matrix = rotation, matrix

        @property
        def side_data(self) -> list[Side]:
            Frame.reads += 1
            return [] if self._matrix is None else [Side(self._matrix)]

    one = 1 << 16
    turned = [0, one, 0, -one, 0, 0, 0, 0, 1 << 30]  # 90 degrees
    tracker = _Orientation()
    got = [tracker.matrix(f) for f in [Frame(0, None), Frame(0, None), Frame(90, turned), Frame(90, turned),
                                       Frame(0, None)]]
    assert [None if m is None else list(m) for m in got] == [None, None, turned, turned, None]
    assert Frame.reads == 3  # the first frame, and each change of rotation
