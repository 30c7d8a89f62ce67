"""The live challenge (detectors.liveness) on challenge videos made from the real photos, and its refusals
on real photos, the real Hamilton clip and splices of real faces.

Challenge videos come from ``challenge_video.py`` (an ellipsoid head-turn warp of one photo, H.264):
they pass the pose check, which is the point of docs/enrollment.md's "what it does not prove".
"""

from __future__ import annotations

import io
import itertools
import random
import re

import cv2
import numpy as np
import pytest

from detectors.enroll import POSE_BINS, Template
from detectors.errors import DetectorError, LivenessError
from detectors.liveness import (
    MAX_POSES,
    MIN_POSES,
    POSES,
    LiveThresholds,
    random_poses,
    track_head,
    verify_challenge,
    verify_video,
)
from media.video import iter_timed_frames, read_video
from tests.media_tools import encode_timed

FIVE = ("left", "up", "right", "center", "down")
THREE = ("left", "down", "right")
TH = LiveThresholds()


def refusal(frames, fps, poses, backend) -> LivenessError:
    with pytest.raises(LivenessError) as info:
        verify_challenge(frames, fps, poses, backend)
    return info.value


# -- challenges ---------------------------------------------------------------------------------------------
def test_random_poses_are_well_formed():
    rng = random.Random(3)
    drawn = [random_poses(rng=rng) for _ in range(400)]
    assert {len(p) for p in drawn} == {3, 4, 5}
    for poses in drawn:
        assert set(poses) <= set(POSES) and poses[0] != "center" and poses[-1] != "center"
        assert all(a != b for a, b in itertools.pairwise(poses))
    assert {p for poses in drawn for p in poses} == set(POSES)
    assert len(set(drawn)) > 250  # many different challenges
    assert len(random_poses(4)) == 4 and MIN_POSES <= len(random_poses()) <= MAX_POSES  # secrets.SystemRandom
    for bad in (2, 6, "3"):
        with pytest.raises(ValueError):
            random_poses(bad)


def test_the_number_of_challenges_is_as_documented():
    def ok(seq):
        return seq[0] != "center" and seq[-1] != "center" and all(a != b for a, b in itertools.pairwise(seq))

    counts = [sum(ok(s) for s in itertools.product(POSES, repeat=n)) for n in (3, 4, 5)]
    assert counts == [52, 204, 820]  # random_poses' docstring: 1,076 in all


@pytest.mark.parametrize("poses", [("left", "left", "up"), ("left", "up"), ("left", "sideways", "up"),
                                   ("left", "up", "right", "down", "left", "up")])
def test_a_malformed_challenge_is_the_callers_bug(poses, backend):
    with pytest.raises(ValueError):
        verify_challenge(np.zeros((40, 16, 16, 3), np.uint8), 20.0, poses, backend)


def test_thresholds_validate_themselves():
    with pytest.raises(DetectorError):
        LiveThresholds(turn_yaw=-5)
    with pytest.raises(DetectorError):
        LiveThresholds(center=30)  # above the turn thresholds
    with pytest.raises(DetectorError):
        LiveThresholds(identity_distance=0)


# -- a challenge performed --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def obama_live(challenge, photo, backend):
    frames, fps = challenge.decode(challenge.challenge_video(photo("obama.jpg"), FIVE))
    return frames, fps, verify_challenge(frames, fps, FIVE, backend)


def test_a_challenge_performed_from_a_real_photo_passes(obama_live):
    frames, fps, result = obama_live
    assert result.poses == FIVE and [s.pose for s in result.spans] == list(FIVE)
    for a, b in itertools.pairwise(result.spans):
        assert a.last_frame < b.first_frame  # in the asked order, one after another
    peaks = {s.pose: s for s in result.spans}
    assert peaks["left"].yaw >= TH.turn_yaw and peaks["right"].yaw <= -TH.turn_yaw
    assert peaks["up"].pitch >= TH.turn_pitch and peaks["down"].pitch <= -TH.turn_pitch
    assert max(abs(peaks["center"].yaw), abs(peaks["center"].pitch)) <= TH.center
    for s in result.spans:
        assert s.first_frame <= s.peak_frame <= s.last_frame
        assert s.last_frame - s.first_frame + 1 >= TH.hold_s * fps
    assert result.yaw.shape == result.pitch.shape == (len(frames),) and result.fps == fps
    assert np.isfinite(result.yaw).mean() > 0.95
    assert not result.yaw.flags.writeable
    assert result.identity_distance < 0.5 and result.pose_distance < 0.6
    # up to 2 views a bin; a second one too close to the first (embedding distance < 0.06) is skipped, which
    # can fall either way with the thread count of the BLAS underneath
    assert all(1 <= n <= 2 for n in result.to_dict()["views"].values()), result.to_dict()["views"]


def test_the_template_holds_the_turned_views(obama_live, templates, backend):
    _, _, result = obama_live
    template = result.template()
    assert set(template.bins) == set(POSE_BINS) and len(template.bins) == template.embeddings.shape[0]
    for b in POSE_BINS:
        np.testing.assert_array_equal(template.view(b), result.views[b])
    again = Template.from_bytes(template.to_bytes())
    assert again.bins == template.bins and again.backend == "dlib-resnet-v1"
    [face] = backend.faces(template.reference)
    assert face.box.width > template.reference.shape[1] / 3  # the reference is a face crop
    obama, biden = templates["obama"].embeddings, templates["biden"].embeddings

    def nearest(emb, to):
        return float(np.linalg.norm(to[None] - emb[:, None], axis=-1).min())

    assert nearest(template.view("frontal"), obama) < 0.3  # the video was made from obama.jpg
    for b in ("left", "right", "up", "down"):
        assert nearest(template.view(b), obama) < 0.55 < nearest(template.view(b), biden)


@pytest.fixture(scope="module")
def biden_video(challenge, photo) -> bytes:
    return challenge.challenge_video(photo("biden2.jpg"), THREE, fps=15.0, seed=1)


def test_a_challenge_video_file_passes(biden_video, backend):
    result = verify_video(biden_video, THREE, backend)
    assert [s.pose for s in result.spans] == list(THREE) and result.fps == 15.0
    assert all(result.views[b].shape[0] >= 1 for b in ("frontal", "left", "down", "right"))


def test_a_pose_never_reached_says_how_far_the_head_went(biden_video, backend):
    frames, fps = read_video(biden_video, with_audio=False).frames, 15.0
    err = refusal(frames, fps, ("left", "up", "right"), backend)
    assert err.reason == "pose_not_reached"
    m = re.fullmatch(r"pose 'up' never reached: max pitch (-?\d+) deg, need 15", err.message)
    assert m is not None and int(m.group(1)) < 15


def test_poses_out_of_order(biden_video, backend):
    frames, fps = read_video(biden_video, with_audio=False).frames, 15.0
    err = refusal(frames, fps, ("down", "left", "right"), backend)
    assert err.reason == "pose_order"
    assert err.message.startswith("expected 'down' then 'left', saw 'left' first")


def test_another_turn_between_two_asked_poses_is_out_of_order(biden_video, backend):
    frames, fps = read_video(biden_video, with_audio=False).frames, 15.0
    err = refusal(frames, fps, ("left", "right", "left"), backend)
    assert err.reason == "pose_order"
    assert err.message.startswith("expected 'left' then 'right', saw 'down' in between")


def test_a_mirrored_recording_says_so(biden_video, backend):
    frames = np.ascontiguousarray(read_video(biden_video, with_audio=False).frames[:, :, ::-1])
    result = verify_challenge(frames, 15.0, THREE, backend, mirrored=True)
    assert result.spans[0].yaw >= TH.turn_yaw and np.nanmax(result.yaw) >= TH.turn_yaw  # the person's left
    err = refusal(frames, 15.0, THREE, backend)  # read as the camera saw it, the first turn is to the right
    assert err.reason == "pose_order" and err.message.startswith("expected 'left' first, saw 'right' first")


# -- what is not a live person performing it --------------------------------------------------------------------
def test_a_real_photo_replayed_as_a_video(challenge, photo, backend):
    frames, fps = challenge.decode(challenge.still_video(photo("alex_lacamoire2.jpg"), seconds=3.0))
    err = refusal(frames, fps, THREE, backend)
    assert err.reason == "replayed_still" and "does not move" in err.message


@pytest.fixture(scope="module")
def hamilton(faces_dir):
    clip = read_video(faces_dir / "short_hamilton_clip.mp4", with_audio=False)
    return clip.frames, clip.fps


def test_a_frame_of_the_real_clip_replayed(challenge, hamilton, backend):
    frames, fps = hamilton
    still = np.repeat(frames[150][None], round(3 * fps), axis=0)  # Miranda, close up
    again, fps2 = challenge.decode(challenge.encode(still, fps))
    assert refusal(again, fps2, THREE, backend).reason == "replayed_still"


def test_a_slideshow_of_real_photos(challenge, photo, backend):
    names = ("obama.jpg", "biden2.jpg", "alex_lacamoire2.jpg", "lin-manuel-miranda.png")
    frames, fps = challenge.decode(challenge.slideshow_video([photo(n) for n in names], hold_s=0.5))
    err = refusal(frames, fps, THREE, backend)
    assert err.reason == "slideshow" and err.message.startswith("8 still images shown about 0.5 s each")


def test_a_slideshow_of_real_frames_of_one_person_turning(challenge, hamilton, backend):
    frames, fps = hamilton
    held = [frames[t] for t in (95, 130, 160, 200) for _ in range(round(0.5 * fps))]  # Miranda, four poses
    again, fps2 = challenge.decode(challenge.encode(np.stack(held * 2), fps))
    assert refusal(again, fps2, THREE, backend).reason == "slideshow"


def test_a_splice_of_two_people_with_a_cut(challenge, photo, backend):
    frames = challenge.spliced_frames(photo("obama.jpg"), photo("biden2.jpg"), THREE, fps=15.0)
    frames, fps = challenge.decode(challenge.encode(frames, 15.0))
    err = refusal(frames, fps, THREE, backend)
    assert err.reason == "track_break" and "changes abruptly" in err.message


def test_a_splice_of_two_people_hidden_by_a_cross_fade(challenge, photo, backend):
    frames = challenge.spliced_frames(photo("obama.jpg"), photo("biden2.jpg"), THREE, fps=15.0, dissolve_s=0.6)
    frames, fps = challenge.decode(challenge.encode(frames, 15.0))
    err = refusal(frames, fps, THREE, backend)
    # Here the dissolve keeps the face tracked and the identity check refuses it; CI's clean install (newer
    # av/OpenCV/numpy wheels: pyproject pins ranges) once lost the face in the ghosted frames instead and
    # refused it as a broken take, and a full suite's run (encoder threads under load) once found the ghost of
    # the second face beside the first for 3 frames. Each is a refusal a splice must get: a dissolve between two
    # people shows two faces for a moment; anything else (accepted, or refused for a pose) is the defect this
    # test is for.
    expected = {"identity_changed": "not show the same person", "track_break": "continuous take|leave the view",
                "multiple_faces": "second face is in view"}
    assert err.reason in expected and re.search(expected[err.reason], err.message), (err.reason, err.message)


def test_the_real_hamilton_clip_is_not_one_take(faces_dir, backend):
    with pytest.raises(LivenessError) as info:
        verify_video(faces_dir / "short_hamilton_clip.mp4", ("left", "right", "up"), backend)
    assert info.value.reason == "track_break" and "frames 19 and 20" in info.value.message  # the first cut


def test_one_take_of_the_real_clip_passes_every_check_but_the_poses(hamilton, backend):
    frames, fps = hamilton
    # Frames 120-210: Lin-Manuel Miranda alone, singing, turning his head to his right (-44 deg) and a little
    # to his left: real motion is not a still, not a slideshow, one take, one person.
    err = refusal(frames[120:211], fps, ("left", "right", "up"), backend)
    assert err.reason == "pose_not_reached"
    m = re.fullmatch(r"pose 'left' never reached: max yaw to the left (\d+) deg, need 25", err.message)
    assert m is not None and 12 <= int(m.group(1)) < 25


def test_two_people_in_view(photo, backend):
    group = cv2.resize(photo("two_people.jpg"), (640, 376), interpolation=cv2.INTER_AREA)
    frames = np.repeat(group[None], 40, axis=0)
    err = refusal(frames, 20.0, THREE, backend)
    assert err.reason == "multiple_faces"


def test_no_face_and_a_face_too_small(photo, backend):
    noise = np.random.default_rng(0).integers(0, 256, (40, 120, 160, 3), dtype=np.uint8)
    assert refusal(noise, 20.0, THREE, backend).reason == "no_face"
    small = photo("obama-240p.jpg")  # a ~63 px face
    assert refusal(np.repeat(small[None], 40, axis=0), 20.0, THREE, backend).reason == "face_too_small"


@pytest.mark.parametrize(("n", "fps", "reason"), [(20, 20.0, "too_short"), (220, 10.0, "too_long"),
                                                  (40, 5.0, "frame_rate"), (40, float("nan"), "unreadable")])
def test_video_length_and_rate(n, fps, reason, backend):
    assert refusal(np.zeros((n, 16, 16, 3), np.uint8), fps, THREE, backend).reason == reason


def test_a_video_file_too_long_is_refused_before_it_is_decoded(biden_video, backend):
    with pytest.raises(LivenessError) as info:
        verify_video(biden_video, THREE, backend, thresholds=LiveThresholds(min_seconds=1.0, max_seconds=2.0))
    assert info.value.reason == "too_long" and info.value.message.startswith("the video lasts 4.")


def test_unreadable_input(backend, tmp_path):
    assert refusal(np.zeros((40, 16, 16), np.uint8), 20.0, THREE, backend).reason == "unreadable"
    bad = tmp_path / "selfie.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(LivenessError) as info:
        verify_video(bad, THREE, backend)
    assert info.value.reason == "unreadable"


def test_track_head_measures_every_frame(biden_video):
    frames = read_video(biden_video, with_audio=False).frames
    track = track_head(frames, 15.0)
    assert track.frame_count == len(frames) and track.has_face.all()
    assert np.nanmax(track.yaw) >= TH.turn_yaw and np.nanmin(track.pitch) <= -TH.turn_pitch
    # a moving head: hardly any frame is near-identical to the one before (a replayed still has them all)
    assert np.isnan(track.face_change[0])
    assert np.mean(track.face_change[1:] < TH.still_level) < 0.1, track.face_change
    assert float(np.nanmax(track.jump)) < TH.max_jump


# -- time: a browser's variable-rate recording ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dropped(challenge, photo) -> tuple[np.ndarray, list[int]]:
    """A challenge filmed at 20 fps of which a busy browser kept about 65 % of the frames (never more than 2
    dropped in a row), stamped in milliseconds with a few ms of jitter, one late frame stamped with its
    predecessor's time: what Chromium's MediaRecorder wrote on 2 loaded cores (docs/enrollment.md, "Time")."""
    frames = challenge.challenge_frames(photo("obama.jpg"), THREE, fps=20.0)
    rng = np.random.default_rng(5)
    keep = [0]
    for i in range(1, len(frames) - 1):
        if rng.random() < 0.65 or i - keep[-1] >= 3:
            keep.append(i)
    keep.append(len(frames) - 1)
    times = [i * 50 + (int(rng.integers(-4, 5)) if 0 < i < len(frames) - 1 else 0) for i in keep]
    times[10] = times[9]
    return frames[keep], times


def test_a_variable_rate_recording_is_timed_by_its_timestamps(challenge, dropped, backend):
    import av

    frames, times = dropped
    data = encode_timed(frames, times)  # the header says 1000 fps and no duration, as Chromium's
    with av.open(io.BytesIO(data)) as c:
        assert c.streams.video[0].average_rate == 1000 and c.duration is None
    result = verify_video(data, THREE, backend)
    seconds = (times[-1] - times[0]) / 1000
    assert result.frame_count == len(frames) == 51
    assert result.duration_s == pytest.approx(seconds * len(frames) / (len(frames) - 1))  # the span plus one frame
    assert result.fps == pytest.approx((len(frames) - 1) / seconds) and 12 < result.fps < 13
    assert [s.pose for s in result.spans] == list(THREE)
    # the file's frames, given with the times the decoder reads, are judged the same
    decoded = list(iter_timed_frames(data))
    assert [round(t * 1000) for _, t, _ in decoded] == times
    again = verify_challenge(np.stack([f for _, _, f in decoded]), None, THREE, backend,
                             times=[t for _, t, _ in decoded])
    assert again.to_dict() == result.to_dict()


def test_a_recording_at_4_frames_a_second_is_refused_for_its_real_rate(challenge, dropped, backend, photo):
    frames = challenge.challenge_frames(photo("obama.jpg"), THREE, fps=20.0)[::5]  # 16 frames over 4 s
    data = encode_timed(frames, [k * 250 for k in range(len(frames))], declared_fps=20)
    with pytest.raises(LivenessError) as info:
        verify_video(data, THREE, backend)  # 16 frames at the header's 20 fps would "last 0.8 s"
    assert info.value.reason == "frame_rate"
    assert info.value.message.startswith("the video runs at 4.0 frames a second; at least 10 are needed")


def test_a_constant_rate_file_is_timed_exactly_as_its_frame_count_over_its_rate(biden_video, challenge, backend):
    from_file = verify_video(biden_video, THREE, backend)
    frames, fps = challenge.decode(biden_video)
    from_frames = verify_challenge(frames, fps, THREE, backend)
    assert from_file.fps == fps == 15.0 and from_file.duration_s == len(frames) / 15.0
    assert from_file.to_dict() == from_frames.to_dict()
    np.testing.assert_array_equal(from_file.yaw, from_frames.yaw)


def test_timestamps_that_go_backwards_are_unreadable(challenge, dropped, backend):
    frames, times = dropped
    back = list(times)
    back[20], back[21] = back[21], back[20]
    data = encode_timed(frames, back, fmt="mp4", dts_ms=[k - 1000 for k in range(len(back))])
    with pytest.raises(LivenessError) as info:
        verify_video(data, THREE, backend)
    assert info.value.reason == "unreadable"
    assert info.value.message == (f"the frames' timestamps go backwards at frame 21 ({back[20] / 1000:.3f} s, then "
                                  f"{back[21] / 1000:.3f} s): a recording's frames are in time order")


@pytest.mark.parametrize("pause_ms", [2_000, 100_000])
def test_a_pause_in_the_timestamps_is_a_break_in_the_take(challenge, dropped, backend, pause_ms):
    frames, times = dropped
    paused = [t + (pause_ms if k >= 30 else 0) for k, t in enumerate(times)]
    with pytest.raises(LivenessError) as info:
        verify_video(encode_timed(frames, paused), THREE, backend)
    assert info.value.reason == "track_break"
    skipped = (paused[30] - paused[29]) / 1000
    assert info.value.message.startswith(f"the video skips {skipped:.1f} s between frames 29 and 30 (at "
                                         f"{paused[29] / 1000:.1f} s): a live video is one continuous take")


def test_timestamps_given_with_frames_are_checked(dropped, backend):
    frames, times = dropped
    seconds = np.array(times) / 1000
    with pytest.raises(ValueError):
        verify_challenge(frames, 20.0, THREE, backend, times=seconds)  # both
    with pytest.raises(ValueError):
        verify_challenge(frames, None, THREE, backend)  # neither
    cases = {
        "unreadable": [seconds[:-1], np.zeros(len(frames)), np.where(np.arange(len(frames)) == 7, np.nan, seconds)],
        "too_short": [seconds[:1]],
    }
    for reason, bad in cases.items():
        for t in bad:
            n = len(t) if reason == "too_short" else len(frames)
            with pytest.raises(LivenessError) as info:
                verify_challenge(frames[:n], None, THREE, backend, times=t)
            assert info.value.reason == reason, (t, info.value.message)


def test_more_than_240_frames_a_second_stop_the_decoding(challenge, backend):
    th = LiveThresholds(min_seconds=1.0, max_seconds=2.0)  # 481 frames at most
    frames = np.zeros((500, 16, 16, 3), np.uint8)
    with pytest.raises(LivenessError) as info:
        verify_video(encode_timed(frames, list(range(500))), THREE, backend, thresholds=th)
    assert info.value.reason == "frame_rate" and "at most 240 a second" in info.value.message


def test_a_pose_held_across_dropped_frames_counts_the_time_they_stand_for():
    from detectors.liveness import _Clock, _events

    labels = [None, "left", "left", "left", None]
    # at 20 fps a 0.2 s hold is 4 frames: 3 frames in a row are not enough ...
    assert _events(labels, 4, _Clock.constant(5, 20.0).weights) == []
    # ... unless one of them stands for a dropped frame: the 3 frames then span 0.2 s
    clock = _Clock.measured(np.array([0.0, 0.05, 0.15, 0.2, 0.25]))
    assert clock.fps == pytest.approx(20.0)
    [event] = _events(labels, 4, clock.weights)
    assert (event.pose, event.first, event.last) == ("left", 1, 3)
