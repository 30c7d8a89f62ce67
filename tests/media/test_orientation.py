"""Every decode honours the display matrix: phones store portrait video sideways (media/video.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media.video import iter_frames, probe, read_video, sample_frames

FIELD = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "field-reports"


def test_the_sideways_selfie_decodes_as_its_upright_twin() -> None:
    """Field report: the same 45 frames, stored upright and stored sideways with a -90 degree matrix."""
    sideways, upright = FIELD / "selfie-portrait-rotated90.mp4", FIELD / "selfie-portrait-upright.mp4"
    with av.open(str(sideways)) as c:  # stored landscape
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (690, 360)
    a, b = probe(sideways), probe(upright)
    assert (a.width, a.height) == (b.width, b.height) == (360, 690)
    assert (a.rotation, a.mirrored, b.rotation) == (270, False, 0)
    diffs = [np.abs(x.astype(int) - y).mean() for (_, x), (_, y) in zip(iter_frames(sideways), iter_frames(upright),
                                                                       strict=True)]
    assert len(diffs) == 45 and max(diffs) < 4  # codec noise only
    assert read_video(sideways).frames.shape == (45, 690, 360, 3)
    assert sample_frames(sideways, 3)[0].shape == (690, 360, 3)


def pattern() -> np.ndarray:
    """48x80 with four distinct quadrants: every turn and mirror looks different."""
    a = np.zeros((48, 80, 3), np.uint8)
    a[:24, :40] = (250, 0, 0)
    a[:24, 40:] = (0, 250, 0)
    a[24:, :40] = (0, 0, 250)
    a[24:, 40:] = (250, 250, 250)
    return a


CASES = [(deg, h, v) for deg in (0, 90, 180, 270) for h, v in ((False, False), (True, False), (False, True))]


@pytest.mark.parametrize(("degrees", "hflip", "vflip"), CASES)
def test_every_turn_and_mirror(tmp_path: Path, degrees: int, hflip: bool, vflip: bool) -> None:
    """PyAV writes the matrix (``set_display_rotation``: degrees counter-clockwise, then the mirrors, as
    the value ``VideoFrame.rotation`` reads back); the decoder must show what that says."""
    img = pattern()
    path = tmp_path / "turned.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(10))
        s.width, s.height, s.pix_fmt = 80, 48, "yuv444p"
        s.options = {"crf": "0", "preset": "ultrafast"}
        s.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    want = np.rot90(img, degrees // 90)
    if hflip:
        want = want[:, ::-1]
    if vflip:
        want = want[::-1]
    _, got = next(iter_frames(path))
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).mean() < 3
    info = probe(path)
    assert (info.height, info.width) == want.shape[:2]
