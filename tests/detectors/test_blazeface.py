"""BlazeFace (detectors.blazeface): the model fetched and checked, anchors decoded, frames letterboxed and
tiled, head pose from the keypoints, and the backend that scans video with it."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from detectors import blazeface as bf
from detectors.backends import backend_from_settings
from detectors.errors import DetectorError
from detectors.faces import DlibBackend, default_backend
from media.video import iter_frames

CLIP = "short_hamilton_clip.mp4"


def _wheel(tmp_path, data: bytes):
    path = tmp_path / "mediapipe-0.10.21-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(bf.MODEL_MEMBER, data)
    return path


def test_fetch_checks_the_sha256_of_what_the_wheel_holds(tmp_path):
    with pytest.raises(DetectorError, match="SHA-256"):
        bf.fetch_model(tmp_path / "m.tflite", wheel=_wheel(tmp_path, b"not the model"))
    assert not (tmp_path / "m.tflite").exists()


def test_fetch_refuses_a_wheel_without_the_model(tmp_path):
    path = tmp_path / "other.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("something/else.txt", "x")
    with pytest.raises(DetectorError, match="does not hold"):
        bf.fetch_model(tmp_path / "m.tflite", wheel=path)


def test_fetch_extracts_the_checked_model_once(blazeface, tmp_path):
    data = blazeface.model_path.read_bytes()
    target = bf.fetch_model(tmp_path / "models" / bf.MODEL_FILE, wheel=_wheel(tmp_path, data))
    assert target.read_bytes() == data
    assert bf.fetch_model(target, wheel=tmp_path / "absent.whl") == target  # already there: nothing read


def test_a_missing_or_altered_model_is_refused(tmp_path, photo):
    with pytest.raises(DetectorError, match="make models"):
        bf.BlazeFaceDetector(tmp_path / "absent.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(DetectorError, match="SHA-256"):
        bf.BlazeFaceDetector(bad).detect(photo("obama.jpg"))


def test_a_portrait_is_found_where_hog_finds_it(blazeface, photo):
    rgb = photo("obama.jpg")
    [face] = blazeface.detect(rgb)
    [hog] = default_backend().faces(rgb)
    assert face.box.iou(hog.box) > 0.8 and face.score > 0.8
    assert face.landmarks.shape == (6, 2) and abs(face.yaw) < 12 and abs(face.pitch) < 15
    right_eye, left_eye = face.landmarks[0], face.landmarks[1]
    assert right_eye[0] < left_eye[0]  # the person's right eye is on the image's left


def test_yaw_changes_sign_in_the_mirror_image(blazeface, photo):
    rgb = photo("lin-manuel-miranda.png")  # turned ~17 degrees in the photo
    [face] = blazeface.detect(rgb)
    [mirrored] = blazeface.detect(np.ascontiguousarray(rgb[:, ::-1]))
    assert face.yaw * mirrored.yaw < 0 and abs(face.yaw + mirrored.yaw) < 6


def test_turned_heads_in_the_real_clip_are_found_where_hog_finds_none(blazeface, faces_dir):
    """Frames 215-270: Barack Obama turned ~50-60 degrees with a hand at his chin; HOG finds nobody there."""
    hog = DlibBackend()
    for index, frame in iter_frames(faces_dir / CLIP, every=15):
        if not 215 <= index <= 270:
            continue
        assert frame.shape[:2] == (360, 640)  # 16:9, letterboxed, not squashed
        obama = [d for d in blazeface.detect(frame) if 285 <= d.box.left <= 335 and d.box.top < 90]
        assert obama and obama[0].yaw < -35  # turned to his right, towards the stage
        assert not [d for d in hog.detect(frame) if 285 <= d.box.left <= 335]


def test_small_faces_are_looked_for_in_tiles(blazeface, photo):
    """A 1280x720 frame with a 40 px face: the whole frame letterboxed makes it 6 px, so tiles look closer."""
    import cv2

    face = photo("obama.jpg")[100:460, 330:660]
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[600:680, 1100:1173] = cv2.resize(face, (73, 80), interpolation=cv2.INTER_AREA)
    assert blazeface.smallest_face(720, 1280, min_face_px=40) == 40
    assert blazeface.smallest_face(720, 1280, min_face_px=40, max_pixels=50_000) > 40  # the budget binds
    [found] = blazeface.detect(frame, min_face_px=40)
    assert 1095 <= found.box.center[0] <= 1180 and 595 <= found.box.center[1] <= 690
    assert blazeface.detect(frame, min_face_px=200) == []  # the whole frame alone misses it


def test_pose_from_keypoints_refuses_other_shapes():
    with pytest.raises(DetectorError):
        bf.pose_from_keypoints(np.zeros((5, 2)))


def test_the_scanning_backend_embeds_blazeface_boxes_with_dlib(scanning_backend, photo):
    rgb = photo("biden2.jpg")
    det = scanning_backend.detect(rgb)[0]  # the largest
    [face] = default_backend().faces(rgb)
    [emb] = scanning_backend.embed(rgb, [det])
    assert scanning_backend.name == default_backend().name == "dlib-resnet-v1"  # the same embeddings ...
    assert scanning_backend.detector_name == "blazeface-full-range"
    assert float(np.linalg.norm(emb - face.embedding)) < 0.08  # ... within 0.01-0.04 on the test photos
    assert scanning_backend.faces(rgb)[0].landmarks.shape == (5, 2)  # photos still go through HOG


def test_backend_from_settings_picks_the_detector(monkeypatch, tmp_path, blazeface):
    assert backend_from_settings("dlib", detector="hog") is default_backend()
    assert backend_from_settings("dlib", detector="auto").detector_name == "blazeface-full-range"
    with pytest.raises(DetectorError, match="unknown face detector"):
        backend_from_settings("dlib", detector="cnn")
    monkeypatch.setenv(bf.MODEL_ENV, str(tmp_path / "absent.tflite"))
    assert backend_from_settings("dlib", detector="auto") is default_backend()  # the fallback: HOG
    with pytest.raises(DetectorError, match="make models"):
        backend_from_settings("dlib", detector="blazeface")


def test_cli_fetch_prints_the_checked_path(blazeface, tmp_path, capsys):
    wheel = _wheel(tmp_path, blazeface.model_path.read_bytes())
    assert bf.main(["fetch", "--dest", str(tmp_path / "x.tflite"), "--wheel", str(wheel)]) == 0
    assert bf.MODEL_SHA256 in capsys.readouterr().out
