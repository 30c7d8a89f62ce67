"""Video scanning: synthetic clips with pasted reference faces, and the real Hamilton clip."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.enroll import Template
from detectors.errors import DetectorError
from detectors.index import LikenessIndex
from detectors.scan import MATCH_THRESHOLD, ScanResult, sample_stride, scan_frames, scan_video
from media.video import Clip, write_video


def index_of(templates: dict[str, Template], *names: str) -> LikenessIndex:
    index = LikenessIndex()
    for name in names or tuple(templates):
        index.add(name, templates[name])
    return index


@pytest.fixture(scope="module")
def everyone(templates) -> LikenessIndex:
    return index_of(templates)


def test_sample_stride_looks_at_a_short_face_several_times():
    assert sample_stride(24, 0.5) == 4
    assert sample_stride(29.97, 0.5) == 4
    assert sample_stride(60, 0.5) == 10
    assert sample_stride(5, 0.5) == 1
    for fps in (12, 24, 25, 29.97, 30, 50, 60):
        stride = sample_stride(fps, 0.5)
        visible = int(np.ceil(fps * 0.5))
        assert all(len(range(-start % stride, visible, stride)) >= 3 for start in range(stride))
    with pytest.raises(DetectorError):
        sample_stride(0, 0.5)


def test_synthetic_clip_finds_the_right_likeness_and_nobody_else(templates, everyone, make_clip, backend):
    frames = make_clip({"biden": templates["biden"].reference}, 72, {"biden": range(12, 60)})
    result = scan_frames(frames, 24.0, everyone, backend)
    assert isinstance(result, ScanResult)
    assert result.likeness_ids() == {"biden"}
    assert result.unmatched_tracks == 0
    [match] = result.matches
    assert match.distance < MATCH_THRESHOLD / 2
    assert 12 <= match.first_frame <= 16 and 52 <= match.last_frame < 60
    assert match.frames_matched >= 10
    assert result.frames_scanned == 18 and result.faces_seen >= 10


def test_two_people_at_once(templates, everyone, make_clip, backend):
    crops = {"obama": templates["obama"].reference, "lacamoire": templates["lacamoire"].reference}
    frames = make_clip(crops, 48, {"obama": range(0, 48), "lacamoire": range(20, 48)})
    result = scan_frames(list(frames), 24.0, everyone, backend)
    assert result.likeness_ids() == {"obama", "lacamoire"}
    first = {m.likeness_id: m.first_frame for m in result.matches}
    assert first["obama"] == 0 and 20 <= first["lacamoire"] <= 24


def test_face_visible_for_half_a_second_is_found(templates, everyone, make_clip, backend):
    frames = make_clip({"miranda": templates["miranda"].reference}, 72, {"miranda": range(31, 43)})  # 12 frames
    result = scan_frames(frames, 24.0, everyone, backend)
    assert result.likeness_ids() == {"miranda"}
    assert all(31 <= m.first_frame <= m.last_frame < 43 for m in result.matches)


def test_unenrolled_face_matches_nobody(templates, make_clip, backend):
    frames = make_clip({"lacamoire": templates["lacamoire"].reference}, 48, {"lacamoire": range(0, 48)})
    result = scan_frames(frames, 24.0, index_of(templates, "obama", "biden", "miranda"), backend)
    assert result.matches == () and result.unmatched_tracks == 1 and result.faces_seen >= 10


def test_no_faces_and_empty_index(templates, make_clip, backend):
    frames = make_clip({"obama": templates["obama"].reference}, 24, {"obama": range(0)})
    assert scan_frames(frames, 24.0, index_of(templates), backend) == ScanResult(6, 0, (), 0)
    frames = make_clip({"obama": templates["obama"].reference}, 24, {"obama": range(24)})
    result = scan_frames(frames, 24.0, LikenessIndex(), backend)
    assert result.matches == () and result.unmatched_tracks == 1


def test_scan_encoded_video_file(templates, everyone, make_clip, backend, tmp_path):
    frames = make_clip({"obama": templates["obama"].reference}, 48, {"obama": range(8, 40)})
    path = tmp_path / "generated.mp4"
    write_video(path, Clip(frames=frames, fps=24.0), crf=28)
    result = scan_video(path, everyone, backend)
    assert result.likeness_ids() == {"obama"}


def test_index_from_another_backend_is_refused(backend, make_clip, templates):
    index = LikenessIndex()
    index.add("x", Template(templates["obama"].embeddings, "insightface-arcface", templates["obama"].reference))
    frames = make_clip({"obama": templates["obama"].reference}, 4, {"obama": range(4)})
    with pytest.raises(DetectorError, match="enrolled with"):
        scan_frames(frames, 24.0, index, backend)


def test_hamilton_clip_finds_lin_manuel_miranda(faces_dir, templates, backend):
    result = scan_video(faces_dir / "short_hamilton_clip.mp4", index_of(templates, "miranda"), backend,
                        max_frames=150)
    assert result.likeness_ids() == {"miranda"}
    assert all(m.distance < MATCH_THRESHOLD for m in result.matches)
    assert min(m.first_frame for m in result.matches) < 100  # he is on screen from about frame 84


def test_hamilton_clip_with_only_obama_enrolled_finds_nobody(faces_dir, templates, backend):
    result = scan_video(faces_dir / "short_hamilton_clip.mp4", index_of(templates, "obama"), backend,
                        max_frames=150)
    assert result.matches == ()
    assert result.faces_seen > 10 and result.unmatched_tracks >= 1
