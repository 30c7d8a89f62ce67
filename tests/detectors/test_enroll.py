"""Enrollment: templates from real photos and every rejection reason."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from detectors.enroll import MIN_SHARPNESS, Template, enroll, face_sharpness
from detectors.errors import DetectorError, EnrollmentError
from detectors.faces import crop_face


def reason(images, backend, **kw) -> str:
    with pytest.raises(EnrollmentError) as info:
        enroll(images, backend, **kw)
    return info.value.reason


def test_enroll_photos_of_one_person(backend, photo):
    template = enroll([photo("obama.jpg"), photo("obama2.jpg"), photo("obama-240p.jpg")], backend)
    assert template.backend == "dlib-resnet-v1"
    assert template.embeddings.dtype == np.float32
    assert template.embeddings.shape[1] == 128 and 2 <= template.embeddings.shape[0] <= 3
    ref = template.reference
    assert ref.dtype == np.uint8 and ref.ndim == 3 and ref.shape[2] == 3
    assert 0.8 < ref.shape[0] / ref.shape[1] < 1.25 and min(ref.shape[:2]) > 300  # from the biggest face
    [face] = backend.faces(ref)
    assert face.box.width > ref.shape[1] / 3  # the face fills the crop, with a margin around it
    distances = np.linalg.norm(template.embeddings - face.embedding, axis=1)
    assert distances.min() < 0.2


def test_frames_without_a_face_are_skipped(backend, photo):
    blank = np.full((360, 480, 3), 90, np.uint8)
    frames = [blank, photo("obama-240p.jpg"), blank]
    assert enroll(frames, backend).embeddings.shape == (1, 128)


def test_group_photo_is_multiple_people(backend, photo):
    assert reason([photo("two_people.jpg")], backend) == "multiple_people"


def test_two_different_people_across_images_is_multiple_people(backend, photo):
    assert reason([photo("obama.jpg"), photo("biden2.jpg")], backend) == "multiple_people"


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face(backend, kind):
    rng = np.random.default_rng(1)
    img = np.zeros((300, 400, 3), np.uint8) if kind == "blank" else rng.integers(0, 256, (300, 400, 3), np.uint8)
    assert reason([img, img], backend) == "no_face"


def test_no_images_is_no_face(backend):
    assert reason([], backend) == "no_face"


def test_tiny_face_is_too_small(backend, photo):
    rgb = photo("obama.jpg")
    [face] = backend.faces(rgb)
    crop = crop_face(rgb, face.box, margin=1.0)  # the face is a third of the crop
    canvas = np.full((240, 320, 3), 200, np.uint8)
    canvas[50:200, 80:230] = cv2.resize(crop, (150, 150), interpolation=cv2.INTER_AREA)  # a ~50 px face
    [small] = backend.faces(canvas, upsample=1)
    assert small.box.size < 60
    assert reason([canvas], backend) == "face_too_small"
    assert enroll([canvas], backend, min_face_px=40).embeddings.shape == (1, 128)


def test_blurred_photo_is_too_blurry(backend, photo):
    rgb = photo("obama.jpg")
    [face] = backend.faces(rgb)
    blurred = cv2.GaussianBlur(rgb, (0, 0), face.box.width * 0.04)
    [soft] = backend.faces(blurred)
    assert face_sharpness(blurred, soft) < MIN_SHARPNESS < face_sharpness(rgb, face)
    assert reason([blurred], backend) == "too_blurry"
    assert enroll([blurred, rgb], backend).embeddings.shape == (1, 128)  # the sharp one is enough


def test_unreadable_image(backend):
    assert reason([np.zeros((20, 20), np.float64)], backend) == "unreadable"


def test_template_round_trip(templates):
    t = templates["obama"]
    again = Template.from_bytes(t.to_bytes())
    np.testing.assert_array_equal(again.embeddings, t.embeddings)
    np.testing.assert_array_equal(again.reference, t.reference)
    assert again.backend == t.backend and again.embeddings.dtype == np.float32


@pytest.mark.parametrize("data", [b"", b"not a template", Template(
    np.zeros((1, 4), np.float32), "x", np.zeros((2, 2, 3), np.uint8)).to_bytes()[:50]])
def test_template_from_garbage(data):
    with pytest.raises(DetectorError):
        Template.from_bytes(data)


def test_template_validates_itself():
    ref = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(DetectorError):
        Template(np.zeros((0, 128), np.float32), "dlib-resnet-v1", ref)
    with pytest.raises(DetectorError):
        Template(np.full((1, 128), np.nan, np.float32), "dlib-resnet-v1", ref)
    with pytest.raises(DetectorError):
        Template(np.zeros((1, 128), np.float32), "", ref)
    with pytest.raises(DetectorError):
        Template(np.zeros((1, 128), np.float32), "dlib-resnet-v1", np.zeros((4, 4), np.uint8))


def test_enrollment_error_carries_reason_and_pickles():
    err = EnrollmentError("face_too_small", "every face is smaller than 60 px")
    assert isinstance(err, DetectorError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, again.message) == ("face_too_small", "every face is smaller than 60 px")
    with pytest.raises(ValueError):
        EnrollmentError("sunburn", "not a reason")


@pytest.fixture(scope="module")
def miranda_selfie(faces_dir) -> np.ndarray:
    """Frames 84-210 of the Hamilton clip: Lin-Manuel Miranda alone, close up, turning his head."""
    from media.video import iter_frames

    return np.stack([f for i, f in iter_frames(faces_dir / "short_hamilton_clip.mp4", max_frames=211) if i >= 84])


def replayed_photo(rgb: np.ndarray, frames: int = 24) -> list[np.ndarray]:
    """A still photo held in front of a camera: slowly zoomed, shifted and tilted."""
    h, w = rgb.shape[:2]
    out = []
    for k in range(frames):
        m = cv2.getRotationMatrix2D((w / 2 + k, h / 2), (k - frames / 2) * 0.5, 1 + 0.01 * k)
        out.append(cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return out


def test_selfie_video_with_a_head_turn_enrolls(backend, miranda_selfie, templates):
    from detectors.enroll import MIN_POSE_SPREAD, enroll_video

    template = enroll_video(miranda_selfie, backend)
    assert 3 <= template.embeddings.shape[0] <= 10
    assert template.reference.shape[0] == template.reference.shape[1]
    [face] = backend.faces(template.reference, upsample=1)
    assert abs(face.pose) < MIN_POSE_SPREAD  # the reference is one of the frontal frames
    # the video template finds him in his photo
    photo_emb = templates["miranda"].embeddings[0]
    assert np.linalg.norm(template.embeddings - photo_emb, axis=1).min() < 0.5


def test_a_browser_recorded_selfie_file_enrolls(backend, challenge, photo, templates, tmp_path):
    """A WebM as MediaRecorder writes it: no duration and no rate in its header, which FFmpeg reads as 1000 fps.
    Sampled at that rate, 15 s were 15,000 frames, and the stride kept only the first one ("only 1 of 1 frames
    show a usable face"); media.video.probe now measures 20 fps from the timestamps."""
    from detectors.enroll import enroll_video
    from tests.media_tools import encode_timed

    frames = challenge.challenge_frames(photo("obama.jpg"), ("left", "right", "up"), fps=20.0)
    path = tmp_path / "selfie.webm"
    path.write_bytes(encode_timed(frames, [k * 50 for k in range(len(frames))]))
    template = enroll_video(path, backend)
    assert template.embeddings.shape[0] >= 3
    assert np.linalg.norm(template.embeddings - templates["obama"].embeddings[0], axis=1).min() < 0.5


def test_a_selfie_file_without_a_stated_length_is_sampled_over_what_it_holds(tmp_path):
    """A browser's WebM states no frame count: the samples spread over the frames it really holds (3 s here), not
    over the 15 s the stride assumed (which kept 5 of 60 frames, spaced 12 apart)."""
    from detectors.enroll import _video_frames
    from tests.media_tools import encode_timed

    frames = np.zeros((60, 64, 64, 3), np.uint8)
    for k in range(60):
        frames[k, :, : k + 4] = 200  # a bar that grows one column a frame: which frame a sample is shows in it
    path = tmp_path / "selfie.webm"
    path.write_bytes(encode_timed(frames, [k * 50 for k in range(60)]))
    picked = _video_frames(path, max_samples=24, max_seconds=15.0)
    widths = [int((f[32] > 100).any(axis=1).sum()) - 4 for f in picked]
    assert len(picked) == 24
    assert widths[0] <= 1 and widths[-1] >= 56  # from the start to the end
    assert max(np.diff(widths)) <= 4  # evenly: no gap of 12
    first_second = _video_frames(path, max_samples=24, max_seconds=1.0)  # only what max_seconds covers is decoded
    assert int((first_second[-1][32] > 100).any(axis=1).sum()) - 4 <= 20


def test_replayed_still_photo_is_single_pose(backend, photo):
    small = cv2.resize(photo("obama.jpg"), (569, 455), interpolation=cv2.INTER_AREA)
    assert reason_video(replayed_photo(small), backend) == "single_pose"


def reason_video(source, backend, **kw) -> str:
    from detectors.enroll import enroll_video

    with pytest.raises(EnrollmentError) as info:
        enroll_video(source, backend, **kw)
    return info.value.reason


def test_selfie_video_that_switches_person_is_multiple_people(backend, miranda_selfie, photo):
    biden = cv2.resize(photo("biden2.jpg"), (500, 500), interpolation=cv2.INTER_AREA)
    frames = list(miranda_selfie[::6]) + replayed_photo(biden, 12)
    assert reason_video(frames, backend) == "multiple_people"


def test_hamilton_file_as_a_selfie_video_is_refused(backend, faces_dir):
    # Miranda, then an audience member: not one person
    assert reason_video(faces_dir / "short_hamilton_clip.mp4", backend) == "multiple_people"


def test_short_or_unreadable_selfie_video(backend, miranda_selfie, tmp_path):
    assert reason_video(miranda_selfie[:3], backend) == "too_short"
    assert reason_video([], backend) == "too_short"
    bad = tmp_path / "selfie.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    assert reason_video(bad, backend) == "unreadable"

