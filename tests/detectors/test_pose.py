"""Pose-aware matching (detectors.pose, LikenessIndex.search(pose_bins=...), merge_templates and the scan's
decision): a turned probe is compared with the same bin of a template that has it, else with its frontal
rows, each kind of comparison with its own match and protect distances."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.enroll import Template, merge_templates
from detectors.errors import DetectorError
from detectors.faces import Box
from detectors.index import LikenessIndex
from detectors.matching import decide_tracks
from detectors.pose import DLIB_POSE_THRESHOLDS, BinThreshold, PoseThresholds, probe_bin
from detectors.scan import _Track, pose_thresholds_for

REF = np.zeros((4, 4, 3), np.uint8)


@pytest.mark.parametrize(("yaw", "pitch", "expected"), [
    (0.0, 0.0, "frontal"), (19.0, 0.0, "frontal"), (25.0, 3.0, "left"), (-52.0, -14.0, "right"),
    (2.0, 20.0, "up"), (5.0, -16.0, "down"), (30.0, 25.0, "up"), (None, None, "frontal"), (-30.0, None, "right"),
])
def test_a_probe_falls_in_the_bin_nearest_its_pose(yaw, pitch, expected):
    assert probe_bin(yaw, pitch) == expected


def test_thresholds_are_checked_and_looked_up_by_kind():
    with pytest.raises(DetectorError):
        BinThreshold(0.5, 0.4)
    t = DLIB_POSE_THRESHOLDS
    assert t.get("frontal", same_bin=True) is t.frontal
    assert t.get("left", same_bin=True) is t.yaw_same and t.get("right", same_bin=False) is t.yaw_frontal
    assert t.get("down", same_bin=True) is t.pitch_same and t.get("up", same_bin=False) is t.pitch_frontal
    assert t.widest == max(x.protect for x in (t.frontal, t.yaw_same, t.yaw_frontal, t.pitch_same, t.pitch_frontal))
    for x in (t.frontal, t.yaw_same, t.yaw_frontal, t.pitch_same, t.pitch_frontal):
        assert x.match < x.protect  # every kind has an uncertain band
    with pytest.raises(DetectorError):
        t.get("sideways", same_bin=True)
    assert t.with_frontal_match(0.45).frontal == BinThreshold(0.45, t.frontal.protect)
    assert PoseThresholds.uniform(0.8).widest == 0.8


def test_pose_thresholds_follow_the_backend_and_a_deployments_threshold(backend):
    assert pose_thresholds_for(backend) is DLIB_POSE_THRESHOLDS
    assert pose_thresholds_for(backend, 0.45).frontal.match == 0.45

    class Other:
        name, dim, match_threshold = "other", 4, 1.1

    assert pose_thresholds_for(Other()) == PoseThresholds.uniform(1.1)  # type: ignore[arg-type]


def _index() -> LikenessIndex:
    index = LikenessIndex(dim=2)
    # "live": frontal row at (0, 0), left at (1, 0); "photo": unbinned (frontal) at (0, 1)
    index.add("live", Template(np.array([[0, 0], [1, 0]], np.float32), "t", REF, bins=("frontal", "left")))
    index.add("photo", Template(np.array([[0, 1]], np.float32), "t", REF))
    return index


def test_the_index_compares_a_probe_with_its_own_bin_else_frontal_rows():
    index = _index()
    probe = np.array([[0.9, 0.0]], np.float32)
    assert index.search(probe, k=2)[0][0] == ("live", pytest.approx(0.1))  # no pose: every row
    [hits] = index.search(probe, k=2, pose_bins=["frontal"])
    assert dict(hits)["live"] == pytest.approx(0.9)  # frontal probe: frontal rows only
    [hits] = index.search(probe, k=2, pose_bins=["left"])
    assert dict(hits) == {"live": pytest.approx(0.1), "photo": pytest.approx(np.hypot(0.9, 1.0))}
    assert index.compared_bin("live", "left") == "left" and index.compared_bin("photo", "left") == "frontal"
    assert index.compared_bin("live", "up") == "frontal"
    with pytest.raises(DetectorError):
        index.search(probe, pose_bins=["left", "right"])
    with pytest.raises(DetectorError):
        index.compared_bin("nobody", "left")


def test_bins_survive_removal_and_compaction():
    index = LikenessIndex(dim=2)
    for i in range(1100):  # enough dead rows to compact
        index.add(f"x{i}", Template(np.array([[5.0 + i, 5.0]], np.float32), "t", REF))
    index.add("live", Template(np.array([[0, 0], [1, 0]], np.float32), "t", REF, bins=("frontal", "left")))
    for i in range(1100):
        index.remove(f"x{i}")
    assert index.compared_bin("live", "left") == "left"
    assert index.search(np.array([[0.9, 0.0]], np.float32), pose_bins=["left"])[0][0][1] == pytest.approx(0.1)


def test_merge_labels_photo_rows_frontal():
    photo = Template(np.ones((2, 3), np.float32), "t", REF)
    live = Template(np.zeros((2, 3), np.float32), "t", REF, bins=("frontal", "right"))
    merged = merge_templates(photo, live)
    assert merged.bins == ("frontal", "frontal", "frontal", "right") and merged.embeddings.shape == (4, 3)
    assert merge_templates(photo, photo).bins == ()
    with pytest.raises(DetectorError):
        merge_templates(photo, Template(np.ones((1, 3), np.float32), "other", REF))
    with pytest.raises(DetectorError):
        merge_templates()


def _track(track_id: int, looks: list[tuple[float, float]], bins: list[str]) -> _Track:
    t = _Track(track_id, 0, 10, Box(0, 10, 10, 0))
    t.looks = [np.array(x, np.float32) for x in looks]
    t.look_bins = bins
    return t


def test_the_decision_matches_like_with_like_and_reports_the_band():
    index = _index()
    poses = PoseThresholds(frontal=BinThreshold(0.3, 0.4), yaw_same=BinThreshold(0.2, 0.35),
                           yaw_frontal=BinThreshold(0.3, 0.5), pitch_same=BinThreshold(0.2, 0.3),
                           pitch_frontal=BinThreshold(0.3, 0.4))
    tracks = [
        _track(1, [(1.1, 0.0)], ["left"]),  # 0.1 from live's left row: match (left vs left)
        _track(2, [(1.3, 0.0)], ["left"]),  # 0.3 from live's left row: band (0.2, 0.35]
        _track(3, [(0.45, 0.9)], ["right"]),  # photo has no right bin: 0.46 from its frontal row: band (0.3, 0.5]
        _track(4, [(0.05, 0.0), (0.05, 0.0)], ["frontal", "frontal"]),  # frontal match with live
    ]
    matches, uncertain, reports = decide_tracks(tracks, index, poses, normalize=False)
    got = {(m.track_id, m.likeness_id, m.pose_bin, m.compared) for m in matches}
    assert got == {(1, "live", "left", "left"), (4, "live", "frontal", "frontal")}
    band = {(m.track_id, m.likeness_id, m.pose_bin, m.compared) for m in uncertain}
    assert band == {(2, "live", "left", "left"), (3, "photo", "right", "frontal")}
    assert [(r.track_id, r.matched, r.uncertain, r.pose_bin) for r in reports] == [
        (1, True, False, "left"), (2, False, True, "left"), (3, False, True, "right"), (4, True, False, "frontal")]
