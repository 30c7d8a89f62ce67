"""Detection and embeddings with the real dlib backend on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import DetectorError
from detectors.faces import Box, DlibBackend, Face, FaceBackend, crop_face, default_backend
from detectors.scan import MATCH_THRESHOLD


def only_face(backend, rgb):
    faces = backend.faces(rgb)
    assert len(faces) == 1
    return faces[0]


def distance(a: Face, b: Face) -> float:
    return float(np.linalg.norm(a.embedding - b.embedding))


def test_backend_identity_and_output_types(backend, photo):
    assert isinstance(backend, FaceBackend)
    assert (backend.name, backend.dim) == ("dlib-resnet-v1", 128)
    face = only_face(backend, photo("obama.jpg"))
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (128,)
    assert not face.embedding.flags.writeable
    assert 200 < face.box.width < 320 and 200 < face.box.height < 320


def test_default_backend_is_cached():
    assert default_backend() is default_backend()


def test_same_person_within_threshold(backend, photo):
    assert distance(only_face(backend, photo("obama.jpg")), only_face(backend, photo("obama2.jpg"))) < MATCH_THRESHOLD


@pytest.mark.parametrize("other", ["biden2.jpg", "alex-lacamoire.png", "alex_lacamoire2.jpg"])
def test_different_people_far_apart(backend, photo, other):
    d = distance(only_face(backend, photo("obama.jpg")), only_face(backend, photo(other)))
    assert d > MATCH_THRESHOLD + 0.15


def test_group_photo_yields_every_face_largest_first(backend, photo):
    faces = backend.faces(photo("two_people.jpg"))
    assert len(faces) == 2
    assert faces[0].box.area >= faces[1].box.area
    assert distance(faces[0], faces[1]) > MATCH_THRESHOLD


def test_no_face_in_flat_image(backend):
    assert backend.faces(np.full((240, 320, 3), 128, np.uint8), upsample=1) == []


def test_partial_face_box_is_clipped_to_the_image(backend, photo):
    rgb = photo("obama_partial_face.jpg")
    face = only_face(backend, rgb)
    assert face.box.left >= 0 and face.box.right <= rgb.shape[1] and face.box.bottom <= rgb.shape[0]


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10, 3), np.float32), np.zeros((4, 10, 10, 3), np.uint8), np.zeros((0, 5, 3), np.uint8), "x"]
)
def test_bad_images_are_rejected(backend, bad):
    with pytest.raises(DetectorError):
        backend.faces(bad)


def test_gray_and_rgba_images_are_accepted(backend, photo):
    rgb = photo("obama-240p.jpg")
    gray = rgb.mean(axis=2).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert len(backend.faces(gray, upsample=1)) == 1
    assert len(backend.faces(rgba, upsample=1)) == 1


def test_missing_models_dir_fails_early(tmp_path):
    with pytest.raises(DetectorError, match="model files missing"):
        DlibBackend(models_dir=tmp_path)


def test_box_geometry():
    a = Box(top=10, right=50, bottom=50, left=10)
    assert (a.width, a.height, a.area, a.size) == (40, 40, 1600, 40)
    assert a.iou(a) == 1.0
    assert a.iou(Box(top=100, right=150, bottom=150, left=100)) == 0.0
    assert a.iou(Box(top=10, right=70, bottom=50, left=30)) == pytest.approx(800 / 2400)
    with pytest.raises(DetectorError):
        Box(top=50, right=10, bottom=10, left=50)


def test_crop_face_adds_margin_and_clips():
    rgb = np.arange(200 * 300 * 3, dtype=np.uint32).astype(np.uint8).reshape(200, 300, 3)
    crop = crop_face(rgb, Box(top=80, right=170, bottom=120, left=130))
    assert crop.shape == (80, 80, 3)  # 40 px face, 0.5 margin on each side
    np.testing.assert_array_equal(crop, rgb[60:140, 110:190])
    corner = crop_face(rgb, Box(top=0, right=40, bottom=40, left=0), margin=1.0)
    assert corner.shape == (80, 80, 3)  # wanted 120, clipped at the top and left edges
    crop[:] = 0
    assert rgb.any(), "crop_face returns a copy"
