"""Detection and embeddings with the real dlib backend on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import DetectorError
from detectors.faces import Box, DlibBackend, Face, FaceBackend, crop_face, default_backend, yaw_from_landmarks
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


def test_crop_face_adds_margin_and_pads_at_the_edges():
    rgb = np.arange(200 * 300 * 3, dtype=np.uint32).astype(np.uint8).reshape(200, 300, 3)
    crop = crop_face(rgb, Box(top=80, right=170, bottom=120, left=130))
    assert crop.shape == (80, 80, 3)  # 40 px face, 0.5 margin on each side
    np.testing.assert_array_equal(crop, rgb[60:140, 110:190])
    corner = crop_face(rgb, Box(top=0, right=40, bottom=40, left=0), margin=1.0)
    assert corner.shape == (120, 120, 3)  # always square, the face in the middle
    np.testing.assert_array_equal(corner[40:80, 40:80], rgb[0:40, 0:40])
    np.testing.assert_array_equal(corner[:40, 40], np.repeat(rgb[0:1, 0], 40, axis=0))  # edge pixels repeated
    crop[:] = 0
    assert rgb.any(), "crop_face returns a copy"
    with pytest.raises(DetectorError):
        crop_face(rgb, Box(top=300, right=400, bottom=350, left=350))


def test_tight_headshot_reference_keeps_the_face_centred(backend, photo):
    rgb = photo("obama.jpg")
    [face] = backend.faces(rgb)
    tight = rgb[face.box.top - 10:face.box.bottom + 60, face.box.left - 5:face.box.right + 80]  # off-centre, cut
    [again] = backend.faces(tight)
    crop = crop_face(tight, again.box)
    [inside] = backend.faces(crop)
    cx, cy = inside.box.center
    side = crop.shape[0]
    assert crop.shape[0] == crop.shape[1] and abs(cx - side / 2) < side * 0.06 and abs(cy - side / 2) < side * 0.08


def test_detect_then_embed_equals_faces(backend, photo):
    rgb = photo("two_people.jpg")
    faces = backend.faces(rgb)
    dets = backend.detect(rgb, min_face_px=80)
    assert [d.box for d in dets] == [f.box for f in faces]
    np.testing.assert_allclose(backend.embed(rgb, dets), np.stack([f.embedding for f in faces]), atol=1e-6)
    assert all(d.landmarks.shape == (5, 2) and abs(d.pose) < 0.3 for d in dets)
    assert backend.smallest_face(512, 512, min_face_px=40, max_pixels=None) == 40
    assert backend.smallest_face(512, 512, min_face_px=40, max_pixels=400_000) == 65


def test_yaw_follows_the_nose():
    frontal = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32)
    turned = frontal + np.array([[0, 0], [0, 0], [12, 0], [0, 0], [0, 0]], np.float32)
    assert yaw_from_landmarks(frontal) == pytest.approx(0.0)
    assert yaw_from_landmarks(turned) == pytest.approx(0.3)


def test_mirror_averaged_embedding_hardly_changes_when_the_face_is_flipped(photo):
    """A face and its mirror image embed alike with ``mirror`` (the default), far less alike without:
    the mean of a chip's and its mirror's descriptors is nearly symmetric in head yaw."""
    rgb = photo("obama2.jpg")
    flipped = np.ascontiguousarray(rgb[:, ::-1])
    gaps = {}
    for mirror in (True, False):
        b = DlibBackend(mirror=mirror)
        gaps[mirror] = distance(only_face(b, rgb), only_face(b, flipped))
    assert gaps[True] < 0.12 < 0.18 < gaps[False]
    assert default_backend().mirror is True


def test_detect_thorough_finds_a_turned_head_that_hog_misses(backend, faces_dir):
    """Barack Obama, in the audience of the Hamilton clip, is turned three-quarters away: the HOG
    detector does not see him; the keyframe detector (dlib's mmod CNN) does, with landmarks."""
    from media.video import iter_frames

    rgb = next(f for i, f in iter_frames(faces_dir / "short_hamilton_clip.mp4", max_frames=231) if i == 230)
    where = Box(top=40, right=420, bottom=160, left=300)
    assert not [d for d in backend.detect(rgb) if d.box.iou(where) > 0.3]
    turned = [d for d in backend.detect_thorough(rgb) if d.box.iou(where) > 0.5]
    assert len(turned) == 1
    [d] = turned
    assert d.landmarks is not None and d.landmarks.shape == (5, 2) and d.score > 0
    assert backend.embed(rgb, [d]).shape == (1, 128)


def test_detect_thorough_on_a_flat_image_finds_nothing(backend):
    assert backend.detect_thorough(np.full((240, 320, 3), 128, np.uint8)) == []


def test_embed_views_are_checked_and_combine(backend, photo):
    rgb = photo("biden2.jpg")
    d = backend.detect(rgb)[:1]
    both, plain, mirrored = backend.embed(rgb, d * 3, views=["both", "plain", "mirror"])
    assert np.allclose(both, (plain + mirrored) / 2, atol=1e-6) and np.linalg.norm(plain - mirrored) > 0.05
    for bad in (["sideways"], ["plain", "plain"]):
        with pytest.raises(DetectorError, match="views must be"):
            backend.embed(rgb, d, views=bad)


def test_detect_thorough_without_the_cnn_model_file_says_which_file(tmp_path):
    import shutil

    from detectors.faces import default_models_dir

    for name in ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"):
        shutil.copy(default_models_dir() / name, tmp_path / name)
    with pytest.raises(DetectorError, match="mmod_human_face_detector.dat"):
        DlibBackend(tmp_path).detect_thorough(np.full((120, 160, 3), 100, np.uint8))
