"""Calibrate the per-pose thresholds on turned faces: ``python -m detectors.calibrate --turned-only``.

Part of ``python -m detectors.calibrate`` (its "Turned faces" section; ``--no-turned`` skips it). Where
:mod:`detectors.calibrate` measures frontal photos and their degradations, this measures what
:mod:`detectors.pose` decides: a probe binned by its head pose, compared with the same bin of a
template that has it (a likeness enrolled from photos *and* a live challenge), or with the frontal
rows of one that has not (photos only), each kind with its own match and protect distances.

Probes (faces found by BlazeFace, aligned by dlib's 5-point model, mirror-averaged ResNet embeddings):

- ``short_hamilton_clip.mp4``, every 3rd frame, with who is who checked by eye: Lin-Manuel Miranda
  (far, frames 0-19; close up and turning, 82-210), Alex Lacamoire (at the piano, 0-19; in profile,
  20-47), and from frame 211 the audience: Barack Obama turned ~50-60 degrees with a hand at his chin,
  and three people who are none of the enrolled (Michelle Obama, Marian Robinson, a young man);
- warped views of the test photos: the head turned by the challenge videos' ellipsoid warp
  (``tests/detectors/challenge_video.py``) by 25 and 45 degrees of yaw each way and 25 of pitch.

Templates: each person's photos (unbinned: frontal), and for the people whose challenge video
passes the live check (``verify_challenge`` on a video made from one frontal photo) the photos merged
with that live template (frontal, left, right, up, down views). Pairs are genuine when probe and
template show the same person, impostor otherwise. A track is the mean of 4 consecutive looks in one
bin (the clip) or of 4 random warps of one photo in one bin.

It reports per probe bin: the detection rate (BlazeFace and, for comparison, dlib's HOG), and per
kind of comparison: FNMR and FMR at the match distance and the genuine and impostor pairs that fall
in the uncertain band (match, protect]."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from detectors.enroll import POSE_BINS, Template, enroll, merge_templates
from detectors.faces import Box, DlibBackend, FaceBackend
from detectors.pose import DLIB_POSE_THRESHOLDS, BinThreshold, PoseThresholds, probe_bin
from media.video import iter_frames, load_image

#: The test faces the calibrations read by default (``../shared/testdata/faces`` beside the checkout).
DEFAULT_FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"

_CLIP = "short_hamilton_clip.mp4"
_CHALLENGE_FILE = Path(__file__).resolve().parents[1] / "tests" / "detectors" / "challenge_video.py"
#: Whose photos are enrolled, and the challenge each one's live template comes from (one frontal photo).
ENROLLED: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "obama": (("obama.jpg", "obama2.jpg", "obama3.jpg"), "obama.jpg", ("left", "up", "right", "center", "down")),
    "biden": (("biden.jpg", "biden2.jpg"), "biden2.jpg", ("left", "up", "right", "center", "down")),
    "lacamoire": (("alex-lacamoire.png", "alex_lacamoire2.jpg"), "alex_lacamoire2.jpg",
                  ("left", "up", "right", "center", "down")),
    "miranda": (("lin-manuel-miranda.png",), "lin-manuel-miranda.png", ("left", "right", "down")),
}
#: Head turns applied to each photo: (yaw, pitch) degrees, as the challenge warp applies them.
WARPS: tuple[tuple[float, float], ...] = ((0, 0), (25, 0), (45, 0), (-25, 0), (-45, 0), (0, 25), (0, -25))
#: Who is on screen in the clip, frame ranges checked by eye (inclusive), for the detection rate.
ON_SCREEN: dict[str, tuple[int, int]] = {
    "miranda (far)": (0, 19), "lacamoire (piano)": (0, 19), "lacamoire (profile)": (20, 47),
    "miranda (close)": (82, 210), "obama": (211, 274), "michelle obama": (211, 274),
    "marian robinson": (211, 274), "young man": (211, 274),
}


def clip_label(frame: int, box: Box) -> str | None:
    """Who a face found at ``box`` in ``frame`` of the Hamilton clip is (checked by eye); ``None`` for
    faces in the blurred audience of frames 40-81 and anything else not labelled."""
    x = box.left
    if frame < 20:
        return "miranda (far)" if x > 450 else ("lacamoire (piano)" if x < 120 else None)
    if 20 <= frame <= 47 and box.width > 120:
        return "lacamoire (profile)"
    if 82 <= frame <= 210 and box.width > 70:
        return "miranda (close)"
    if frame >= 211:
        if 285 <= x <= 335 and box.top < 90:
            return "obama"
        if 335 < x <= 400:
            return "michelle obama"
        if 120 <= x <= 180:
            return "marian robinson"
        if x < 80:
            return "young man"
    return None


def identity(label: str) -> str:
    """The enrolled identity a clip label is ("" for people who are none of the enrolled)."""
    for who in ENROLLED:
        if label.startswith(who):
            return who
    return ""


@dataclass(frozen=True, eq=False)
class Look:
    identity: str  # "" for none of the enrolled
    source: str  # clip label or photo name
    pose_bin: str
    yaw: float
    embedding: np.ndarray
    frame: int = -1


def _challenge_module() -> ModuleType:
    if not _CHALLENGE_FILE.is_file():
        raise RuntimeError(f"{_CHALLENGE_FILE} is missing: the turned-face calibration makes its challenge videos "
                           "with it (run from a source checkout)")
    spec = importlib.util.spec_from_file_location("detectors_challenge_video", _CHALLENGE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def templates(backend: FaceBackend, faces_dir: Path, log: Callable[[str], None] = print
              ) -> dict[str, dict[str, Template]]:
    """Per person: ``"photos"`` (enrolled from their photos) and, when the challenge passes, ``"live"``
    (the photos merged with the live challenge's binned views)."""
    from detectors.errors import EnrollmentError, LivenessError
    from detectors.liveness import verify_challenge

    challenge = _challenge_module()
    out: dict[str, dict[str, Template]] = {}
    for who, (photos, source, poses) in ENROLLED.items():
        try:
            photo_t = enroll([load_image(faces_dir / n) for n in photos], backend)
        except EnrollmentError as e:  # Lacamoire's two photos are 0.52 apart: the first alone
            log(f"  {who}: {', '.join(photos)} cannot be enrolled together ({e.reason}): {photos[0]} alone")
            photo_t = enroll([load_image(faces_dir / photos[0])], backend)
        out[who] = {"photos": photo_t}
        frames, fps = challenge.decode(challenge.challenge_video(load_image(faces_dir / source), poses))
        try:
            live = verify_challenge(frames, fps, poses, backend).template()
        except LivenessError as e:
            log(f"  {who}: the challenge video from {source} fails the live check ({e.reason}): photos only")
            continue
        out[who]["live"] = merge_templates(photo_t, live)
        log(f"  {who}: live template from {source}: {live!r}")
    return out


def clip_looks(backend: DlibBackend, faces_dir: Path, every: int = 3
               ) -> tuple[list[Look], dict[str, tuple[int, int, int]]]:
    """Looks at every labelled face in every ``every``-th frame, and per label (frames sampled while on
    screen, found by BlazeFace, found by HOG)."""
    hog = DlibBackend(mirror=True)
    looks: list[Look] = []
    rate: dict[str, list[int]] = {label: [0, 0, 0] for label in ON_SCREEN}
    for index, frame in iter_frames(faces_dir / _CLIP, every=every):
        found = {}
        for d in backend.detect(frame, min_face_px=30):
            label = clip_label(index, d.box)
            if label is not None and label not in found:
                found[label] = d
        by_hog = {clip_label(index, d.box) for d in hog.detect(frame, min_face_px=30)}
        for label, (first, last) in ON_SCREEN.items():
            if first <= index <= last:
                rate[label][0] += 1
                rate[label][1] += label in found
                rate[label][2] += label in by_hog
        if not found:
            continue
        dets = list(found.values())
        emb = backend.embed(frame, dets)
        for (label, d), e in zip(found.items(), emb, strict=True):
            looks.append(Look(identity(label), label, probe_bin(d.yaw, d.pitch), float(d.yaw or 0.0), e, index))
    return looks, {k: (v[0], v[1], v[2]) for k, v in rate.items()}


def warp_looks(backend: DlibBackend, faces_dir: Path) -> tuple[list[Look], dict[str, tuple[int, int, int]]]:
    """Looks at each enrolled person's photos turned by :data:`WARPS`, and per warp (tries, found by
    BlazeFace, found by HOG)."""
    challenge = _challenge_module()
    hog = DlibBackend(mirror=True)
    looks: list[Look] = []
    rate: dict[str, list[int]] = {}
    for who, (photos, _, _) in ENROLLED.items():
        for name in photos:
            crop, centre, face = challenge.face_crop(load_image(faces_dir / name), 320)
            for yaw, pitch in WARPS:
                img = challenge.head_turn(crop, centre, face, yaw, pitch)
                key = f"yaw {yaw:+.0f}, pitch {pitch:+.0f}"
                r = rate.setdefault(key, [0, 0, 0])
                r[0] += 1
                dets = [d for d in backend.detect(img, min_face_px=60) if d.box.size >= 60]
                r[2] += bool(hog.detect(img, min_face_px=60))
                if not dets:
                    continue
                r[1] += 1
                d = dets[0]
                looks.append(Look(who, name, probe_bin(d.yaw, d.pitch), float(d.yaw or 0.0),
                                  backend.embed(img, [d])[0]))
    return looks, {k: (v[0], v[1], v[2]) for k, v in rate.items()}


def tracks(looks: Sequence[Look], per_track: int, rng: np.random.Generator) -> list[Look]:
    """Means of ``per_track`` looks of one source in one bin: consecutive ones in the clip, random
    ones (12 draws) for a photo's warps."""
    groups: dict[tuple[str, str], list[Look]] = {}
    for look in looks:
        groups.setdefault((look.source, look.pose_bin), []).append(look)
    out = []
    for (source, b), group in groups.items():
        if len(group) < per_track:
            continue
        if group[0].frame >= 0:
            windows = [group[i:i + per_track] for i in range(0, len(group) - per_track + 1, 2)]
        else:
            windows = [[group[j] for j in rng.choice(len(group), per_track, replace=False)] for _ in range(12)]
        for w in windows:
            out.append(Look(w[0].identity, source, b, float(np.mean([x.yaw for x in w])),
                            np.mean([x.embedding for x in w], axis=0), w[0].frame))
    return out


@dataclass(frozen=True)
class Pair:
    genuine: bool
    kind: str  # "frontal", "yaw_same", "yaw_frontal", "pitch_same", "pitch_frontal"
    probe_bin: str
    distance: float
    what: str


def _rows(t: Template, b: str) -> tuple[np.ndarray, bool]:
    """The rows a probe in bin ``b`` is compared with, and whether they are of its own bin."""
    bins = t.bins or ("frontal",) * len(t.embeddings)
    own = [i for i, x in enumerate(bins) if x == b]
    if own:
        return t.embeddings[own], b != "frontal"
    front = [i for i, x in enumerate(bins) if x == "frontal"]
    return t.embeddings[front or list(range(len(bins)))], False


def pairs(probes: Sequence[Look], enrolled: dict[str, dict[str, Template]], which: str) -> list[Pair]:
    """Each probe against each person's ``which`` template (``photos`` or ``live``, where there is one)."""
    out = []
    for p in probes:
        for who, ts in enrolled.items():
            t = ts.get(which)
            if t is None:
                continue
            rows, same = _rows(t, p.pose_bin)
            d = float(np.min(np.linalg.norm(rows - p.embedding, axis=1)))
            axis = "yaw" if p.pose_bin in ("left", "right") else "pitch"
            kind = "frontal" if p.pose_bin == "frontal" else f"{axis}_{'same' if same else 'frontal'}"
            out.append(Pair(p.identity == who, kind, p.pose_bin, d, f"{p.source} ({p.pose_bin}) vs {who}/{which}"))
    return out


def _share(values: Sequence[float], above: float, upto: float = float("inf")) -> str:
    """The share of ``values`` in ``(above, upto]``."""
    if not values:
        return "n/a"
    hits = sum(1 for v in values if above < v <= upto)
    return f"{100.0 * hits / len(values):.1f} % ({hits}/{len(values)})"


def table(title: str, found: Sequence[Pair], poses: PoseThresholds) -> str:
    """Per kind of comparison: pairs, FNMR and FMR at the match distance, pairs in the band."""
    lines = [f"#### {title}", "",
             "| comparison | match / protect | genuine | FNMR (> match) | genuine in band | genuine > protect "
             "| impostor | FMR (<= match) | impostor in band | closest impostor | furthest genuine |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("frontal", "yaw_same", "yaw_frontal", "pitch_same", "pitch_frontal"):
        t: BinThreshold = getattr(poses, kind)
        match, protect = t.match, t.protect
        gen = [p.distance for p in found if p.kind == kind and p.genuine]
        imp = [p for p in found if p.kind == kind and not p.genuine]
        if not gen and not imp:
            continue
        imp_d = [p.distance for p in imp]
        closest = min(imp, key=lambda p: p.distance, default=None)
        furthest = f"{max(gen):.3f}" if gen else "-"
        lines.append(
            f"| {kind} | {match:.2f} / {protect:.2f} | {len(gen)} | {_share(gen, match)} "
            f"| {_share(gen, match, protect)} | {_share(gen, protect)} "
            f"| {len(imp)} | {_share(imp_d, -1.0, match)} | {_share(imp_d, match, protect)} "
            f"| {f'{closest.distance:.3f} ({closest.what})' if closest else '-'} | {furthest} |")
    return "\n".join(lines) + "\n"


def best_pairs(probes: Sequence[Look], enrolled: dict[str, dict[str, Template]]) -> list[Pair]:
    """Each probe against each person's template as the service holds it: photos merged with the live
    challenge where it passed, else photos alone."""
    live = {who: {"best": ts.get("live", ts["photos"])} for who, ts in enrolled.items()}
    return pairs(probes, live, "best")


def bin_table(title: str, found: Sequence[Pair], poses: PoseThresholds,
              detected: dict[str, tuple[int, int]] | None = None) -> str:
    """Per probe bin: detection rate (when given: tried, found), FNMR and FMR at the match distance of the
    comparison each pair made, and the share of genuine and impostor pairs sent to the uncertain band."""
    lines = [f"#### {title}", "", "| probe bin | detected | genuine | FNMR | genuine to band | impostor | FMR "
             "| impostor to band |", "|---|---|---|---|---|---|---|---|"]
    for b in POSE_BINS:
        mine = [p for p in found if p.probe_bin == b]
        gen, imp = [p for p in mine if p.genuine], [p for p in mine if not p.genuine]

        def limits(p: Pair) -> BinThreshold:
            return poses.get(p.probe_bin, same_bin=p.kind.endswith("_same"))

        def share(ps: Sequence[Pair], test: Callable[[Pair], bool]) -> str:
            hits = sum(1 for p in ps if test(p))
            return f"{100.0 * hits / len(ps):.1f} % ({hits}/{len(ps)})" if ps else "n/a"

        tried, hit = (detected or {}).get(b, (0, 0))
        rate = f"{100.0 * hit / tried:.0f} % ({hit}/{tried})" if tried else "-"
        lines.append(
            f"| {b} | {rate} | {len(gen)} | {share(gen, lambda p: p.distance > limits(p).match)} "
            f"| {share(gen, lambda p: limits(p).match < p.distance <= limits(p).protect)} | {len(imp)} "
            f"| {share(imp, lambda p: p.distance <= limits(p).match)} "
            f"| {share(imp, lambda p: limits(p).match < p.distance <= limits(p).protect)} |")
    return "\n".join(lines) + "\n"


def detected_by_bin(clip_rate: dict[str, tuple[int, int, int]], warp_rate: dict[str, tuple[int, int, int]]
                    ) -> dict[str, tuple[int, int]]:
    """BlazeFace's detection rate per intended pose bin: each warp by its angles, each person in the clip
    by how they face (checked by eye: the audience and Lacamoire in profile turned right; Miranda and
    Lacamoire at the piano mostly frontal)."""
    facing = {"miranda (far)": "frontal", "lacamoire (piano)": "frontal", "lacamoire (profile)": "right",
              "miranda (close)": "frontal", "obama": "right", "michelle obama": "right",
              "marian robinson": "right", "young man": "frontal"}
    out: dict[str, list[int]] = {}
    for label, (n, found, _) in clip_rate.items():
        r = out.setdefault(facing[label], [0, 0])
        r[0], r[1] = r[0] + n, r[1] + found
    for key, (n, found, _) in warp_rate.items():
        yaw, pitch = (float(part.split()[1]) for part in key.split(", "))
        r = out.setdefault(probe_bin(yaw, pitch), [0, 0])
        r[0], r[1] = r[0] + n, r[1] + found
    return {k: (v[0], v[1]) for k, v in out.items()}


def rates(title: str, counts: dict[str, tuple[int, int, int]]) -> str:
    lines = [f"#### {title}", "", "| who / warp | sampled | BlazeFace | dlib HOG |", "|---|---|---|---|"]
    for key, (n, bf, hog) in counts.items():
        if n:
            lines.append(f"| {key} | {n} | {100.0 * bf / n:.0f} % | {100.0 * hog / n:.0f} % |")
    return "\n".join(lines) + "\n"


def by_bin(looks: Sequence[Look]) -> str:
    """How the looks spread over the probe bins, with their yaw range."""
    lines = ["| probe bin | looks | yaw (BlazeFace, degrees) |", "|---|---|---|"]
    for b in POSE_BINS:
        ys = [x.yaw for x in looks if x.pose_bin == b]
        if ys:
            lines.append(f"| {b} | {len(ys)} | {min(ys):.0f} to {max(ys):.0f} |")
    return "\n".join(lines) + "\n"


def run(faces_dir: Path, seed: int = 0, poses: PoseThresholds = DLIB_POSE_THRESHOLDS,
        log: Callable[[str], Any] = print) -> None:
    """Print the turned-face section of the calibration."""
    from detectors.blazeface import BlazeFaceDetector

    backend = DlibBackend(detector=BlazeFaceDetector())
    log("### Turned faces (BlazeFace detections, dlib embeddings)\n")
    enrolled = templates(backend, faces_dir, log)
    clip, clip_rate = clip_looks(backend, faces_dir)
    warped, warp_rate = warp_looks(backend, faces_dir)
    log("")
    log(rates(f"Detection rate: {_CLIP}, every 3rd frame (faces >= 30 px)", clip_rate))
    log(rates("Detection rate: warped photos (faces >= 60 px)", warp_rate))
    log(by_bin(clip + warped))
    rng = np.random.default_rng(seed)
    for which in ("photos", "live"):
        log(table(f"Per look, templates from {which}", pairs(clip + warped, enrolled, which), poses))
        log(table(f"Per track (4 looks), templates from {which}",
                  pairs(tracks(clip, 4, rng) + tracks(warped, 4, rng), enrolled, which), poses))
    detected = detected_by_bin(clip_rate, warp_rate)
    log(bin_table("Per pose bin, per look (templates as held: photos + live where it passed)",
                  best_pairs(clip + warped, enrolled), poses, detected))
    log(bin_table("Per pose bin, per track of 4 looks (templates as held)",
                  best_pairs(tracks(clip, 4, rng) + tracks(warped, 4, rng), enrolled), poses, detected))
    log(f"#### scan_video on {_CLIP}: Obama and Miranda enrolled (photos + live challenge)\n")
    log(clip_scan(backend, faces_dir, enrolled, poses))


def clip_scan(backend: DlibBackend, faces_dir: Path, enrolled: dict[str, dict[str, Template]],
              poses: PoseThresholds) -> str:
    """End to end: :func:`detectors.scan.scan_video` on the clip with Obama and Miranda enrolled from
    their photos and live challenges (where those pass); every track, its pose bin and what it decided."""
    from detectors.index import LikenessIndex
    from detectors.scan import scan_video

    index = LikenessIndex(dim=backend.dim)
    for who in ("obama", "miranda"):
        ts = enrolled[who]
        index.add(who, ts.get("live", ts["photos"]))
    result = scan_video(faces_dir / _CLIP, index, backend, pose_thresholds=poses)
    decided: dict[int, list[str]] = {}
    for m in result.matches:
        decided.setdefault(m.track_id, []).append(f"**{m.likeness_id}** {m.distance:.3f} "
                                                   f"({m.pose_bin} vs {m.compared})")
    for m in result.uncertain:
        decided.setdefault(m.track_id, []).append(f"band: {m.likeness_id} {m.distance:.3f} "
                                                   f"({m.pose_bin} vs {m.compared})")
    lines = [f"{result.frames_scanned} frames detected, {result.embeddings} looks embedded, detector "
             f"{result.detector}", "", "| track (frames; sightings, looks) | pose | nearest (any bin) | decision |",
             "|---|---|---|---|"]
    for t in result.tracks:
        near = f"{t.best_likeness} {t.distance:.3f}" if t.distance is not None else "-"
        lines.append(f"| {t.first_frame}-{t.last_frame} ({t.frames_seen}, {t.looks}) | {t.pose_bin} | {near} "
                     f"| {'; '.join(decided.get(t.track_id, [])) or 'nobody'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    faces = Path(argv[0]) if argv else DEFAULT_FACES
    run(faces)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
