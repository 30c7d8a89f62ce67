"""The insightface backend (SCRFD + ArcFace on onnxruntime) with tiny ONNX models built by the tests."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from detectors.backends import backend_from_settings
from detectors.enroll import Template
from detectors.errors import DetectorError
from detectors.faces import TrackingBackend, default_backend
from detectors.index import LikenessIndex
from detectors.insightface import (
    ARCFACE_TEMPLATE,
    PROVISIONAL_THRESHOLD,
    InsightFaceBackend,
    decode_scrfd,
    similarity_transform,
)
from detectors.scan import scan_frames, threshold_for

# One face at stride 16, grid cell (20, 10), anchor 1: centre (320, 160) in the 640x640 input, box
# distances (2, 3, 4, 5) strides -> (288, 112, 384, 240); landmarks on the ArcFace template scaled to
# the 96 px box.
CENTER = np.array([320.0, 160.0])
LANDMARKS = ARCFACE_TEMPLATE * (96 / 112) + np.array([288.0, 112.0])
HIT = {"stride": 16, "x": 20, "y": 10, "anchor": 1, "score": 0.9, "dist": [2, 3, 4, 5],
       "kps": ((LANDMARKS - CENTER) / 16).ravel().tolist()}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, onnx_models):
    d = tmp_path_factory.mktemp("insightface")
    onnx_models.constant_scrfd(d / "det_10g.onnx", hits=[HIT], batched=True, shuffled=True)
    onnx_models.random_arcface(d / "w600k_r50.onnx")
    return d


@pytest.fixture(scope="module")
def backend(model_dir) -> InsightFaceBackend:
    return InsightFaceBackend(model_dir)


def smooth_image(side: int = 1280, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), np.uint8)
    return cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)


def test_decode_crafted_outputs_exactly(onnx_models):
    second = dict(HIT, x=21, score=0.7)  # overlaps the first: removed by NMS
    low = dict(HIT, stride=8, x=5, y=5, anchor=0, score=0.3)  # under the score threshold
    far = {"stride": 32, "x": 3, "y": 4, "anchor": 0, "score": 0.8, "dist": [1, 1, 1, 1], "kps": [0] * 10}
    outs = onnx_models.constant_outputs(640, [HIT, second, low, far])
    for layout in (outs, [o[None] for o in outs], outs[::-1]):  # plain, batched, any order
        boxes, scores, kps = decode_scrfd(layout, (640, 640))
        assert scores.tolist() == pytest.approx([0.9, 0.8])
        np.testing.assert_allclose(boxes[0], [288, 112, 384, 240])
        np.testing.assert_allclose(boxes[1], [96 - 32, 128 - 32, 96 + 32, 128 + 32])
        np.testing.assert_allclose(kps[0], LANDMARKS, atol=1e-4)


def test_decode_rejects_malformed_outputs(onnx_models):
    outs = onnx_models.constant_outputs(640, [HIT])
    with pytest.raises(DetectorError, match="strides"):
        decode_scrfd(outs[:5], (640, 640))
    with pytest.raises(DetectorError, match="rows"):
        decode_scrfd(outs, (600, 600))
    with pytest.raises(DetectorError, match="unexpected"):
        decode_scrfd([np.zeros((4, 7), np.float32)] * 9, (640, 640))


def test_loads_models_and_picks_providers(backend, model_dir):
    assert isinstance(backend, TrackingBackend)
    assert backend.files.detector.name == "det_10g.onnx" and backend.files.recognizer.name == "w600k_r50.onnx"
    assert (backend.name, backend.dim, backend.det_size, backend.rec_size) == ("insightface-w600k_r50", 512,
                                                                                (640, 640), 112)
    import onnxruntime as ort

    expected = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    assert backend.providers == expected and backend.active_providers[-1] == "CPUExecutionProvider"
    cpu = InsightFaceBackend(model_dir, providers=["CPUExecutionProvider"])
    assert cpu.active_providers == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(DetectorError, match="none of the onnxruntime providers"):
            InsightFaceBackend(model_dir, providers=["CUDAExecutionProvider"])


def test_files_are_recognised_by_their_inputs_and_outputs(tmp_path, model_dir, onnx_models):
    shutil.copy(model_dir / "det_10g.onnx", tmp_path / "a.onnx")
    shutil.copy(model_dir / "w600k_r50.onnx", tmp_path / "b.onnx")
    onnx_models.random_arcface(tmp_path / "genderage.onnx", dim=3)  # the pack's other models are ignored
    b = InsightFaceBackend(tmp_path)
    assert (b.files.detector.name, b.files.recognizer.name) == ("a.onnx", "b.onnx")


def test_detects_maps_back_to_image_pixels(backend):
    rgb = smooth_image(1280)  # letterboxed to 640: every coordinate doubles
    [det] = backend.detect(rgb)
    assert (det.box.left, det.box.top, det.box.right, det.box.bottom) == (576, 224, 768, 480)
    assert det.score == pytest.approx(0.9)
    np.testing.assert_allclose(det.landmarks, LANDMARKS * 2, atol=1e-3)
    assert abs(det.pose) < 0.05  # the template face is frontal
    wide = np.zeros((640, 1280, 3), np.uint8)  # letterbox pads at the bottom: same scale
    assert backend.detect(wide)[0].box.left == 576
    assert backend.smallest_face(1280, 1280) == 32


def test_embeddings_are_unit_vectors_of_the_aligned_face(backend):
    rgb = smooth_image(1280)
    [det] = backend.detect(rgb)
    emb = backend.embed(rgb, [det, det])
    assert emb.shape == (2, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)
    # The landmarks sit on the template scaled to a 192 px square at (576, 224): aligning is resizing it.
    aligned = backend.align(rgb, det.landmarks)
    expected = cv2.resize(rgb[224:416, 576:768], (112, 112), interpolation=cv2.INTER_LINEAR)
    assert aligned.shape == (112, 112, 3)
    assert np.abs(aligned.astype(int) - expected.astype(int)).mean() < 3
    [face] = backend.faces(rgb)
    np.testing.assert_allclose(face.embedding, emb[0], atol=1e-5)
    assert backend.embed(rgb, []).shape == (0, 512)


def test_fixed_batch_recogniser(tmp_path, model_dir, onnx_models):
    shutil.copy(model_dir / "det_10g.onnx", tmp_path / "det_10g.onnx")
    onnx_models.random_arcface(tmp_path / "w600k_r50.onnx", dynamic_batch=False)
    b = InsightFaceBackend(tmp_path)
    rgb = smooth_image(1280)
    [det] = b.detect(rgb)
    assert b.embed(rgb, [det, det, det]).shape == (3, 512)


def test_similarity_transform_recovers_a_known_one():
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE
    m = similarity_transform(src, src @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)
    with pytest.raises(DetectorError):
        similarity_transform(np.ones((5, 2)), src)


@pytest.mark.parametrize("size", [640, None])
def test_convolutional_detector_fixed_and_dynamic_input(tmp_path, model_dir, onnx_models, size):
    onnx_models.random_scrfd(tmp_path / "scrfd_500m_kps.onnx", size=size)
    shutil.copy(model_dir / "w600k_r50.onnx", tmp_path / "glint360k_r100.onnx")
    b = InsightFaceBackend(tmp_path)
    assert b.det_size == (640, 640) and b.files.recognizer.name == "glint360k_r100.onnx"
    assert b.detect(smooth_image(480)) == []
    if size is None:
        assert InsightFaceBackend(tmp_path, det_size=(320, 320)).det_size == (320, 320)


def test_rejection_paths(tmp_path, model_dir, onnx_models):
    with pytest.raises(DetectorError, match="does not exist"):
        InsightFaceBackend(tmp_path / "missing")
    with pytest.raises(DetectorError, match="no .onnx files"):
        InsightFaceBackend(tmp_path)
    shutil.copy(model_dir / "w600k_r50.onnx", tmp_path / "w600k_r50.onnx")
    with pytest.raises(DetectorError, match="lacks a SCRFD detector"):
        InsightFaceBackend(tmp_path)
    (tmp_path / "det_10g.onnx").write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load det_10g.onnx"):
        InsightFaceBackend(tmp_path)
    onnx_models.constant_scrfd(tmp_path / "det_10g.onnx", hits=[HIT], keypoints=False)
    with pytest.raises(DetectorError, match="no keypoints"):
        InsightFaceBackend(tmp_path)


def test_calibration_file_sets_the_threshold(tmp_path, model_dir):
    for f in model_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    assert InsightFaceBackend(tmp_path).match_threshold == PROVISIONAL_THRESHOLD
    (tmp_path / "consentgate.json").write_text(json.dumps({"match_threshold": 0.93}))
    b = InsightFaceBackend(tmp_path)
    assert b.match_threshold == 0.93 and threshold_for(b) == 0.93
    (tmp_path / "consentgate.json").write_text(json.dumps({"match_threshold": 7}))
    with pytest.raises(DetectorError, match="must be in"):
        InsightFaceBackend(tmp_path)
    (tmp_path / "consentgate.json").write_text("{")
    with pytest.raises(DetectorError, match="calibration file"):
        InsightFaceBackend(tmp_path)


def test_scan_with_the_insightface_backend(backend):
    rgb = smooth_image(1280)
    [face] = backend.faces(rgb)
    index = LikenessIndex(dim=backend.dim)
    index.add("someone", Template(face.embedding[None], backend.name, rgb[:8, :8]))
    result = scan_frames(np.stack([rgb] * 12), 24.0, index, backend)
    assert result.likeness_ids() == {"someone"} and result.threshold == PROVISIONAL_THRESHOLD
    [match] = result.matches
    assert match.distance < 1e-3 and match.first_frame == 0 and match.last_frame >= 8 and match.frames_matched == 3
    other = InsightFaceBackend(backend.model_dir)
    other.name = "insightface-another-model"
    with pytest.raises(DetectorError, match="enrolled with"):
        scan_frames(np.stack([rgb] * 2), 24.0, index, other)


def test_backend_from_settings(model_dir, monkeypatch):
    assert backend_from_settings("dlib") is default_backend()
    b = backend_from_settings("insightface", model_dir)
    assert isinstance(b, InsightFaceBackend)
    monkeypatch.setenv("GOVERNANCE_INSIGHTFACE_DIR", str(model_dir))
    assert backend_from_settings("InsightFace").name == "insightface-w600k_r50"
    monkeypatch.delenv("GOVERNANCE_INSIGHTFACE_DIR")
    with pytest.raises(DetectorError, match="needs a model directory"):
        backend_from_settings("insightface")
    with pytest.raises(DetectorError, match="unknown face backend"):
        backend_from_settings("opencv")
