"""Video scanning: synthetic clips with pasted reference faces, and the real Hamilton clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.enroll import Template
from detectors.errors import DetectorError, ScanError
from detectors.index import LikenessIndex
from detectors.scan import (
    MATCH_THRESHOLD,
    THOROUGH_EVERY_S,
    ScanResult,
    sample_stride,
    scan_frames,
    scan_path,
    scan_video,
)
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
    assert (match.first_frame, match.last_frame) == (12, 59)
    assert match.frames_matched >= 10
    assert result.frames_scanned == 18 and result.faces_seen >= 10


def test_two_people_at_once(templates, everyone, make_clip, backend):
    crops = {"obama": templates["obama"].reference, "lacamoire": templates["lacamoire"].reference}
    frames = make_clip(crops, 48, {"obama": range(0, 48), "lacamoire": range(20, 48)})
    result = scan_frames(list(frames), 24.0, everyone, backend)
    assert result.likeness_ids() == {"obama", "lacamoire"}
    first = {m.likeness_id: m.first_frame for m in result.matches}
    assert first["obama"] == 0 and 20 <= first["lacamoire"] <= 24


def test_a_face_near_two_likenesses_is_attributed_to_the_nearest_only(templates, backend, photo, make_clip):
    """Two enrolled likenesses close to one face (the same person enrolled twice, or look-alikes): ``matches``
    keeps both for the gate, ``attributed`` names the face once, after the nearest likeness."""
    from detectors.enroll import enroll

    index = index_of(templates, "obama", "biden")
    index.add("obama-again", enroll([photo("obama2.jpg")], backend))
    frames = make_clip({"obama": templates["obama"].reference}, 48, {"obama": range(0, 48)})
    result = scan_frames(frames, 24.0, index, backend)
    assert result.likeness_ids() == {"obama", "obama-again"}  # one track, both within the threshold
    assert len({m.track_id for m in result.matches}) == 1 and len(result.matches) == 2
    [only] = result.attributed()
    assert only == min(result.matches, key=lambda m: m.distance)
    # several tracks: one entry each, in the order of the matches
    crops = {"obama": templates["obama"].reference, "biden": templates["biden"].reference}
    two = scan_frames(make_clip(crops, 48, {"obama": range(0, 48), "biden": range(0, 48)}), 24.0, index, backend)
    assert sorted(m.likeness_id for m in two.attributed()) == ["biden", min(
        (m for m in two.matches if m.likeness_id != "biden"), key=lambda m: m.distance).likeness_id]
    assert [m for m in two.matches if m in two.attributed()] == list(two.attributed())


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
    result = scan_frames(frames, 24.0, index_of(templates), backend)
    assert (result.frames_scanned, result.faces_seen, result.matches, result.unmatched_tracks) == (6, 0, (), 0)
    assert result.tracks == () and result.embeddings == 0 and result.frame_count == 24
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


def test_hamilton_clip_with_only_obama_enrolled_matches_nobody_before_he_appears(faces_dir, templates, backend):
    result = scan_video(faces_dir / "short_hamilton_clip.mp4", index_of(templates, "obama"), backend,
                        max_frames=150)  # Obama is in the audience from frame 212
    assert result.matches == ()
    assert result.faces_seen > 10 and result.unmatched_tracks >= 1


def test_someone_else_in_the_same_place_is_a_new_track_with_exact_frames(templates, make_clip, backend):
    # biden for frames 0-29, then lacamoire (not enrolled) in the very same place from frame 34
    frames = make_clip({"biden": templates["biden"].reference}, 60, {"biden": range(0, 30)})
    later = make_clip({"lacamoire": templates["lacamoire"].reference}, 60, {"lacamoire": range(34, 60)})
    frames[34:] = later[34:]
    result = scan_frames(frames, 24.0, index_of(templates, "biden", "obama"), backend)
    assert result.likeness_ids() == {"biden"}
    [match] = result.matches
    assert (match.first_frame, match.last_frame) == (0, 29)
    [stranger] = [t for t in result.tracks if not t.matched]
    assert (stranger.first_frame, stranger.last_frame) == (34, 59) and stranger.best_likeness is not None


def test_twelve_frame_flash_has_its_exact_frame_range(templates, everyone, make_clip, backend):
    frames = make_clip({"obama": templates["obama"].reference}, 48, {"obama": range(21, 33)})
    [match] = scan_frames(frames, 24.0, everyone, backend).matches
    assert (match.likeness_id, match.first_frame, match.last_frame) == ("obama", 21, 32)


def test_result_is_json_able(templates, everyone, make_clip, backend):
    frames = make_clip({"biden": templates["biden"].reference, "lacamoire": templates["lacamoire"].reference},
                       24, {"biden": range(24), "lacamoire": range(12, 24)})
    result = scan_frames(frames, 24.0, everyone, backend)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["likenesses"] == ["biden", "lacamoire"] and data["backend"] == "dlib-resnet-v1"
    distance = pytest.approx(result.matches[0].distance, abs=1e-4)
    assert data["matches"][0] == {"likeness": "biden", "distance": distance,
                                  "first_frame": 0, "last_frame": 23, "frames_matched": 6, "track": 1,
                                  "pose": "frontal", "compared": "frontal"}
    assert data["uncertain"] == [] and data["detector"] == "dlib-hog"
    assert len(data["tracks"]) == 2 and data["smallest_face_px"] == 40 and data["embeddings"] >= 2


def test_too_many_faces_is_refused(templates, everyone, make_clip, backend):
    frames = make_clip({"biden": templates["biden"].reference, "obama": templates["obama"].reference},
                       8, {"biden": range(8), "obama": range(8)})
    with pytest.raises(ScanError) as info:
        scan_frames(frames, 24.0, everyone, backend, max_faces=1)
    assert info.value.reason == "too_many_faces"


def test_scan_path_reads_images_and_videos(templates, everyone, make_clip, backend, photo, faces_dir, tmp_path):
    result = scan_path(faces_dir / "two_people.jpg", everyone, backend)
    assert result.frames_scanned == 1 and len(result.tracks) == 2
    assert scan_path(faces_dir / "biden2.jpg", everyone, backend).likeness_ids() == {"biden"}
    frames = make_clip({"miranda": templates["miranda"].reference}, 24, {"miranda": range(24)})
    write_video(tmp_path / "clip.mp4", Clip(frames=frames, fps=24.0), crf=30)
    assert scan_path(tmp_path / "clip.mp4", everyone, backend).likeness_ids() == {"miranda"}


@pytest.mark.parametrize("content", [b"", b"hello, not media", b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500,
                                     b"\x89PNG\r\n\x1a\n" + b"\x00" * 100])
def test_scan_path_refuses_unreadable_files(everyone, backend, tmp_path, content):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)
    with pytest.raises(ScanError) as info:
        scan_path(path, everyone, backend)
    assert info.value.reason == "unreadable"
    with pytest.raises(ScanError, match="unreadable"):
        scan_path(tmp_path / "missing.mp4", everyone, backend)


def test_scan_refuses_huge_frames(everyone, backend, tmp_path, monkeypatch, make_clip, templates):
    huge = np.zeros((2400, 4400, 3), np.uint8)
    with pytest.raises(ScanError) as info:
        scan_frames(huge[None], 1.0, everyone, backend)
    assert info.value.reason == "too_large"
    frames = make_clip({"obama": templates["obama"].reference}, 4, {"obama": range(4)})
    write_video(tmp_path / "clip.mp4", Clip(frames=frames, fps=24.0))
    monkeypatch.setattr("detectors.scan.MAX_FRAME_PIXELS", 200 * 200)
    with pytest.raises(ScanError, match="too_large"):
        scan_path(tmp_path / "clip.mp4", everyone, backend)
    monkeypatch.setattr("detectors.scan.MAX_SCAN_SECONDS", 0.1)
    with pytest.raises(ScanError, match="too_long"):
        scan_frames(frames, 24.0, everyone, backend)


def test_hamilton_clip_with_everyone_enrolled_finds_miranda_and_matches_no_one_wrongly(faces_dir, everyone, backend):
    result = scan_path(faces_dir / "short_hamilton_clip.mp4", everyone, backend)
    # Lacamoire (at the piano, then in profile) and Obama (turned away) appear too; Biden does not
    assert "miranda" in result.likeness_ids() and "biden" not in result.likeness_ids()
    [match] = [m for m in result.matches if m.likeness_id == "miranda"]
    assert match.first_frame <= 84 and match.last_frame >= 205 and match.distance < 0.45
    assert all(m.first_frame < 80 for m in result.matches if m.likeness_id == "lacamoire")
    assert all(m.first_frame >= 205 for m in result.matches if m.likeness_id == "obama")


def test_thorough_scan_tracks_turned_heads_and_ranks_the_right_person_nearest(faces_dir, everyone, backend):
    """A thorough scan runs the turned-head detector on keyframes and follows what only it sees by the
    face's patch in between: Alex Lacamoire in profile (frames 20-47) and Barack Obama turned
    three-quarters (frames 212-274) become tracks. Lacamoire's nearest likeness is Lacamoire; dlib's
    encoder cannot place Obama at that angle (0.64 from his photos, no nearer than to others), and
    neither is close enough to match: see "Known weaknesses" in docs/face-matching.md."""
    path = faces_dir / "short_hamilton_clip.mp4"
    frontal = scan_path(path, everyone, backend)
    thorough = scan_path(path, everyone, backend, thorough_every_s=THOROUGH_EVERY_S)
    assert frontal.keyframes == 0 and 4 <= thorough.keyframes <= 8

    def turned(result: ScanResult, first: range, min_px: int) -> list:
        return [t for t in result.tracks if t.first_frame in first and t.max_face_px >= min_px]

    assert not turned(frontal, range(18, 30), 150) and not turned(frontal, range(205, 216), 100)
    [lacamoire] = turned(thorough, range(18, 30), 150)
    [obama] = turned(thorough, range(205, 216), 100)
    assert lacamoire.best_likeness == "lacamoire" and lacamoire.last_frame >= 40
    assert obama.last_frame >= 270 and obama.looks >= 2
    assert obama.frames_seen >= 10  # followed between keyframes, not only seen on them
    assert thorough.likeness_ids() <= {"miranda", "obama", "lacamoire"} and "miranda" in thorough.likeness_ids()


def test_thorough_every_s_must_not_be_negative(templates, everyone, make_clip, backend):
    frames = make_clip({"biden": templates["biden"].reference}, 8, {"biden": range(0, 8)})
    with pytest.raises(DetectorError, match="thorough_every_s"):
        scan_frames(frames, 24.0, everyone, backend, thorough_every_s=-1)


class _RecordingViews:
    """The real dlib backend, recording which chip views the scanner asks it to encode."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim, self.mirror = inner, inner.name, inner.dim, True
        self.views: list = []

    def detect(self, rgb, **kw):
        return self.inner.detect(rgb, **kw)

    def smallest_face(self, *a, **kw):
        return self.inner.smallest_face(*a, **kw)

    def faces(self, rgb, **kw):
        return self.inner.faces(rgb, **kw)

    def embed(self, rgb, dets, *, views=None):
        self.views.append(None if views is None else list(views))
        return self.inner.embed(rgb, dets, views=views)


def test_looks_at_a_track_alternate_plain_and_mirrored_chips(templates, everyone, make_clip, backend):
    """One encoder pass per look, the track's mean still mirror-averaged; an image's one look gets both."""
    rec = _RecordingViews(backend)
    frames = make_clip({"biden": templates["biden"].reference}, 96, {"biden": range(0, 96)})
    result = scan_frames(frames, 24.0, everyone, rec)
    assert result.likeness_ids() == {"biden"}
    looks = [v for call in rec.views for v in call]
    assert len(looks) >= 3 and looks[:3] == ["plain", "mirror", "plain"]
    rec.views.clear()
    assert scan_frames(frames[:1], 24.0, everyone, rec).likeness_ids() == {"biden"}
    assert rec.views == [None]  # the backend's default: the mean of both orientations
