"""Defects found by the session-22 review of issue 12's performance changes (the early mark reader, the threaded
embed, the batched fingerprint descriptors, and the readers' callers). Each test fails while its defect stands;
the report names them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from media.limits import Meter
from provenance import fingerprint as fp
from provenance.errors import WatermarkError
from provenance.watermark import MarkReader, WatermarkKey

KEY = WatermarkKey(b"consentgate-test-watermark-key-1")


def _thumbs(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (fp.SAMPLES, *shape, 3), dtype=np.uint8)
    return np.stack([cv2.GaussianBlur(t, (0, 0), 1.5) for t in raw])


@pytest.mark.parametrize(("shape", "window"), [
    ((64, 64), (0.1, 0.4, 0.1, 0.9)),  # 20 rows (enlarged to 32) x 52 columns (reduced to 32)
    ((64, 113), None),  # a 16:9 frame's shaped thumbnail: the 9:16 box is 45 rows x ~25 columns
    ((113, 64), None),  # a 9:16 frame's: the 16:9 box is ~25 rows x 45 columns
])
def test_batched_descriptors_match_where_one_axis_is_enlarged_and_the_other_reduced(
        shape: tuple[int, int], window: tuple[float, float, float, float] | None) -> None:
    """OpenCV's INTER_AREA resize interpolates *both* axes when either one is enlarged, so the per-axis matrices
    taken from a one-axis resize differed from ``_describe`` by up to 0.015 a value (7-9 of 127 in the stored int8
    views) in the aspect-box views of tall and wide frames (padded reposts), not "to float32 rounding"."""
    thumbs = _thumbs(shape, seed=7)
    if window is None:
        windows = fp._box_windows(fp.BorderStats(), shape)
        assert windows
    else:
        windows = [window]
    for w in windows:
        one = np.stack([fp._describe(t, w) for t in thumbs])
        many = fp._describe_many(thumbs, w)
        np.testing.assert_allclose(many, one, rtol=0, atol=5e-6, err_msg=str(w))


def test_a_padded_repost_query_gets_the_views_the_per_frame_descriptor_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a 16:9 clip's query views (its aspect boxes included) equal those of the per-frame code."""
    rng = np.random.default_rng(11)
    frames = np.stack([cv2.GaussianBlur(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), (0, 0), 2.0)
                       for _ in range(fp.SAMPLES)])
    frames[:, :, :40] = 0  # pillarbox bars: a picture padded into the frame
    frames[:, :, 120:] = 0
    batched = fp.fingerprint_frames(frames)

    def per_frame(planes: np.ndarray, windows: list[tuple[float, float, float, float]]) -> np.ndarray:
        # the planes back to the YCrCb thumbnails they were made from (whole numbers: exact), then each window of
        # each frame by the reference definition
        thumbs = (np.moveaxis(planes, 0, -1) + np.float32([0, 128, 128])).astype(np.uint8)
        return np.stack([np.stack([fp._describe(t, w) for t in thumbs]) for w in windows]).astype(np.float32)

    calls = []
    monkeypatch.setattr(fp, "_describe_windows", lambda planes, windows: calls.append(len(windows)) or
                        per_frame(planes, windows))
    reference = fp.fingerprint_frames(frames)
    assert sum(calls) > len(fp._windows()), "the reference did not describe the query's windows"
    assert batched.views is not None and reference.views is not None
    np.testing.assert_array_equal(batched.data, reference.data)
    assert int(np.abs(batched.views.astype(int) - reference.views).max()) <= 1


def test_a_failed_full_search_does_not_turn_into_no_mark_on_the_next_call() -> None:
    """``MarkReader.result`` marked the search done before running it: a reader with no frame raised the first
    time and answered ``None`` ("a video was read, no mark") the second."""
    reader = MarkReader([KEY])
    for _ in range(2):
        with pytest.raises(WatermarkError, match="no frames"):
            reader.result()


@pytest.mark.parametrize(("kind", "data"), [
    ("image", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00garbage" * 64),
    ("video", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00garbage" * 64),
])
def test_by_content_refuses_undecodable_media_without_watermark_keys(kind: str, data: bytes) -> None:
    """``/matches/byContent`` answers 415 for an asset that cannot be decoded. Before issue 12 the watermark's
    reader decoded the upload whatever the keys; now it runs only with keys, so a deployment without a watermark
    key (``runtime.keys.present()`` gives none before the first key is made) answered 200 with no matches."""
    from governance.errors import UnsupportedMedia
    from governance.softbinding.services import by_content
    from media.formats import HEAD_BYTES, sniff

    fmt = sniff(data[:HEAD_BYTES])
    assert fmt is not None and fmt.kind == kind and fmt.pixels
    with pytest.raises(UnsupportedMedia):
        by_content(None, None, [], data, alg=None, max_results=10, meter=Meter())  # type: ignore[arg-type]
