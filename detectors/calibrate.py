"""Calibrate the face match threshold on the real test media: ``python -m detectors.calibrate``.

Builds genuine (same person) and impostor (different people) pairs from the photos in the test
``faces`` folder and prints false-match and false-non-match rates at several thresholds, per face and
per track (the mean embedding of several looks at one face, which is what :func:`detectors.scan.scan_frames`
compares). The result and the reasoning behind ``MATCH_THRESHOLD`` are in ``docs/face-matching.md``.

Probes are each source photo's face, normalised to 200 px and then degraded the way generated video
degrades faces: downscaled to 48-160 px and back, real H.264 at crf 28, 32 and 35 (alone and after
downscaling), JPEG, blur, noise, darker and brighter light, a small rotation, a mirror image, and a
head turn simulated by a perspective warp (the photos hold no true profiles). Templates are the
undegraded photos, one per source photo. ``short_hamilton_clip.mp4`` adds real video faces:
Lin-Manuel Miranda at two sizes, turning his head (genuine against his photo) and an audience member
who is none of the enrolled people.

Turned faces (BlazeFace detections, pose bins, the thresholds of :mod:`detectors.pose`) are measured
by :mod:`detectors.calibrate_pose`, printed after the rest (``--no-turned`` skips them, ``--turned-only``
prints only them).

Other backends: ``--backend insightface --model-dir DIR`` measures the operator's ArcFace model the
same way (its distances lie in [0, 2]); pick a threshold from the tables and write it with
``--write-calibration THRESHOLD`` into ``DIR/consentgate.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.backends import backend_from_settings
from detectors.calibrate_pose import DEFAULT_FACES
from detectors.calibrate_pose import run as run_turned
from detectors.faces import Box, Detection, Face, FaceBackend, crop_face
from media.video import Clip, iter_frames, load_image, read_video, write_video

_THRESHOLDS = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
_CANON = 200  # face side in the canonical probe image
_MARGIN = 0.6

# One row per distinct source photo. obama-240p.jpg and obama_partial_face.jpg are copies of the
# obama.jpg portrait, and two_people.jpg is cut from obama3.jpg and biden.jpg: they add no new pairs.
_PHOTOS: tuple[tuple[str, str], ...] = (
    ("obama.jpg", "obama"),
    ("obama2.jpg", "obama"),
    ("obama3.jpg", "obama"),
    ("biden.jpg", "biden"),
    ("biden2.jpg", "biden"),
    ("alex-lacamoire.png", "lacamoire"),
    ("alex_lacamoire2.jpg", "lacamoire"),
    ("lin-manuel-miranda.png", "miranda"),
)
_CLIP = "short_hamilton_clip.mp4"


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return np.ascontiguousarray(decoded[:, :, ::-1])


def _h264(rgb: np.ndarray, crf: int) -> np.ndarray:
    """The middle frame of a short, slowly drifting clip of ``rgb`` encoded with libx264 at ``crf``."""
    import tempfile

    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    frames = np.stack([np.roll(rgb[:h, :w], k, axis=1) for k in range(-3, 4)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.mp4"
        write_video(path, Clip(frames=frames, fps=24.0), crf=crf)
        return np.ascontiguousarray(read_video(path, with_audio=False).frames[3])


def _turn(rgb: np.ndarray, amount: float) -> np.ndarray:
    """A head turn simulated by a perspective warp: one side of the face recedes by ``amount``."""
    import cv2

    h, w = rgb.shape[:2]
    d = amount * h / 2
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = np.array([[0, 0], [w * (1 - amount / 2), d], [w * (1 - amount / 2), h - d], [0, h]], dtype=np.float32)
    return cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE)


def _rescale(rgb: np.ndarray, face_px: int) -> np.ndarray:
    """Downscale so the face is ``face_px`` wide, then back up to the original size."""
    import cv2

    h, w = rgb.shape[:2]
    s = face_px / _CANON
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.asarray(cv2.GaussianBlur(rgb, (0, 0), sigma))


def _gain(rgb: np.ndarray, gain: float) -> np.ndarray:
    return np.asarray(np.clip(rgb.astype(np.float32) * gain, 0, 255), dtype=np.uint8)


def _noise(rgb: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def _rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)


AUGMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda x: x,
    "mirror": lambda x: np.ascontiguousarray(x[:, ::-1]),
    "down48": lambda x: _rescale(x, 48),
    "down64": lambda x: _rescale(x, 64),
    "down96": lambda x: _rescale(x, 96),
    "down128": lambda x: _rescale(x, 128),
    "down160": lambda x: _rescale(x, 160),
    "h264crf28": lambda x: _h264(x, 28),
    "h264crf32": lambda x: _h264(x, 32),
    "h264crf35": lambda x: _h264(x, 35),
    "down48+h264crf28": lambda x: _h264(_rescale(x, 48), 28),
    "down64+h264crf32": lambda x: _h264(_rescale(x, 64), 32),
    "down96+h264crf35": lambda x: _h264(_rescale(x, 96), 35),
    "down160+h264crf35": lambda x: _h264(_rescale(x, 160), 35),
    "jpeg30": lambda x: _jpeg(x, 30),
    "blur1.5": lambda x: _blur(x, 1.5),
    "blur3": lambda x: _blur(x, 3.0),
    "dark0.5": lambda x: _gain(x, 0.5),
    "bright1.5": lambda x: _gain(x, 1.5),
    "noise8": lambda x: _noise(x, 8.0),
    "rotate10": lambda x: _rotate(x, 10.0),
    "turn0.3": lambda x: _turn(x, 0.3),
    "turn0.5+h264crf32": lambda x: _h264(_turn(x, 0.5), 32),
}


@dataclass(frozen=True, eq=False)
class Probe:
    identity: str  # "" for a person who is none of the enrolled
    source: str  # the photo (or clip segment) it comes from
    kind: str  # augmentation name or "video"
    embedding: np.ndarray
    views: np.ndarray | None = None  # (2, dim): the plain and the mirrored chip alone, for mirroring backends


def _probe(backend: FaceBackend, img: np.ndarray, face: Face, identity: str, source: str, kind: str) -> Probe:
    views = None
    if getattr(backend, "mirror", False):  # the scanner alternates single views between a track's looks
        det = Detection(face.box)
        views = np.asarray(backend.embed(img, [det, det], views=["plain", "mirror"]))  # type: ignore[attr-defined]
    return Probe(identity, source, kind, face.embedding, views)


def _look(probe: Probe, i: int) -> np.ndarray:
    """What the scanner's ``i``-th look at a track encodes: the plain and the mirrored chip in turn."""
    if probe.views is None:
        return probe.embedding
    return probe.views[i % 2]


def _best_match(faces: list[Face], expected: Box) -> Face | None:
    best = max(faces, key=lambda f: f.box.iou(expected), default=None)
    return best if best is not None and best.box.iou(expected) >= 0.3 else None


def _canonical(rgb: np.ndarray, face: Face) -> tuple[np.ndarray, Box]:
    """The face with context, resized so the face is ``_CANON`` px; and where the face now is."""
    import cv2

    crop = crop_face(rgb, face.box, margin=_MARGIN)
    scale = _CANON / max(face.box.width, face.box.height)
    side = round(crop.shape[1] * scale), round(crop.shape[0] * scale)
    canon = cv2.resize(crop, side, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    cx, cy = canon.shape[1] / 2, canon.shape[0] / 2
    half = _CANON / 2
    return canon, Box(top=round(cy - half), right=round(cx + half), bottom=round(cy + half), left=round(cx - half))


def photo_probes(backend: FaceBackend, faces_dir: Path) -> tuple[dict[str, tuple[str, np.ndarray]], list[Probe], int]:
    """Templates (source -> (identity, embedding)), degraded probes, and how many probes went undetected."""
    templates: dict[str, tuple[str, np.ndarray]] = {}
    probes: list[Probe] = []
    missed = 0
    for name, identity in _PHOTOS:
        rgb = load_image(faces_dir / name)
        faces = backend.faces(rgb)
        if not faces:
            raise RuntimeError(f"no face found in {name}")
        face = faces[0]
        templates[name] = (identity, face.embedding)
        canon, where = _canonical(rgb, face)
        for kind, augment in AUGMENTATIONS.items():
            img = augment(canon)
            if kind == "mirror":
                where_now = Box(top=where.top, right=img.shape[1] - where.left, bottom=where.bottom,
                                left=img.shape[1] - where.right)
            else:
                where_now = where
            found = _best_match(backend.faces(img), where_now) or _best_match(backend.faces(img, upsample=1), where_now)
            if found is None:
                missed += 1
                continue
            probes.append(_probe(backend, img, found, identity, name, kind))
    return templates, probes, missed


def _clip_label(frame: int, box: Box) -> str | None:
    """Who is who in short_hamilton_clip.mp4 (checked by eye): Lin-Manuel Miranda on stage, far away in
    frames 0-19 and close up in frames 80-211; then an audience member at the left edge."""
    if frame < 20 and box.left > 450:
        return "miranda"
    if 80 <= frame <= 211 and box.width > 70:
        return "miranda"
    if frame >= 212 and box.left < 150 and box.top < 200:
        return ""
    return None


def clip_probes(backend: FaceBackend, faces_dir: Path, every: int = 4) -> list[Probe]:
    probes = []
    for index, frame in iter_frames(faces_dir / _CLIP, every=every):
        for face in backend.faces(frame, upsample=1):
            who = _clip_label(index, face.box)
            if who is None:
                continue
            segment = "clip-far" if who and index < 20 else ("clip-close" if who else "clip-audience")
            probes.append(_probe(backend, frame, face, who, segment, "video"))
    return probes


def _tracks(probes: list[Probe], per_track: int, rng: np.random.Generator) -> list[Probe]:
    """Mean embeddings of ``per_track`` looks at one face: random degradations of one photo, or
    consecutive samples of one person in the clip; each look encoded as the scanner would (``_look``)."""
    out = []
    by_source: dict[str, list[Probe]] = {}
    for p in probes:
        by_source.setdefault(p.source, []).append(p)
    for source, group in by_source.items():
        if group[0].kind == "video":
            windows: Iterable[list[Probe]] = (group[i:i + per_track] for i in range(0, len(group) - per_track + 1, 2))
        else:
            windows = ([group[j] for j in rng.choice(len(group), per_track, replace=False)] for _ in range(12))
        for window in windows:
            mean = np.mean([_look(p, i) for i, p in enumerate(window)], axis=0)
            out.append(Probe(window[0].identity, source, "track", mean.astype(np.float32)))
    return out


@dataclass(frozen=True)
class Pairs:
    same_photo: np.ndarray  # genuine: a degraded photo against its own original
    cross_photo: np.ndarray  # genuine: against another photo (or the clip against the photo)
    impostor: np.ndarray
    impostor_kinds: tuple[str, ...]


def make_pairs(templates: dict[str, tuple[str, np.ndarray]], probes: list[Probe]) -> Pairs:
    same: list[float] = []
    cross: list[float] = []
    imp: list[float] = []
    imp_kinds: list[str] = []
    for p in probes:
        for source, (identity, emb) in templates.items():
            d = float(np.linalg.norm(p.embedding - emb))
            if p.identity == identity:
                (same if p.source == source else cross).append(d)
            else:
                imp.append(d)
                imp_kinds.append(f"{p.source}/{p.kind} vs {source}")
    return Pairs(np.array(same), np.array(cross), np.array(imp), tuple(imp_kinds))


def _rate(values: np.ndarray, t: float, above: bool) -> str:
    if values.size == 0:
        return "n/a"
    hits = int(np.sum(values > t)) if above else int(np.sum(values <= t))
    return f"{100.0 * hits / values.size:.1f} % ({hits}/{values.size})"


def table(title: str, pairs: Pairs, thresholds: Iterable[float]) -> str:
    lines = [
        f"#### {title}",
        "",
        "| threshold | FMR (impostor <= t) | FNMR same photo | FNMR other photo / video |",
        "|---|---|---|---|",
    ]
    for t in thresholds:
        lines.append(f"| {t:.2f} | {_rate(pairs.impostor, t, False)} | {_rate(pairs.same_photo, t, True)} "
                     f"| {_rate(pairs.cross_photo, t, True)} |")
    worst = int(np.argmin(pairs.impostor)) if pairs.impostor.size else -1
    lines += [
        "",
        f"closest impostor {pairs.impostor.min():.3f} ({pairs.impostor_kinds[worst]}); "
        f"furthest genuine: same photo {pairs.same_photo.max():.3f}, other photo {pairs.cross_photo.max():.3f}",
        "",
    ]
    return "\n".join(lines)


def clip_tracks(backend: FaceBackend, faces_dir: Path, templates: dict[str, tuple[str, np.ndarray]]) -> str:
    """End to end: :func:`detectors.scan.scan_video` on the Hamilton clip with every photo enrolled as
    its own likeness; each track's mean-embedding distance to each photo."""
    from detectors.enroll import Template
    from detectors.index import LikenessIndex
    from detectors.scan import scan_video

    index = LikenessIndex(dim=backend.dim)
    blank = np.zeros((1, 1, 3), np.uint8)
    for source, (_, emb) in templates.items():
        index.add(source, Template(emb[None, :], backend.name, blank))
    result = scan_video(faces_dir / _CLIP, index, backend, threshold=1e9)  # report every distance
    dist: dict[int, dict[str, float]] = {}
    for m in result.matches:
        dist.setdefault(m.track_id, {})[m.likeness_id] = m.distance
    lines = ["| track (frames; sightings, looks) | who | nearest genuine photo | nearest impostor photo |",
             "|---|---|---|---|"]
    for t in result.tracks:
        who = "miranda" if t.first_frame < 20 or 80 <= t.first_frame < 211 else "audience member"
        d = dist.get(t.track_id, {})
        genuine = {s: v for s, v in d.items() if templates[s][0] == who}
        impostor = {s: v for s, v in d.items() if templates[s][0] != who}
        g = min(genuine.items(), key=lambda kv: kv[1], default=None)
        i = min(impostor.items(), key=lambda kv: kv[1])
        lines.append(f"| {t.first_frame}-{t.last_frame} ({t.frames_seen}, {t.looks}) | {who} "
                     f"| {f'{g[1]:.3f} ({g[0]})' if g else '-'} | {i[1]:.3f} ({i[0]}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detectors.calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--faces-dir", type=Path, default=DEFAULT_FACES, help="the test faces folder")
    parser.add_argument("--no-video", action="store_true", help="skip the Hamilton clip (faster)")
    parser.add_argument("--no-turned", action="store_true",
                        help="skip the turned-face section (BlazeFace, pose bins; needs `make models`)")
    parser.add_argument("--turned-only", action="store_true", help="only the turned-face section")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, action="append", help="extra threshold to report")
    parser.add_argument("--backend", default="dlib", choices=("dlib", "insightface"))
    parser.add_argument("--model-dir", type=Path, help="the insightface model directory")
    parser.add_argument("--write-calibration", type=float, metavar="THRESHOLD",
                        help="write this threshold into MODEL_DIR/consentgate.json (insightface)")
    args = parser.parse_args(argv)
    from detectors.matching import threshold_for

    if args.turned_only:
        run_turned(args.faces_dir, args.seed)
        return 0
    backend = backend_from_settings(args.backend, args.model_dir)
    current = threshold_for(backend)
    grid = _THRESHOLDS if args.backend == "dlib" else tuple(round(0.8 + 0.05 * i, 2) for i in range(9))
    thresholds = sorted(set(grid) | {current} | set(args.threshold or ()))
    started = time.perf_counter()
    templates, probes, missed = photo_probes(backend, args.faces_dir)
    if not args.no_video:
        probes += clip_probes(backend, args.faces_dir)
    tracks = _tracks(probes, per_track=4, rng=np.random.default_rng(args.seed))
    print(f"backend {backend.name}; {len(templates)} source photos, {len(probes)} face probes "
          f"({missed} degraded photos where no face was detected), {len(tracks)} simulated tracks\n")
    print(table("Per face (one look)", make_pairs(templates, probes), thresholds))
    print(table("Per track (mean embedding of 4 looks)", make_pairs(templates, tracks), thresholds))

    per_kind: dict[str, list[float]] = {}
    for p in probes:
        for identity, emb in templates.values():
            if identity != p.identity:
                per_kind.setdefault(p.kind, []).append(float(np.linalg.norm(p.embedding - emb)))
    print("closest impostor by degradation: " + ", ".join(f"{k} {min(v):.2f}" for k, v in per_kind.items()))
    if not args.no_video:
        print(f"\n#### scan_video on {_CLIP} (mean embedding per track)\n")
        print(clip_tracks(backend, args.faces_dir, templates))
    if args.backend == "dlib" and not args.no_turned:
        print()
        run_turned(args.faces_dir, args.seed)
    print(f"\n{backend.name}: match threshold in use {current}; done in {time.perf_counter() - started:.0f} s")
    if args.write_calibration is not None:
        if args.model_dir is None:
            parser.error("--write-calibration needs --model-dir")
        import json

        target = args.model_dir / "consentgate.json"
        target.write_text(json.dumps({"backend": backend.name, "match_threshold": args.write_calibration}) + "\n")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
