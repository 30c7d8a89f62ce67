"""The fingerprint's batched descriptor (:func:`provenance.fingerprint._describe_many`, issue 12) against the
per-frame one it replaces: the same values to float32 rounding, for square thumbnails, the thumbnails of tall
and wide frames, every query window and an off-centre box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from provenance import fingerprint as fp


def _thumbs(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (fp.SAMPLES, *shape, 3), dtype=np.uint8)
    return np.stack([cv2.GaussianBlur(t, (0, 0), 1.5) for t in raw])  # picture-like: neighbours correlate


@pytest.mark.parametrize("shape", [(64, 64), (64, 113), (200, 64)])
def test_the_batched_descriptors_equal_the_per_frame_ones(shape: tuple[int, int]) -> None:
    thumbs = _thumbs(shape, seed=sum(shape))
    windows = [*fp._windows(), (0.1, 0.7, 0.2, 0.95), (0.0, 1.0, 0.0, 1.0)]
    for window in windows:
        one = np.stack([fp._describe(t, window) for t in thumbs])
        many = fp._describe_many(thumbs, window)
        assert many.shape == one.shape == (fp.SAMPLES, fp._DIMS) and many.dtype == np.float32
        np.testing.assert_allclose(many, one, rtol=0, atol=5e-6)


def test_a_flat_frame_has_a_zero_layout_in_both() -> None:
    """The guards against dividing by a zero norm take the same branch (a flat grey frame: no layout)."""
    flat = np.full((fp.SAMPLES, 64, 64, 3), 128, np.uint8)
    window = fp._windows()[0]
    one = np.stack([fp._describe(t, window) for t in flat])
    many = fp._describe_many(flat, window)
    np.testing.assert_array_equal(many, one)
    assert not many.any()


def test_the_axis_matrices_are_opencvs_operators() -> None:
    """A resize and a blur applied as the matrices equal OpenCV's on a random image."""
    img = np.random.default_rng(3).random((45, 37))
    r_y, r_x = fp._resize_matrix(45, 32), fp._resize_matrix(37, 32)
    np.testing.assert_allclose(r_y @ img @ r_x.T, cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA),
                               atol=1e-9)
    work = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA)
    g = fp._blur_matrix(32, 0.8)
    np.testing.assert_allclose(g @ work @ g.T, cv2.GaussianBlur(work, (0, 0), 0.8), atol=1e-9)


@pytest.mark.parametrize("shape", [(64, 64), (64, 113), (200, 64)])
def test_every_window_at_once_equals_each_window_alone(shape: tuple[int, int]) -> None:
    """:func:`provenance.fingerprint._describe_windows` over a query's windows together (crops of one size share
    their row products; the band-pass and the norms run over all of them) gives each window's per-frame
    descriptor: the 125 crop views, the box views of the frame's shape, and windows of odd sizes in between."""
    thumbs = _thumbs(shape, seed=3 + sum(shape))
    windows = [*fp._windows(), *fp._box_windows(fp.BorderStats(), shape), (0.1, 0.7, 0.2, 0.95), (0.0, 1.0, 0.0, 1.0),
               (0.1, 0.7, 0.25, 0.95)]
    together = fp._describe_windows(fp._planes(thumbs), windows)
    assert together.shape == (len(windows), fp.SAMPLES, fp._DIMS) and together.dtype == np.float32
    for k, window in enumerate(windows):
        one = np.stack([fp._describe(t, window) for t in thumbs])
        np.testing.assert_allclose(together[k], one, rtol=0, atol=5e-6, err_msg=str(window))


def test_a_flat_frame_among_others_keeps_its_zero_layout() -> None:
    """The guard against a zero norm is taken per frame and window when all are described together: a flat grey
    frame has no layout and its neutral colour, the textured frames beside it are unit vectors."""
    thumbs = _thumbs((64, 64), seed=5)
    thumbs[3] = 128
    together = fp._describe_windows(fp._planes(thumbs), fp._windows()[:7])
    assert not together[:, 3].any()
    norms = np.linalg.norm(np.delete(together, 3, axis=1), axis=2)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_no_window_describes_to_an_empty_array_of_the_right_shape() -> None:
    planes = fp._planes(_thumbs((64, 64), seed=9))
    assert fp._describe_windows(planes, []).shape == (0, fp.SAMPLES, fp._DIMS)
