"""The throughput benchmark's stand-in models (``python -m bench insightface``) have the real files' shape."""

from __future__ import annotations

import numpy as np

from detectors.insightface import InsightFaceBackend


def test_bench_models_have_arcface_r50_size_and_load_in_the_backend(tmp_path):
    import onnx

    from bench.insightface import _fake_faces, detector_standin, iresnet50

    iresnet50(tmp_path / "w600k_r50.onnx")
    detector_standin(tmp_path / "det_standin.onnx")
    params = sum(int(np.prod(t.dims)) for t in onnx.load(str(tmp_path / "w600k_r50.onnx")).graph.initializer)
    assert 40e6 < params < 50e6  # insightface's w600k_r50 has ~43.6M
    backend = InsightFaceBackend(tmp_path, providers=["CPUExecutionProvider"])
    assert (backend.dim, backend.rec_size, backend.files.recognizer.name) == (512, 112, "w600k_r50.onnx")
    rgb = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    assert backend.detect(rgb) == []  # the stand-in detector finds nothing
    emb = backend.embed(rgb, _fake_faces(rgb, 3))
    assert emb.shape == (3, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
