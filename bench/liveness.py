"""Measure what the live check's thresholds rest on: ``python -m bench liveness`` (~3 min on 2 cores).

Prints the tables of docs/enrollment.md ("The live check"):

1. head pose of the frontal faces in the test photos (what "facing the camera" measures);
2. head pose measured in challenge videos made from each photo (``tests/detectors/challenge_video.py``:
   the head turned 40 degrees left and right, 35 up and down, by an ellipsoid warp, H.264 at 320x320,
   20 fps): the furthest and the least turned frame of every held pose, and whether the video passes;
3. the same for the plain perspective warp of a flat photo (what holding up a printed photo and tilting
   it does), which measures much less than it turns;
4. the real clip ``short_hamilton_clip.mp4``: yaw and pitch of the faces followed, motion, cuts, and the
   live check's answer;
5. motion and identity on the attacks: a still photo replayed, a slideshow, two people spliced (a cut
   and a cross-fade).

``--quick`` measures 3 photos instead of 7.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
HELPER = Path(__file__).resolve().parents[1] / "tests" / "detectors" / "challenge_video.py"
PHOTOS = ("obama.jpg", "obama2.jpg", "biden2.jpg", "alex-lacamoire.png", "alex_lacamoire2.jpg",
          "lin-manuel-miranda.png", "biden.jpg")
FRONTAL = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama-240p.jpg", "obama_partial_face.jpg", "biden.jpg",
           "biden2.jpg", "alex-lacamoire.png", "alex_lacamoire2.jpg", "lin-manuel-miranda.png", "two_people.jpg")
POSES = ("left", "up", "right", "center", "down")
FPS = 20.0


def helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("challenge_video", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photo(name: str) -> np.ndarray:
    from media.video import load_image

    return load_image(FACES / name)


def frontal_table() -> None:
    import cv2

    from detectors.headpose import default_landmarks, head_pose

    print("\n### Frontal photos\n\n| photo | face px | yaw | pitch | fit error |\n|---|---|---|---|---|")
    for name in FRONTAL:
        rgb = photo(name)
        scale = min(1.0, 1000.0 / max(rgb.shape[:2]))
        if scale < 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = default_landmarks().detect(rgb, upsample=1 if min(rgb.shape[:2]) < 400 else 0)
        for box, points in found:
            pose = head_pose(points, rgb.shape[1], rgb.shape[0])
            print(f"| {name} | {box.size} | {pose.yaw:.1f} | {pose.pitch:.1f} | {pose.error:.3f} |")


def _holds(cv: ModuleType, poses: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The frames of each pose's hold in the helper's trajectory (where the warp sits at the pose)."""
    path = cv.trajectory(poses, FPS)
    out: dict[str, np.ndarray] = {}
    for pose in dict.fromkeys(poses):
        target = np.array(cv.POSE_ANGLES[pose])
        out[pose] = np.flatnonzero(np.abs(path - target).max(axis=1) < 0.5)
    return out


def _pose_cells(track, holds: dict[str, np.ndarray]) -> list[str]:
    from detectors.liveness import _smoothed

    yaw, pitch = _smoothed(track.yaw), _smoothed(track.pitch)
    cells = []
    for pose in ("left", "right", "up", "down", "center"):
        idx = holds[pose][np.isfinite(yaw[holds[pose]])]
        lost = len(holds[pose]) - len(idx)
        if idx.size == 0:
            cells.append("no face")
            continue
        if pose == "center":
            worst = np.maximum(np.abs(yaw[idx]), np.abs(pitch[idx]))
            cells.append(f"max off-axis {worst.max():.0f}")
            continue
        values = {"left": yaw, "right": -yaw, "up": pitch, "down": -pitch}[pose][idx]
        note = f", {lost} lost" if lost else ""
        followed = int(track.followed[idx].sum())
        note += f", {followed} followed" if followed else ""
        cells.append(f"{values.max():.0f} / {values.min():.0f}{note}")
    return cells


def challenge_table(cv: ModuleType, names: tuple[str, ...]) -> None:
    from detectors.errors import LivenessError
    from detectors.liveness import track_head, verify_challenge

    holds = _holds(cv, POSES)
    print("\n### Challenge videos from photos (ellipsoid warp: 40 deg yaw, 35 deg pitch)\n")
    print("Cells: furthest / least turned frame of the held pose, degrees (3-frame median).\n")
    print("| photo | left (yaw) | right (-yaw) | up (pitch) | down (-pitch) | center | face change p10/p50 "
          "| live check | identity / pose distance | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        started = time.perf_counter()
        frames, fps = cv.decode(cv.challenge_video(photo(name), POSES, fps=FPS))
        track = track_head(frames, fps)
        cells = _pose_cells(track, holds)
        change = track.face_change[np.isfinite(track.face_change)]
        try:
            r = verify_challenge(frames, fps, POSES)
            verdict, dist = "pass", f"{r.identity_distance:.2f} / {r.pose_distance:.2f}"
        except LivenessError as e:
            verdict, dist = f"{e.reason}: {e.message}", _identity(frames, fps).split(" (")[0]
        print(f"| {name} | {' | '.join(cells)} | {np.percentile(change, 10):.1f} / {np.percentile(change, 50):.1f} "
              f"| {verdict} | {dist} | {time.perf_counter() - started:.0f} |", flush=True)


def _plane(cv: ModuleType, crop: np.ndarray, centre: tuple[float, float], face: float, yaw: float,
           pitch: float) -> np.ndarray:
    """A flat photo rotated in front of the camera (a pinhole at 2.7 face widths): a homography."""
    import cv2

    rot = cv._rotation(yaw, pitch)
    dist = 2.7 * face
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * face
    moved = np.c_[corners, np.zeros(4)] @ rot.T
    dst = dist * moved[:, :2] / (dist + moved[:, 2:3]) + centre
    h = cv2.getPerspectiveTransform((corners + centre).astype(np.float32), dst.astype(np.float32))
    return np.asarray(cv2.warpPerspective(crop, h, crop.shape[1::-1], borderMode=cv2.BORDER_REPLICATE))


def plane_table(cv: ModuleType, names: tuple[str, ...]) -> None:
    from detectors.headpose import default_landmarks, head_pose

    angles = ((40, 0), (-40, 0), (55, 0), (-55, 0), (0, 35), (0, -35), (0, 50), (0, -50))
    print("\n### A flat photo tilted in front of the camera (homography), one frame each\n")
    print("| photo | " + " | ".join(f"yaw {y} pitch {p}" for y, p in angles) + " |")
    print("|---|" + "---|" * len(angles))
    for name in names:
        crop, centre, face = cv.face_crop(photo(name), 320)
        cells = []
        for yaw, pitch in angles:
            found = default_landmarks().detect(_plane(cv, crop, centre, face, yaw, pitch))
            if not found:
                cells.append("no face")
                continue
            pose = head_pose(found[0][1], 320, 320)
            cells.append(f"{pose.yaw:.0f}, {pose.pitch:.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for t, m in enumerate(mask.tolist() + [False]):
        if m and start is None:
            start = t
        elif not m and start is not None:
            out.append((start, t - 1))
            start = None
    return out


def hamilton_table() -> None:
    from detectors.errors import LivenessError
    from detectors.liveness import track_head, verify_challenge
    from media.video import read_video

    clip = read_video(FACES / "short_hamilton_clip.mp4", with_audio=False)
    track = track_head(clip.frames, clip.fps)
    print(f"\n### short_hamilton_clip.mp4 ({clip.frame_count} frames, {clip.fps:.2f} fps)\n")
    print("| frames | face px | yaw min / max | pitch min / max | followed | face change p10 / p50 / p90 | < 0.6 |")
    print("|---|---|---|---|---|---|---|")
    for a, b in _runs(track.has_face):
        if b - a < 5:
            continue
        sl = slice(a, b + 1)
        ch = track.face_change[sl][np.isfinite(track.face_change[sl])]
        pct = "/".join(f"{v:.1f}" for v in np.percentile(ch, [10, 50, 90])) if ch.size else "-"
        print(f"| {a}-{b} | {np.nanmedian(track.face_px[sl]):.0f} | {np.nanmin(track.yaw[sl]):.0f} / "
              f"{np.nanmax(track.yaw[sl]):.0f} | {np.nanmin(track.pitch[sl]):.0f} / {np.nanmax(track.pitch[sl]):.0f} "
              f"| {int(track.followed[sl].sum())} | {pct} | {(ch < 0.6).mean():.0%} |")
    cuts = np.flatnonzero(np.nan_to_num(track.frame_change) > 20)
    big = np.sort(np.nan_to_num(track.frame_change))[::-1][:5]
    print(f"\nwhole-frame change > 20 at frames {cuts.tolist()}; largest five: {np.round(big, 1).tolist()}")
    jumps = np.nan_to_num(track.jump)
    print(f"largest landmark jumps (face sizes per frame): {np.round(np.sort(jumps)[::-1][:5], 2).tolist()}")
    for label, frames in (("the whole clip", clip.frames), ("frames 120-210", clip.frames[120:211])):
        for poses in (("left", "right", "up"), ("right", "down", "right")):
            try:
                r = verify_challenge(frames, clip.fps, poses)
                print(f"live check of {label}, {poses}: pass {r.to_dict()}")
            except LivenessError as e:
                print(f"live check of {label}, {poses}: {e.reason}: {e.message}")
    within = _identity(clip.frames[120:211], clip.fps)
    print(f"identity within poses / turned against frontal, frames 120-210: {within}")


def _identity(frames: np.ndarray, fps: float) -> str:
    """The live check's two identity distances on frames that need not pass the pose check."""
    from detectors.faces import default_backend
    from detectors.liveness import LiveThresholds, _check_identity, _embed, _labels, _samples, _smoothed, track_head

    track = track_head(frames, fps)
    yaw, pitch = _smoothed(track.yaw), _smoothed(track.pitch)
    labels = _labels(yaw, pitch, LiveThresholds())
    taken, rows = [], []
    for t in _samples(track, [], yaw, pitch, fps):
        box = track.boxes[t]
        emb = _embed(default_backend(), frames[t], box) if box is not None else None
        if emb is not None:
            taken.append(t)
            rows.append(emb)
    within, across = _check_identity(taken, np.stack(rows), labels, 9.0, 9.0)
    return f"{within:.2f} / {across:.2f} ({len(taken)} samples)"


def attacks_table(cv: ModuleType) -> None:
    from detectors.errors import LivenessError
    from detectors.liveness import track_head, verify_challenge

    cases = {
        "obama.jpg replayed (4 s)": lambda: cv.still_video(photo("obama.jpg")),
        "biden2.jpg replayed (4 s)": lambda: cv.still_video(photo("biden2.jpg")),
        "slideshow of 4 photos, 0.5 s each": lambda: cv.slideshow_video(
            [photo(n) for n in ("obama.jpg", "obama2.jpg", "biden2.jpg", "alex_lacamoire2.jpg")]),
        "slideshow of 3 Obama photos, 0.7 s each": lambda: cv.slideshow_video(
            [photo(n) for n in ("obama.jpg", "obama2.jpg", "obama_partial_face.jpg")], hold_s=0.7),
        "obama.jpg then biden2.jpg, a cut": lambda: cv.encode(cv.spliced_frames(
            photo("obama.jpg"), photo("biden2.jpg"), POSES), FPS),
        "obama.jpg then biden2.jpg, 0.6 s cross-fade": lambda: cv.encode(cv.spliced_frames(
            photo("obama.jpg"), photo("biden2.jpg"), POSES, dissolve_s=0.6), FPS),
        "alex_lacamoire2.jpg then lin-manuel-miranda.png, 0.6 s cross-fade": lambda: cv.encode(cv.spliced_frames(
            photo("alex_lacamoire2.jpg"), photo("lin-manuel-miranda.png"), POSES, dissolve_s=0.6), FPS),
    }
    print("\n### Attacks\n\n| video | face change < 0.6 | p50 | p90 | max | whole-frame max | live check |")
    print("|---|---|---|---|---|---|---|")
    for label, make in cases.items():
        frames, fps = cv.decode(make())
        track = track_head(frames, fps)
        ch = track.face_change[np.isfinite(track.face_change)]
        try:
            verify_challenge(frames, fps, POSES)
            verdict = "pass"
        except LivenessError as e:
            verdict = f"{e.reason}: {e.message}"
        print(f"| {label} | {(ch < 0.6).mean():.0%} | {np.median(ch):.2f} | {np.percentile(ch, 90):.2f} | "
              f"{ch.max():.1f} | {np.nanmax(track.frame_change):.1f} | {verdict} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench liveness", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 photos instead of 7")
    parser.add_argument("--only", choices=("frontal", "challenge", "plane", "hamilton", "attacks"))
    args = parser.parse_args(argv or [])
    names = PHOTOS[:3] if args.quick else PHOTOS
    cv = helper()
    started = time.perf_counter()
    steps = {"frontal": frontal_table, "challenge": lambda: challenge_table(cv, names),
             "plane": lambda: plane_table(cv, names), "hamilton": hamilton_table, "attacks": lambda: attacks_table(cv)}
    for name, step in steps.items():
        if args.only in (None, name):
            step()
    print(f"\nbench.liveness done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
