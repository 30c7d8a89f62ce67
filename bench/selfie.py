"""Selfie-video enrollment: how far one person's sampled faces wander, and how far a switch to someone else goes:
``python -m bench selfie`` (~30 min on 2 shared cores; ``--quick`` ~8 min; ``--cache DIR`` keeps the embeddings
between runs). Prints the tables of docs/face-matching.md, section "Selfie videos: one person or two".

What :func:`detectors.enroll.enroll_video` judges is a sequence of sampled faces: dlib embeddings, mirror averaged,
taken exactly as enrollment takes them (:func:`detectors.enroll._candidates` on each frame). This measures such
sequences on

- **one person**: the real clip (``short_hamilton_clip.mp4`` frames 84-210: Lin-Manuel Miranda alone, close up,
  singing and turning his head, 4.2 s at 29.97 fps, 640x360) and a head-turn video made from each of 6 test photos
  (``tests/detectors/challenge_video.py``: left, right, up, turns of 40 / 35 degrees, 4 s, 360x360 padded to
  640x360);
- **a switch to another person**: those videos spliced, every ordered pair of different people: a cut at the
  middle, the other person only in the last second or the first half second, an insert of 4, 8, 15 or 30 frames
  (0.13-1 s) in the middle, the other person in every third frame or 8 frames in every 16, and (pixels mixed from
  the decoded frames, one video per person) a 0.6 s cross-fade at the middle and a 2 s morph;

each re-encoded as uploads arrive: the source frames; H.264 MP4 at crf 23 and 35; VP8 WebM at 2 Mbit/s (what
Chromium's MediaRecorder writes: 1.6-1.9 Mbit/s measured), 500 and 250 kbit/s; VP9 WebM at 500 and 250 kbit/s
(libvpx in its realtime mode, as a browser's live encoder runs); and ``recorder``, the WebM
``tests/media_tools.encode_timed`` makes (VP8 stamped in milliseconds under a header rate of 1000 fps, so libvpx
spends ~2 kbit a frame: ~140 kbit/s, worse than any browser; the reported refusal was made so). Every 2nd frame is
embedded; sequences take every 2nd to 16th frame (0.07-0.53 s at 30 fps: ``enroll_video`` takes 24 samples over
the clip, here every 5th frame; the API 4 a second, every 7th-8th; a browser that drops frames spaces them
further), from every starting frame, at most 40 faces, at least 5 (fewer are ``too_short``). A switch counts
when its faces show both people.

Each sequence is judged by enrollment's rule (:func:`detectors.enroll._video_faces`, the one enrollment applies)
and by the rule it replaced (two successive faces within 0.55, every face within 0.50 of the mean of all): how many
one-person sequences each refuses (FNMR), and how many switches each lets through (FMR: for the new rule, a
switch accepted with a face of the other person that may become a template row).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np

from bench.liveness import helper  # tests/detectors/challenge_video.py, loaded by path
from bench.media_clips import load
from detectors.enroll import MIN_VIDEO_FRAMES as MIN_FACES  # fewer usable faces are "too_short" before anything else
from detectors.matching import MATCH_THRESHOLD as THRESHOLD  # dlib's, what enroll_video judges with

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
RATE = Fraction(30000, 1001)
HAMILTON = range(84, 211)  # Lin-Manuel Miranda alone, close up, turning his head
PHOTOS = {"obama.jpg": "obama", "biden2.jpg": "biden", "alex-lacamoire.png": "lacamoire",
          "obama2.jpg": "obama", "alex_lacamoire2.jpg": "lacamoire", "lin-manuel-miranda.png": "miranda"}
PRIMARY = ("miranda (real)", "obama.jpg", "biden2.jpg", "alex-lacamoire.png")  # one clip per person: the mixes
EVERY = 2  # frames embedded: every 2nd
SPACINGS = (2, 4, 6, 8, 12, 16)
MAX_SAMPLES = 40  # as the API takes (governance.uploads.ENROLL_FRAMES)
OLD_STEP, OLD_MEAN = 0.55, 0.50  # the replaced rule (dlib threshold 0.50 x 1.1; the threshold)


# -- the clips ------------------------------------------------------------------------------------------------
def _real_clip() -> np.ndarray:
    from media.video import iter_frames

    return np.stack([f for i, f in iter_frames(FACES / "short_hamilton_clip.mp4", max_frames=HAMILTON.stop)
                     if i >= HAMILTON.start])


def clips(quick: bool) -> dict[str, tuple[str, np.ndarray]]:
    """``{name: (person, (T, 360, 640, 3) frames)}`` at 29.97 fps."""
    import cv2

    from media.video import load_image

    out: dict[str, tuple[str, np.ndarray]] = {"miranda (real)": ("miranda", _real_clip())}
    cv = helper()
    names = list(PHOTOS)[:2] if quick else list(PHOTOS)
    for seed, name in enumerate(names):
        square = cv.challenge_frames(load_image(FACES / name), ("left", "right", "up"), size=360,
                                     fps=float(RATE), seed=seed)
        wide = np.stack([cv2.copyMakeBorder(f, 0, 0, 140, 140, cv2.BORDER_REPLICATE) for f in square])
        out[name] = (PHOTOS[name], wide)
    return out


# -- the encodings --------------------------------------------------------------------------------------------
def _encode(frames: np.ndarray, codec: str, fmt: str, *, bit_rate: int | None = None,
            options: dict[str, str] | None = None) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        if options:
            stream.options = options
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode())
    return buf.getvalue()


def _recorder(frames: np.ndarray) -> bytes:
    from tests.media_tools import encode_timed

    return encode_timed(frames, [round(k * 1000 / float(RATE)) for k in range(len(frames))])


_RT_VP8 = {"deadline": "realtime", "cpu-used": "6"}
_RT_VP9 = {"deadline": "realtime", "cpu-used": "7"}
ENCODINGS: dict[str, Callable[[np.ndarray], bytes] | None] = {
    "source": None,
    "h264 crf 23": lambda f: _encode(f, "libx264", "mp4", options={"crf": "23"}),
    "h264 crf 35": lambda f: _encode(f, "libx264", "mp4", options={"crf": "35"}),
    "vp8 2M": lambda f: _encode(f, "libvpx", "webm", bit_rate=2_000_000, options=_RT_VP8),
    "vp8 500k": lambda f: _encode(f, "libvpx", "webm", bit_rate=500_000, options=_RT_VP8),
    "vp8 250k": lambda f: _encode(f, "libvpx", "webm", bit_rate=250_000, options=_RT_VP8),
    "vp9 500k": lambda f: _encode(f, "libvpx-vp9", "webm", bit_rate=500_000, options=_RT_VP9),
    "vp9 250k": lambda f: _encode(f, "libvpx-vp9", "webm", bit_rate=250_000, options=_RT_VP9),
    "recorder": _recorder,
}
QUICK_ENCODINGS = ("source", "h264 crf 23", "vp8 250k", "recorder")
MIXED_ENCODINGS = ("source", "vp8 250k", "recorder")  # cross-fades and morphs: pixel mixes cost embeddings


def _decode(data: bytes) -> np.ndarray:
    from media.video import iter_frames

    return np.stack([f for _, f in iter_frames(io.BytesIO(data))])


# -- the faces ------------------------------------------------------------------------------------------------
def _looks(frames: np.ndarray, indices: Iterator[int] | range) -> np.ndarray:
    """``(len(indices), 128)`` embeddings of the usable face of each frame, as enrollment takes it; NaN rows
    where enrollment would skip the frame (no face, too small or blurry) or refuse it (two faces)."""
    from detectors.enroll import _candidates
    from detectors.errors import EnrollmentError
    from detectors.faces import default_backend

    backend = default_backend()
    rows = []
    for t in indices:
        try:
            accepted, _, _ = _candidates([frames[t]], backend, 60)
        except EnrollmentError:
            accepted = []
        rows.append(accepted[0].face.embedding if accepted else np.full(128, np.nan, np.float32))
    return np.stack(rows).astype(np.float32)


@dataclass(frozen=True)
class Encoded:
    """One clip in one encoding: the embedding of every ``EVERY``-th frame (NaN: no usable face)."""

    clip: str
    person: str
    encoding: str
    kbits: float  # the file's bit rate, kbit/s (0 for the source frames)
    looks: np.ndarray  # (ceil(T / EVERY), 128)


def _cached(cache: Path | None, key: str, make: Callable[[], tuple[np.ndarray, float]]) -> tuple[np.ndarray, float]:
    if cache is None:
        return make()
    path = cache / (key.replace(" ", "_").replace("/", "_").replace("(", "").replace(")", "") + ".npz")
    if path.exists():
        with np.load(path) as z:
            return z["looks"], float(z["kbits"])
    looks, kbits = make()
    np.savez(path, looks=looks, kbits=kbits)
    return looks, kbits


def _mix_window(a: np.ndarray, b: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames ``start .. start+length`` of a cross-fade from ``a`` to ``b`` (weights 0 -> 1 over the window)."""
    w = np.linspace(0.0, 1.0, length + 2)[1:-1, None, None, None]
    return np.clip(a[start:start + length] * (1 - w) + b[start:start + length] * w + 0.5, 0, 255).astype(np.uint8)


MIXES = {"cross-fade 0.6 s": 0.6, "morph over 2 s": 2.0}


def _embed_clip(enc: str, frames: np.ndarray, decoded: dict[str, np.ndarray], clip: str) -> tuple[np.ndarray, float]:
    """The looks of ``clip`` in encoding ``enc`` and the file's kbit/s; its decoded frames go to ``decoded``."""
    fn = ENCODINGS[enc]
    if fn is None:
        decoded[clip] = frames
        return _looks(frames, range(0, len(frames), EVERY)), 0.0
    data = fn(frames)
    decoded[clip] = _decode(data)
    kbits = len(data) * 8 / (len(frames) / float(RATE)) / 1000
    return _looks(decoded[clip], range(0, len(decoded[clip]), EVERY)), kbits


def _embed_mix(enc: str, made: dict[str, tuple[str, np.ndarray]], decoded: dict[str, np.ndarray], a: str, b: str,
               length: int) -> tuple[np.ndarray, float]:
    """The looks of a ``length``-frame cross-fade from ``a`` to ``b`` at the middle, mixed from decoded frames."""
    for c in (a, b):
        if c not in decoded:
            fn = ENCODINGS[enc]
            decoded[c] = made[c][1] if fn is None else _decode(fn(made[c][1]))
    start = _mix_start(min(_n_looks(len(decoded[a])), _n_looks(len(decoded[b]))), length) * EVERY
    return _looks(_mix_window(decoded[a], decoded[b], start, length), range(0, length, EVERY)), 0.0


def _n_looks(frames: int) -> int:
    return (frames + EVERY - 1) // EVERY


def _mix_start(n_looks: int, length: int) -> int:
    """The look at which a ``length``-frame mix starts: centred on the middle of ``n_looks`` looks."""
    return (n_looks * EVERY // 2 - length // 2) // EVERY


def measure(quick: bool, cache: Path | None) -> tuple[list[Encoded], dict[tuple[str, str, str, str], np.ndarray]]:
    """Every clip in every encoding, and the mixed windows of every ordered pair of primary clips:
    ``{(mix, encoding, a, b): looks of the window's EVERY-th frames}`` (window starts are even)."""
    made = clips(quick)
    encoded: list[Encoded] = []
    mixed: dict[tuple[str, str, str, str], np.ndarray] = {}
    for enc in QUICK_ENCODINGS if quick else tuple(ENCODINGS):
        started = time.perf_counter()
        decoded: dict[str, np.ndarray] = {}
        for clip, (person, frames) in made.items():
            looks, kbits = _cached(cache, f"{enc}-{clip}", partial(_embed_clip, enc, frames, decoded, clip))
            encoded.append(Encoded(clip, person, enc, kbits, looks))
        if enc in MIXED_ENCODINGS:
            primary = [c for c in PRIMARY if c in made]
            for mix, seconds in MIXES.items():
                length = round(seconds * float(RATE))
                for a in primary:
                    for b in primary:
                        if a != b:
                            mixed[(mix, enc, a, b)] = _cached(
                                cache, f"{mix}-{enc}-{a}-{b}", partial(_embed_mix, enc, made, decoded, a, b, length))[0]
        print(f"  embedded {enc} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return encoded, mixed


# -- the sequences judged -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sequence:
    """The faces one enrollment would judge: ``faces`` (n, 128) in time order, ``other[k]`` 1 where face k shows
    the person cut in (2: a mixed frame of a cross-fade or morph), 0 the first person."""

    encoding: str
    spacing: int
    first: str  # clip
    kind: str  # "one person", or how the other person is cut in
    second: str | None
    faces: np.ndarray
    other: np.ndarray


def _samples(looks: np.ndarray, other: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For every spacing and starting frame: the usable faces sampled (at most MAX_SAMPLES) and their labels."""
    for spacing in SPACINGS:
        step = spacing // EVERY
        for start in range(step):
            idx = [i for i in range(start, len(looks), step) if not np.isnan(looks[i, 0])][:MAX_SAMPLES]
            yield spacing, looks[idx], other[idx]


def _switch_masks(n_frames: int) -> dict[str, np.ndarray]:
    """Which frames (EVERY-th) show the other person, per kind of splice."""
    f = np.arange((n_frames + EVERY - 1) // EVERY) * EVERY
    mid = n_frames // 2
    kinds = {
        "cut at the middle": f >= mid,
        "the last 1 s": f >= n_frames - 30,
        "the first 0.5 s": f < 15,
        "every third frame": f % 3 == 2,
        "8 frames in every 16": (f // 8) % 2 == 1,
    }
    for frames in (4, 8, 15, 30):
        kinds[f"insert {frames} frames ({frames / float(RATE):.2f} s)"] = (f >= mid) & (f < mid + frames)
    return kinds


def sequences(encoded: list[Encoded], mixed: dict[tuple[str, str, str, str], np.ndarray]) -> list[Sequence]:
    out: list[Sequence] = []
    by_enc: dict[str, dict[str, Encoded]] = defaultdict(dict)
    for e in encoded:
        by_enc[e.encoding][e.clip] = e
    for enc, clips_ in by_enc.items():
        for c, e in clips_.items():
            for spacing, faces, other in _samples(e.looks, np.zeros(len(e.looks), int)):
                if len(faces) >= MIN_FACES:
                    out.append(Sequence(enc, spacing, c, "one person", None, faces, other))
        for a, ea in clips_.items():
            for b, eb in clips_.items():
                if ea.person == eb.person:
                    continue
                n = min(len(ea.looks), len(eb.looks))
                kinds = {k: m[:n].astype(int) for k, m in _switch_masks(n * EVERY).items()}
                looks_of = {k: np.where(m[:, None] == 1, eb.looks[:n], ea.looks[:n]) for k, m in kinds.items()}
                for mix, seconds in MIXES.items():
                    window = mixed.get((mix, enc, a, b))
                    if window is None:
                        continue
                    start = _mix_start(n, round(seconds * float(RATE)))
                    m = np.zeros(n, int)
                    m[start:start + len(window)] = 2
                    m[start + len(window):] = 1
                    looks = np.where(m[:, None] == 1, eb.looks[:n], ea.looks[:n])
                    looks[start:start + len(window)] = window[:n - start]
                    kinds[mix], looks_of[mix] = m, looks
                for kind, m in kinds.items():
                    for spacing, faces, other in _samples(looks_of[kind], m):
                        if len(faces) >= MIN_FACES and (other == 0).any() and (other == 1).any():
                            out.append(Sequence(enc, spacing, a, kind, b, faces, other))
    return out


# -- the rules --------------------------------------------------------------------------------------------------
def old_rule(faces: np.ndarray) -> bool:
    """The rule replaced (refuses): two successive faces more than 0.55 apart, or a face more than 0.50 from the
    mean of all."""
    steps = np.linalg.norm(np.diff(faces, axis=0), axis=1)
    return bool(steps.max() > OLD_STEP or np.linalg.norm(faces - faces.mean(axis=0), axis=1).max() > OLD_MEAN)


@dataclass(frozen=True)
class Verdict:
    old_refused: bool
    refused: bool  # enrollment's rule
    left_out: int  # faces the rule keeps out of the template (of an accepted video)
    other_kept: bool  # an accepted video whose template may hold the other person's face (a pure one: other == 1)


def judge(seq: Sequence) -> Verdict:
    from detectors.enroll import _video_faces

    faces = seq.faces.astype(np.float32)
    judged = _video_faces(faces, THRESHOLD)
    refused = not judged.one_person
    kept_other = not refused and bool((seq.other[judged.trusted] == 1).any())
    return Verdict(old_rule(faces), refused, 0 if refused else len(faces) - len(judged.trusted), kept_other)


def _stats(seq: Sequence) -> dict[str, float]:
    from detectors.enroll import _from_the_others, _groups

    faces = seq.faces.astype(np.float32)
    groups = list(_groups(faces))
    return {
        "step": float(np.linalg.norm(np.diff(faces, axis=0), axis=1).max()),
        "far": float(_from_the_others(faces).max()),
        "pair": max((d for g, d in groups if len(g) == 2), default=0.0),
        "group": max((d for g, d in groups if len(g) >= 3), default=0.0),
    }


# -- the tables -------------------------------------------------------------------------------------------------
def _pct(flags: list[bool]) -> str:
    return f"{sum(flags)} / {len(flags)} ({100 * sum(flags) / max(1, len(flags)):.1f} %)"


def _q(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in np.percentile(values, [50, 99, 100]))


def one_person_tables(rows: list[tuple[Sequence, Verdict, dict[str, float]]], kbits: dict[str, float]) -> None:
    print("\n### One person: refused (FNMR) by the rule replaced and by enrollment's rule\n")
    print("Distances: p50/p99/max over the sequences of each one's largest. successive: two neighbouring faces; "
          "from the others: a face from the mean of all the others; 2 / 3+: two groups' mean faces (smaller group 2, "
          "or 3 and more). Left out: faces kept out of the template, per accepted sequence.\n")
    print("| encoding | kbit/s (real clip) | sequences | successive | from the others | groups 2 | groups 3+ "
          "| refused, old rule | refused, new rule | left out |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for enc in dict.fromkeys(s.encoding for s, _, _ in rows):
        mine = [(s, v, st) for s, v, st in rows if s.encoding == enc]
        accepted = [v.left_out for _, v, _ in mine if not v.refused]
        rate = f"{kbits[enc]:.0f}" if kbits.get(enc) else "-"
        print(f"| {enc} | {rate} | {len(mine)} | {_q([st['step'] for _, _, st in mine])} "
              f"| {_q([st['far'] for _, _, st in mine])} | {_q([st['pair'] for _, _, st in mine])} "
              f"| {_q([st['group'] for _, _, st in mine])} | {_pct([v.old_refused for _, v, _ in mine])} "
              f"| {_pct([v.refused for _, v, _ in mine])} | {np.mean(accepted) if accepted else 0:.2f} |")
    print("\n| spacing (frames, s at 29.97 fps) | sequences | faces (median) | successive p99/max "
          "| refused, old rule | refused, new rule |")
    print("|---|---|---|---|---|---|")
    for spacing in SPACINGS:
        mine = [(s, v, st) for s, v, st in rows if s.spacing == spacing]
        if mine:
            steps = [st["step"] for _, _, st in mine]
            print(f"| {spacing} ({spacing / float(RATE):.2f} s) | {len(mine)} "
                  f"| {np.median([len(s.faces) for s, _, _ in mine]):.0f} "
                  f"| {np.percentile(steps, 99):.2f}/{max(steps):.2f} | {_pct([v.old_refused for _, v, _ in mine])} "
                  f"| {_pct([v.refused for _, v, _ in mine])} |")
    print("\n| clip | refused, old rule | refused, new rule | largest from the others | largest group (3+) |")
    print("|---|---|---|---|---|")
    for clip in dict.fromkeys(s.first for s, _, _ in rows):
        mine = [(s, v, st) for s, v, st in rows if s.first == clip]
        print(f"| {clip} | {_pct([v.old_refused for _, v, _ in mine])} | {_pct([v.refused for _, v, _ in mine])} "
              f"| {max(st['far'] for _, _, st in mine):.3f} | {max(st['group'] for _, _, st in mine):.3f} |")


def switch_tables(rows: list[tuple[Sequence, Verdict, dict[str, float]]], apart: dict[tuple[str, str], float]) -> None:
    print("\n### A switch to another person: let through (FMR) by the rule replaced and by enrollment's rule\n")
    print("New rule, let through: the video is accepted and a face of the other person may become a template row "
          "(it is within the threshold of the mean of the others); accepted but kept out: every face of theirs is "
          "left out of the template.\n")
    print("| how the other person is cut in | sequences | let through, old rule | let through, new rule "
          "| accepted but kept out | from the others, smallest of theirs p1 |")
    print("|---|---|---|---|---|---|")
    for kind in dict.fromkeys(s.kind for s, _, _ in rows):
        mine = [(s, v) for s, v, _ in rows if s.kind == kind]
        print(f"| {kind} | {len(mine)} | {_pct([not v.old_refused for _, v in mine])} "
              f"| {_pct([v.other_kept for _, v in mine])} "
              f"| {_pct([not v.refused and not v.other_kept for _, v in mine])} "
              f"| {np.percentile([_theirs(s) for s, _ in mine], 1):.2f} |")
    print("\n| encoding | sequences | let through, old rule | let through, new rule |")
    print("|---|---|---|---|")
    for enc in dict.fromkeys(s.encoding for s, _, _ in rows):
        mine = [v for s, v, _ in rows if s.encoding == enc]
        print(f"| {enc} | {len(mine)} | {_pct([not v.old_refused for v in mine])} "
              f"| {_pct([v.other_kept for v in mine])} |")
    print("\nBy how many faces show the other person, and how far apart the two people's whole videos are "
          "(mean faces, source frames):\n")
    print("| the other person's faces | < 0.60 apart: old rule | < 0.60 apart: new rule | >= 0.60 apart: old rule "
          "| >= 0.60 apart: new rule |")
    print("|---|---|---|---|---|")
    for label, lo, hi in (("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6 or more", 6, 10**6)):
        cells = []
        for near in (True, False):
            mine = [v for s, v, _ in rows if lo <= int((s.other == 1).sum()) <= hi
                    and (apart[(s.first, str(s.second))] < 0.6) == near]
            cells += [_pct([not v.old_refused for v in mine]), _pct([v.other_kept for v in mine])]
        print(f"| {label} | {' | '.join(cells)} |")


def _theirs(seq: Sequence) -> float:
    """The smallest distance of the other person's faces from the mean of the rest."""
    from detectors.enroll import _from_the_others

    return float(_from_the_others(seq.faces.astype(np.float32))[seq.other == 1].min())


def reported_case() -> None:
    """The refusal reported: Miranda's 4.2 s as the tests' WebM (and MP4), through ``enroll_video`` itself."""
    import tempfile

    from detectors.enroll import _candidates, _video_frames, enroll_video
    from detectors.errors import EnrollmentError
    from detectors.faces import default_backend
    from tests.media_tools import encode_timed

    frames = _real_clip()
    times = [round(k * 1000 / float(RATE)) for k in range(len(frames))]
    print("\n### The reported case, through enroll_video\n")
    print("| file | faces | largest successive | old rule | enroll_video |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("webm", "mp4"):
            path = Path(tmp) / f"selfie.{fmt}"
            path.write_bytes(encode_timed(frames, times, fmt=fmt))
            accepted, _, _ = _candidates(_video_frames(path, 24, 15.0), default_backend(), 60)
            faces = np.stack([c.face.embedding for c in accepted])
            try:
                rows = enroll_video(path).embeddings.shape[0]
                verdict = f"enrolled ({rows} rows)"
            except EnrollmentError as e:
                verdict = f"{e.reason}: {e.message}"
            steps = np.linalg.norm(np.diff(faces, axis=0), axis=1)
            print(f"| {fmt} ({path.stat().st_size * 8 / (len(frames) / float(RATE)) / 1000:.0f} kbit/s) "
                  f"| {len(faces)} | {steps.max():.2f} | {'refused' if old_rule(faces) else 'enrolled'} | {verdict} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench selfie", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the real clip and 2 photos, 4 encodings")
    parser.add_argument("--cache", type=Path, help="keep the embeddings in this folder between runs")
    args = parser.parse_args(argv or [])
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"bench.selfie: {load()}", flush=True)
    encoded, mixed = measure(args.quick, args.cache)
    kbits = {e.encoding: e.kbits for e in encoded if e.clip == "miranda (real)"}
    source = {e.clip: e.looks for e in encoded if e.encoding == encoded[0].encoding}
    means = {c: np.nanmean(v, axis=0) for c, v in source.items()}
    apart = {(a, b): float(np.linalg.norm(means[a] - means[b])) for a in means for b in means}
    rows = [(s, judge(s), _stats(s)) for s in sequences(encoded, mixed)]
    one = [r for r in rows if r[0].kind == "one person"]
    switch = [r for r in rows if r[0].kind != "one person"]
    print(f"\nthreshold {THRESHOLD:.2f}; {len(one)} one-person sequences, {len(switch)} switches; the people's whole "
          "videos (mean faces, source frames) apart: " + ", ".join(
              f"{a} / {b} {d:.2f}" for (a, b), d in apart.items() if a < b))
    one_person_tables(one, kbits)
    switch_tables(switch, apart)
    reported_case()
    print(f"\nSummary: one person refused, old rule {_pct([v.old_refused for _, v, _ in one])}, new rule "
          f"{_pct([v.refused for _, v, _ in one])}; a switch let through, old rule "
          f"{_pct([not v.old_refused for _, v, _ in switch])}, new rule {_pct([v.other_kept for _, v, _ in switch])}")
    print(f"\nbench.selfie done in {time.perf_counter() - started:.0f} s; {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
