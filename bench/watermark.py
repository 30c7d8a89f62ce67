"""Watermark and fingerprint benchmark: ``python -m bench watermark [--quick] [--no-baseline] [--fp-clips N]``.

Part 1 (watermark). Clips: two procedural scenes (a night city, snowy mountains) and the real Hamilton
footage (../shared/testdata/faces/short_hamilton_clip.mp4), each at 256p and 512p (3 s). Every clip is marked
with the default watermark (``provenance.watermark``) and, side by side, with imwatermark's
dwtDctSvd (64 bits, ``scales=[0, 72, 0]``, majority vote over up to 12 frames), released as H.264
crf 18, then attacked; every attack ends with an encode (libx264 crf 23 unless it is the encode
under test) and a decode. A cell is the fraction of clips whose 64-bit payload came back exactly.
The same attacks run on the unmarked clips: any payload from those is a false positive.

Part 2 (timing). Embedding and detection of a 10 s 512x512 24 fps clip (frames in memory).

Part 3 (fingerprint). ``--fp-clips`` procedural clips (128x128, 2 s) are fingerprinted as "released";
the first 40 are then re-encoded, resized, cropped, brightened and re-timed and looked up among all
of them.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from generator.base import GenerationSpec
from generator.procedural import ProceduralGenerator
from media.video import Clip, read_video, write_video
from provenance import fingerprint as fpr
from provenance import watermark as wm
from provenance._convcode import viterbi

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
PAYLOAD = bytes.fromhex("c0ffee00deadbeef")
KEY = wm.WatermarkKey(b"consentgate-benchmark-watermark-key")
TARGET_PSNR = 38.0
TARGET_EMBED_S, TARGET_DETECT_S = 10.0, 2.0
PROMPTS = ("a city street at night", "snowy mountains with a forest", "sunset over the ocean waves")


# --- attacks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Video:
    frames: np.ndarray
    fps: float
    data: bytes | None = None  # the encoded file the frames were decoded from (the verifier's reader reads it)


READER = "rgb"
"""How the attacked copies are read for the default watermark and the fingerprint: ``rgb`` (decoded RGB frames,
the library's ``detect`` / ``fingerprint_frames``), ``planes`` (``--reader planes``: luma and thumbnails from the
decoder's planes, ``media.video.iter_planes``) or ``verify`` (``--reader verify``: the watermark exactly as
verification reads it since issue 12, ``governance.verification.reading.read_upload``: planes, stopping at the
first early check where the mark verifies; the fingerprint as ``planes``)."""


def _as_verification_reads(v: Video) -> wm.MarkReader:
    """The watermark reader verification runs on ``v``'s file, after it read what it reads."""
    from governance.verification.reading import read_upload
    from media.limits import Meter

    read = read_upload(v.data or b"", "video", watermark_keys=[KEY], fingerprint=False, meter=Meter())
    read.watermark()  # raises what stopped the reader
    assert read.marks is not None
    return read.marks


def _evidence(v: Video) -> wm.Evidence:
    if READER == "verify" and v.data is not None:
        return _as_verification_reads(v).evidence
    if READER in ("planes", "verify") and v.data is not None:
        from media.video import iter_planes

        evidence = wm.Evidence()
        for _, planes in iter_planes(v.data, max_frames=240, limits=None):
            evidence.add_luma(planes.luma)
        return evidence
    return wm.Evidence.of(v.frames)


def _fingerprint(v: Video) -> fpr.Fingerprint:
    if READER in ("planes", "verify") and v.data is not None:
        from media.video import iter_planes

        builder = fpr.FingerprintBuilder()
        for _, planes in iter_planes(v.data, limits=None):
            builder.add_planes(planes)
        return builder.fingerprint()
    return fpr.fingerprint_frames(v.frames)


def _even(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1:3]
    return np.ascontiguousarray(frames[:, : h - h % 2, : w - w % 2])


def _encode(v: Video, tmp: Path, *, codec: str = "libx264", crf: int = 23) -> Video:
    path = tmp / "attack.mp4"
    write_video(path, Clip(frames=_even(v.frames), fps=v.fps), codec=codec, crf=crf, preset="veryfast")
    return Video(read_video(path, with_audio=False, limits=None).frames, v.fps, path.read_bytes())


def _resize(frames: np.ndarray, s: float, back: bool = False) -> np.ndarray:
    h, w = frames.shape[1:3]
    size = (max(2, round(w * s) // 2 * 2), max(2, round(h * s) // 2 * 2))
    out = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    if back:
        out = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in out])
    return out


def _crop(frames: np.ndarray, frac: float, off_centre: bool) -> np.ndarray:
    """Keep (1 - frac) of each side; off-centre keeps 80 % of the removed rows from the top, 25 % of
    the removed columns from the left (so the tile grid moves by an odd, non-block-aligned amount)."""
    h, w = frames.shape[1:3]
    ch, cw = round(h * (1 - frac)) // 2 * 2, round(w * (1 - frac)) // 2 * 2
    fy, fx = (0.8, 0.25) if off_centre else (0.5, 0.5)
    y0, x0 = round((h - ch) * fy), round((w - cw) * fx)
    return frames[:, y0 : y0 + ch, x0 : x0 + cw]


def _levels(frames: np.ndarray, gain: float, offset: float, pivot: float = 0.0) -> np.ndarray:
    out = (frames.astype(np.float32) - pivot) * gain + pivot + offset
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _retime(v: Video, fps: float) -> Video:
    """Frame-rate conversion by linear blending of the two nearest source frames."""
    n = len(v.frames)
    m = max(1, int(n * fps / v.fps))
    t = np.arange(m) * v.fps / fps
    i0 = np.minimum(np.floor(t).astype(int), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    a = (t - i0)[:, None, None, None].astype(np.float32)
    out = (1 - a) * v.frames[i0].astype(np.float32) + a * v.frames[i1].astype(np.float32)
    return Video(np.clip(np.rint(out), 0, 255).astype(np.uint8), fps)


def _trim(v: Video, seconds: float) -> Video:
    n = len(v.frames)
    k = max(1, round(seconds * v.fps))
    s = max(0, (n - k) // 2)
    return Video(v.frames[s : s + k], v.fps)


def attacks(tmp: Path) -> dict[str, Callable[[Video], Video]]:
    e = _encode
    noise_rng = np.random.default_rng(1234)

    def noisy(v: Video) -> Video:
        n = noise_rng.normal(0.0, 5.0, v.frames.shape).astype(np.float32)
        return Video(np.clip(np.rint(v.frames + n), 0, 255).astype(np.uint8), v.fps)

    return {
        "h264 crf23": lambda v: e(v, tmp, crf=23),
        "h264 crf28": lambda v: e(v, tmp, crf=28),
        "h264 crf35": lambda v: e(v, tmp, crf=35),
        "h265 crf28": lambda v: e(v, tmp, codec="libx265", crf=28),
        "resize 0.5x+back": lambda v: e(Video(_resize(v.frames, 0.5, back=True), v.fps), tmp),
        "resize 0.75x": lambda v: e(Video(_resize(v.frames, 0.75), v.fps), tmp),
        "crop 5%": lambda v: e(Video(_crop(v.frames, 0.05, False), v.fps), tmp),
        "crop 5% off-centre": lambda v: e(Video(_crop(v.frames, 0.05, True), v.fps), tmp),
        "crop 10%": lambda v: e(Video(_crop(v.frames, 0.10, False), v.fps), tmp),
        "crop 10% off-centre": lambda v: e(Video(_crop(v.frames, 0.10, True), v.fps), tmp),
        "crop 20%": lambda v: e(Video(_crop(v.frames, 0.20, False), v.fps), tmp),
        "crop 20% off-centre": lambda v: e(Video(_crop(v.frames, 0.20, True), v.fps), tmp),
        "brightness +20%": lambda v: e(Video(_levels(v.frames, 1.2, 0.0), v.fps), tmp),
        "brightness -20%": lambda v: e(Video(_levels(v.frames, 0.8, 0.0), v.fps), tmp),
        "contrast +20%": lambda v: e(Video(_levels(v.frames, 1.2, 0.0, pivot=128.0), v.fps), tmp),
        "contrast -20%": lambda v: e(Video(_levels(v.frames, 0.8, 0.0, pivot=128.0), v.fps), tmp),
        "gaussian noise s=5": lambda v: e(noisy(v), tmp),
        "fps 24->30 (blend)": lambda v: e(_retime(v, 30.0 if abs(v.fps - 30.0) > 1 else 24.0), tmp),
        "trim middle 2 s": lambda v: e(_trim(v, 2.0), tmp),
    }


def mirror(frames: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frames[:, :, ::-1])


def scale(frames: np.ndarray, s: float) -> np.ndarray:
    """Resize by ``s`` (even sides): bilinear up, area average down, as video apps do."""
    h, w = frames.shape[1:3]
    size = (max(2, round(w * s) // 2 * 2), max(2, round(h * s) // 2 * 2))
    interpolation = cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA
    return np.stack([cv2.resize(f, size, interpolation=interpolation) for f in frames])


def pad(frames: np.ndarray, aspect_w: int, aspect_h: int, *, blurred: bool = False) -> np.ndarray:
    """The picture centred in a frame of aspect ``aspect_w:aspect_h`` (even sides): bars above and below a
    picture wider than that, left and right of a taller one; black, or (``blurred``) the picture enlarged to
    fill the frame, Gaussian-blurred (sigma 1/40 of the frame's longer side) and darkened to 70 %."""
    t, h, w, _ = frames.shape
    if w * aspect_h >= h * aspect_w:
        fh, fw = round(w * aspect_h / aspect_w) // 2 * 2, w
    else:
        fh, fw = h, round(h * aspect_w / aspect_h) // 2 * 2
    y0, x0 = (fh - h) // 2, (fw - w) // 2
    out = np.zeros((t, fh, fw, 3), np.uint8)
    for i, f in enumerate(frames):
        if blurred:
            s = max(fh / h, fw / w)
            big = cv2.resize(f, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
            by, bx = (big.shape[0] - fh) // 2, (big.shape[1] - fw) // 2
            fill = cv2.GaussianBlur(big[by : by + fh, bx : bx + fw], (0, 0), max(fh, fw) / 40)
            out[i] = (fill * 0.7).astype(np.uint8)
        out[i, y0 : y0 + h, x0 : x0 + w] = f
    return out


def reposts(tmp: Path) -> dict[str, Callable[[Video], Video]]:
    """What a social app does to a reposted clip (the field report's "Reposts of a released video"), each
    ended by an H.264 crf 28 encode. Run on the 256p clips (the gate's release size): a 2.8x upscale of
    a 512p clip would be larger than any app delivers."""

    def e(frames: np.ndarray, v: Video) -> Video:
        return _encode(Video(frames, v.fps), tmp, crf=28)

    return {
        "mirror": lambda v: e(mirror(v.frames), v),
        "downscale 0.5x": lambda v: e(scale(v.frames, 0.5), v),
        "2.8x, 9:16 black bars": lambda v: e(pad(scale(v.frames, 2.8), 9, 16), v),
        "3x, 9:16 black bars": lambda v: e(pad(scale(v.frames, 3.0), 9, 16), v),
        "3x, 16:9 black bars": lambda v: e(pad(scale(v.frames, 3.0), 16, 9), v),
        "2.8x, 9:16 blurred bars": lambda v: e(pad(scale(v.frames, 2.8), 9, 16, blurred=True), v),
        "mirror, 2.8x, 9:16 black bars": lambda v: e(pad(scale(mirror(v.frames), 2.8), 9, 16), v),
    }


REPOST_SIDE = 256  # reposts run on the clips of this height


# Attacks the targets cover ("every attack above up to crop 10 % and crf 35").
IN_TARGET = {name for name in attacks(Path(".")) if not name.startswith("crop 20%")}


# --- the two watermarks ---------------------------------------------------------------------------


class Default:
    name = "default (provenance.watermark)"

    def embed(self, frames: np.ndarray) -> np.ndarray:
        return wm.embed(frames, PAYLOAD, KEY)

    def detect(self, frames: np.ndarray) -> bytes | None:
        found = wm.detect(frames, KEY)
        return None if found is None else found.payload

    def probe(self, v: Video) -> tuple[bytes | None, float]:
        """(the payload found or None, bit accuracy): of the 64 payload bits, the share the decoder got right
        at the hypothesis it trusted most (the one whose tag verified, or else the best-synchronised one)."""
        truth = np.unpackbits(np.frombuffer(PAYLOAD, np.uint8))
        if READER == "verify" and v.data is not None:
            mark = _as_verification_reads(v).result()
            if mark is not None:  # found at an early check or at the end: the payload verification reports
                return mark[0].payload, float(np.mean(np.unpackbits(np.frombuffer(mark[0].payload, np.uint8)) == truth))
        best = [-np.inf, 0.0]

        class Probe(wm._Search):
            def _try(self, s: wm._Synced) -> wm._Found | None:
                if self.tried < wm.MAX_HYPOTHESES and s.z > best[0]:
                    aligned = np.roll(s.tile, (-s.shift[0], -s.shift[1]), axis=(0, 1))
                    bits = viterbi(wm._per_bit(wm._cells(aligned, s.cell), *self.layout))[: truth.size]
                    best[:] = [s.z, float(np.mean(bits == truth))]
                return super()._try(s)

        evidence = _evidence(v)
        levels = [(evidence._image, 1)] + ([(evidence._half, 2)] if evidence._half is not None else [])
        found = Probe(levels, KEY).run()  # type: ignore[arg-type]
        if found is not None:
            return found.payload, float(np.mean(np.unpackbits(np.frombuffer(found.payload, np.uint8)) == truth))
        return None, best[1]


class DwtDctSvd:
    """imwatermark's dwtDctSvd: 64 bits per frame, majority vote over up to 12 evenly spread frames."""

    name = "imwatermark dwtDctSvd"
    frames_read = 12

    def __init__(self) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self._enc = WatermarkEncoder()
        self._enc.set_watermark("bytes", PAYLOAD)
        self._dec = WatermarkDecoder("bits", 8 * len(PAYLOAD))

    def embed(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty_like(frames)
        for i, f in enumerate(frames):
            bgr = self._enc.encode(np.ascontiguousarray(f[..., ::-1]), "dwtDctSvd", scales=[0, 72, 0])
            out[i] = np.clip(bgr, 0, 255).astype(np.uint8)[..., ::-1]
        return out

    def detect(self, frames: np.ndarray) -> bytes | None:
        h, w = frames.shape[1:3]
        if h * w < 256 * 256:
            return None  # imwatermark refuses frames under 256x256 pixels
        picks = np.unique(np.linspace(0, len(frames) - 1, min(self.frames_read, len(frames))).round().astype(int))
        votes = np.zeros(8 * len(PAYLOAD))
        for i in picks:
            bits = self._dec.decode(np.ascontiguousarray(frames[i][..., ::-1]), "dwtDctSvd", scales=[0, 72, 0])
            votes += np.asarray(bits, np.float64)
        return np.packbits((votes > len(picks) / 2).astype(np.uint8)).tobytes()


# --- clips ----------------------------------------------------------------------------------------


def clips(sizes: tuple[int, ...], n_generated: int, seconds: float) -> list[tuple[str, Video]]:
    gen = ProceduralGenerator()
    real = read_video(TESTDATA / "faces" / "short_hamilton_clip.mp4", with_audio=False, limits=None)
    out = []
    for size in sizes:
        for i, prompt in enumerate(PROMPTS[:n_generated]):
            spec = GenerationSpec(prompt=prompt, seed=i, width=size, height=size, duration_s=seconds)
            out.append((f"{prompt.split()[1]} {size}x{size}", Video(gen.generate(spec).frames, 24.0)))
        w = round(real.width * size / real.height) // 2 * 2
        n = min(real.frame_count, round(seconds * real.fps))
        frames = np.stack([cv2.resize(f, (w, size), interpolation=cv2.INTER_AREA) for f in real.frames[:n]])
        out.append((f"hamilton {w}x{size}", Video(frames, real.fps)))
    return out


# --- part 1 ---------------------------------------------------------------------------------------


def bench_watermarks(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    sizes = (256,) if args.quick else (256, 512)
    sources = clips(sizes, 1 if args.quick else 2, 3.0)
    methods: list[Default | DwtDctSvd] = [Default()]
    if not args.no_baseline:
        methods.append(DwtDctSvd())
    default = methods[0]
    table = {**attacks(tmp), **reposts(tmp)}
    names = ["release (crf 18)", *table]
    repost_names = set(reposts(tmp))
    applies = {a: [label for label, v in sources if a not in repost_names or v.frames.shape[1] == REPOST_SIDE]
               for a in names}
    hits = {m.name: {a: 0 for a in names} for m in methods}
    bits = {a: 0.0 for a in names}
    fp_first = {a: 0 for a in names}
    psnrs: dict[str, list[float]] = {m.name: [] for m in methods}
    false_pos = {a: 0 for a in names}
    misses: dict[str, list[str]] = {m.name: [] for m in methods}
    # the released copies' fingerprints, as the gate stores them, to look every attacked copy up among
    index = fpr.FingerprintIndex()
    marked: dict[str, dict[str, Video]] = {}
    for label, video in sources:
        marked[label] = {}
        for m in methods:
            frames = m.embed(video.frames)
            psnrs[m.name].append(wm.psnr(video.frames, frames))
            marked[label][m.name] = _encode(Video(frames, video.fps), tmp, crf=18)
        index.add(label, fpr.fingerprint_frames(marked[label][default.name].frames, query_views=False))
    for label, video in sources:
        t0 = time.perf_counter()
        for m in methods:
            released = marked[label][m.name]
            for a in names:
                if label not in applies[a]:
                    continue
                attacked = released if a == names[0] else table[a](released)
                if isinstance(m, Default):
                    payload, accuracy = m.probe(attacked)
                    bits[a] += accuracy
                    matches = index.match(_fingerprint(attacked))
                    fp_first[a] += bool(matches) and matches[0].key == label
                else:
                    payload = m.detect(attacked.frames)
                ok = payload == PAYLOAD
                hits[m.name][a] += ok
                if not ok:
                    misses[m.name].append(f"{a} on {label}")
        clean = _encode(video, tmp, crf=18)
        for a in names:
            if label in applies[a]:
                attacked = clean if a == names[0] else table[a](clean)
                false_pos[a] += ((_as_verification_reads(attacked).result() is not None) if READER == "verify"
                                 else _evidence(attacked).detect(KEY) is not None)
        print(f"  {label}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    n = len(sources)
    print(f"\nWatermark robustness: fraction of the clips whose 64-bit payload is recovered exactly ({n} clips; "
          f"the reposts: the {len(applies[next(iter(repost_names))])} at {REPOST_SIDE}p)")
    print(f"clips: {', '.join(label for label, _ in sources)}")
    print(f"| attack | {' | '.join(m.name for m in methods)} | default: bit accuracy | fingerprint: original "
          "returned first | unmarked clips: false positives |")
    print("|" + "---|" * (len(methods) + 4))
    print("| PSNR (dB), mean / min | " + " | ".join(
        f"{np.mean(psnrs[m.name]):.1f} / {np.min(psnrs[m.name]):.1f}" for m in methods) + " | | | |")
    for a in names:
        k = len(applies[a])
        cells = [f"{hits[m.name][a] / k:.2f}" for m in methods]
        print(f"| {a} | {' | '.join(cells)} | {bits[a] / k:.3f} | {fp_first[a]} / {k} | {false_pos[a]} / {k} |")
    print("\nAgainst the targets (default watermark):")
    min_psnr = float(np.min(psnrs[default.name]))
    print(f"  PSNR >= {TARGET_PSNR} dB: min {min_psnr:.2f} dB"
          + ("  (met)" if min_psnr >= TARGET_PSNR else f"  (MISSED by {TARGET_PSNR - min_psnr:.2f} dB)"))
    missed = [(a, hits[default.name][a]) for a in names
              if (a in IN_TARGET or a == names[0]) and hits[default.name][a] < n]
    if not missed:
        print("  100 % exact recovery on every attack up to crop 10 % and crf 35: met")
    for a, k in missed:
        print(f"  {a}: {k}/{n} clips, MISSED by {n - k} clip(s) ({100 * (n - k) / n:.0f} percentage points)")
    if misses[default.name]:
        print(f"  failures ({default.name}): " + "; ".join(misses[default.name]))
    total_fp = sum(false_pos.values())
    detections = sum(len(applies[a]) for a in names)
    print(f"  false positives on unmarked clips: {total_fp} in {detections} detections "
          f"(bound by design: {wm.FALSE_POSITIVE_BOUND:.1e} per detection)")
    return {"hits": hits, "false_pos": false_pos, "n": n}


# --- part 2 ---------------------------------------------------------------------------------------


def bench_timing() -> None:
    spec = GenerationSpec(prompt="a forest at sunset", seed=7, width=512, height=512, duration_s=10.0)
    frames = ProceduralGenerator().generate(spec).frames
    wm.embed(frames[:4], PAYLOAD, KEY)  # warm caches
    t0 = time.perf_counter()
    marked = wm.embed(frames, PAYLOAD, KEY)
    t_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = wm.detect(marked, KEY)
    t_detect = time.perf_counter() - t0
    t0 = time.perf_counter()
    wm.detect(frames, KEY)
    t_none = time.perf_counter() - t0
    small = _resize(marked, 0.75)
    t0 = time.perf_counter()
    wm.detect(small, KEY)
    t_scaled = time.perf_counter() - t0
    assert found is not None and found.payload == PAYLOAD
    print(f"\nTiming, 10 s 512x512 24 fps ({len(frames)} frames, in memory, {_cores()} cores):")
    print(f"  embed {t_embed:.2f} s (target {TARGET_EMBED_S:.0f} s"
          + (", met)" if t_embed <= TARGET_EMBED_S else f", MISSED by {t_embed - TARGET_EMBED_S:.1f} s)"))
    print(f"  detect {t_detect:.2f} s marked, {t_none:.2f} s unmarked (full search), {t_scaled:.2f} s after 0.75x"
          f" (target {TARGET_DETECT_S:.0f} s"
          + (", met)" if max(t_detect, t_none, t_scaled) <= TARGET_DETECT_S else ", MISSED)"))


def bench_verify(tmp: Path) -> None:
    """What /v1/verify spends reading a video's watermark (under every key a deployment has used) and
    fingerprint: one decode shared by both readers (the service's ``read_upload``, which stops reading the mark
    at the first early check where it verifies) against a decode per reader and per key (``detect_video`` per key,
    then ``fingerprint_video``: how verification worked before)."""
    from governance.verification.reading import read_upload
    from media.limits import Meter

    spec = GenerationSpec(prompt="a forest at sunset", seed=7, width=512, height=512, duration_s=10.0)
    clip = ProceduralGenerator().generate(spec)
    path = tmp / "verify.mp4"
    write_video(path, Clip(wm.embed(clip.frames, PAYLOAD, KEY), clip.fps), crf=23)
    data = path.read_bytes()
    print(f"\nVerify reading, 10 s 512x512 24 fps H.264 ({len(data) // 1024} KiB, {_cores()} cores; "
          "the mark was made with the oldest key, so every key is tried):")
    print("  keys   per-reader decodes   one decode   ratio")
    for n_keys in (1, 3):
        keys = [wm.WatermarkKey.generate() for _ in range(n_keys - 1)] + [KEY]
        times = {}
        for name in ("separate", "shared", "separate", "shared"):  # interleaved; the best of two each
            t0 = time.perf_counter()
            if name == "separate":
                found = next((f for f in (wm.detect_video(data, k, max_frames=240) for k in keys) if f), None)
                fp = fpr.fingerprint_video(data)
            else:
                read = read_upload(data, "video", watermark_keys=keys, fingerprint=True, meter=Meter())
                mark = read.watermark()
                found = None if mark is None else mark[0]
                fp = read.fingerprint()
            elapsed = time.perf_counter() - t0
            times[name] = min(times.get(name, elapsed), elapsed)
            assert found is not None and found.payload == PAYLOAD and fp is not None
        print(f"  {n_keys:>4}   {times['separate']:>16.2f} s   {times['shared']:>8.2f} s   "
              f"{times['separate'] / times['shared']:.2f}x")


def bench_readback(tmp: Path) -> None:
    """What the gate's read-back of the watermark (decode + detect of the encoded file) adds to sealing,
    against the H.264 encode it follows, at the service's default size and at 512p."""
    print(f"\nGate read-back ({_cores()} cores; best of two):")
    print("  clip                     embed      encode   read back   read back / encode")
    for side, seconds in ((256, 4.0), (512, 10.0)):
        spec = GenerationSpec(prompt="a city at night", seed=1, width=side, height=side, duration_s=seconds)
        clip = ProceduralGenerator().generate(spec)
        best = {"embed": float("inf"), "encode": float("inf"), "read": float("inf")}
        for _ in range(2):
            t0 = time.perf_counter()
            marked = wm.embed(clip.frames, PAYLOAD, KEY)
            t1 = time.perf_counter()
            write_video(tmp / "readback.mp4", Clip(marked, clip.fps), crf=18)
            t2 = time.perf_counter()
            found = wm.detect_video(tmp / "readback.mp4", KEY, max_frames=240, early=True)
            t3 = time.perf_counter()
            assert found is not None and found.payload == PAYLOAD
            for k, v in (("embed", t1 - t0), ("encode", t2 - t1), ("read", t3 - t2)):
                best[k] = min(best[k], v)
        print(f"  {seconds:>4.0f} s {side}x{side} 24 fps   {best['embed']:>5.2f} s   {best['encode']:>5.2f} s   "
              f"{best['read']:>7.2f} s   {best['read'] / best['encode']:.2f}")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


LEGACY_REV = "0d2d561bb55781d2ba8dcfd4c3be26ae59ce4bf1"
"""The last main commit before the repost views (issue #11 item 4): its watermark and fingerprint modules are
what :func:`bench_reposts_cost` compares against."""


def _legacy_modules(tmp: Path) -> tuple[ModuleType, ModuleType] | None:
    """provenance.watermark and provenance.fingerprint as they were at :data:`LEGACY_REV` (from git), or None."""
    root = Path(__file__).resolve().parents[1]
    out = []
    for name in ("watermark", "fingerprint"):
        try:
            source = subprocess.run(["git", "-C", str(root), "show", f"{LEGACY_REV}:provenance/{name}.py"],
                                    capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        path = tmp / f"legacy_{name}.py"
        path.write_bytes(source)
        spec = importlib.util.spec_from_file_location(f"legacy_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        out.append(module)
    return out[0], out[1]


def _verify_read(data: bytes, wmod: ModuleType, fmod: ModuleType, index: object) -> tuple[float, float, bool, bool]:
    """What /v1/verify does with a video's pixels (``governance.verification.services._read``, then the watermark
    search under one key and the fingerprint lookup), with the given modules: (seconds decoding and
    reading, seconds searching, watermark found, fingerprint matched)."""
    from media.video import iter_frames

    t0 = time.perf_counter()
    evidence, prints = wmod.Evidence(), fmod.FingerprintBuilder()
    for i, (_, frame) in enumerate(iter_frames(data)):
        if i < wm.DETECT_MAX_FRAMES:  # as verification reads it
            evidence.add(frame)
        prints.add(frame)
    t1 = time.perf_counter()
    found = evidence.detect(wmod.WatermarkKey(KEY.secret))
    matches = index.match(prints.fingerprint())  # type: ignore[attr-defined]
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, found is not None and found.payload == PAYLOAD, bool(matches)


def bench_reposts_cost(tmp: Path) -> None:
    """Verification's reading of a video with the repost views (mirror, half-size image, padded-picture and
    mirrored fingerprint views) against the detector and fingerprint of :data:`LEGACY_REV`, in one run (each
    time the best of five, the two interleaved)."""
    legacy = _legacy_modules(tmp)
    if legacy is None:
        print(f"\nRepost views' cost: skipped (git cannot show {LEGACY_REV[:7]} here)")
        return
    gen = ProceduralGenerator()
    spec = GenerationSpec(prompt="a sailing boat at sunset", seed=7, width=256, height=256, duration_s=4.0)
    frames = gen.generate(spec).frames
    release = _mp4(wm.embed(frames, PAYLOAD, KEY), tmp, crf=18)
    shown = read_video(release, with_audio=False).frames
    big = gen.generate(GenerationSpec(prompt="a forest at sunset", seed=7, width=512, height=512, duration_s=10.0))
    cases = {
        "released 256x256 4 s, as downloaded": release,
        "the same, unmarked (nothing to find)": _mp4(frames, tmp, crf=18),
        "512x512 10 s, crf 23": _mp4(wm.embed(big.frames, PAYLOAD, KEY), tmp, crf=23),
        "256x256 mirrored + crf28": _mp4(mirror(shown), tmp, crf=28),
        "256x256 2.8x, 9:16 black bars + crf28": _mp4(pad(scale(shown, 2.8), 9, 16), tmp, crf=28),
    }
    rng = np.random.default_rng(3)
    stored = [rng.integers(-127, 128, (fpr.SAMPLES, fpr._DIMS), dtype=np.int8) for _ in range(999)]
    released_fp = fpr.fingerprint_frames(shown, query_views=False).data
    indexes = {}
    for name, fmod in (("old", legacy[1]), ("new", fpr)):
        idx = fmod.FingerprintIndex()
        for i, vectors in enumerate([released_fp, *stored]):
            idx.add(f"clip-{i}", fmod.Fingerprint(vectors))
        indexes[name] = idx
    print(f"\nRepost views' cost: verification's reading (decode, watermark evidence of the first 240 frames, "
          f"fingerprint thumbnails, search under one key, lookup among 1,000 fingerprints) before them "
          f"({LEGACY_REV[:7]}) and now, best of five interleaved runs, {_cores()} cores")
    print("| video | before: decode + read / search | now: decode + read / search | now / before | "
          "found before (mark, print) | found now |")
    print("|---|---|---|---|---|---|")
    for label, data in cases.items():
        best: dict[str, tuple[float, float, bool, bool]] = {}
        for name in ("old", "new") * 5:
            wmod, fmod = (legacy if name == "old" else (wm, fpr))
            r = _verify_read(data, wmod, fmod, indexes[name])
            if name not in best or sum(r[:2]) < sum(best[name][:2]):
                best[name] = r
        old, new = best["old"], best["new"]
        print(f"| {label} | {old[0]:.2f} / {old[1]:.2f} s | {new[0]:.2f} / {new[1]:.2f} s | "
              f"{sum(new[:2]) / sum(old[:2]):.2f}x | {_yes(old[2])}, {_yes(old[3])} | {_yes(new[2])}, {_yes(new[3])} |",
              flush=True)


def _mp4(frames: np.ndarray, tmp: Path, *, crf: int) -> bytes:
    """24 fps H.264 at ``crf`` (preset veryfast), as bytes."""
    path = tmp / "cost.mp4"
    write_video(path, Clip(frames=_even(frames), fps=24.0), crf=crf, preset="veryfast")
    return path.read_bytes()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# --- part 3 ---------------------------------------------------------------------------------------


def corpus_prompts() -> list[str]:
    times = ("day", "sunset", "night", "")
    settings = ("hills", "city", "forest", "ocean", "snow", "desert")
    weather = ("", "rain", "snow")
    return [" ".join(p).strip() for p in itertools.product(times, settings, weather)]


def bench_fingerprint(n_clips: int, n_queries: int, tmp: Path) -> None:
    gen = ProceduralGenerator()
    prompts = corpus_prompts()
    index = fpr.FingerprintIndex()
    originals: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    fps_time = 0.0
    twins_skipped = 0
    seed = 0
    while len(index) < n_clips:
        spec = GenerationSpec(prompt=prompts[seed % len(prompts)] or "a quiet scene", seed=seed, width=128,
                              height=128, duration_s=2.0)
        seed += 1
        frames = gen.generate(spec).frames
        t1 = time.perf_counter()
        fp = fpr.fingerprint_frames(frames, query_views=False)
        fps_time += time.perf_counter() - t1
        # Released clips must be perceptually distinct: the generator sometimes draws the same empty scene
        # twice (a "twin"), which no perceptual fingerprint can tell apart; those are counted and replaced.
        if index.match(fp):
            twins_skipped += 1
            continue
        key = f"clip-{len(index):04d}"
        index.add(key, fp)
        if len(originals) < n_queries:
            originals[key] = frames
    build = time.perf_counter() - t0
    stored = {k: fpr.fingerprint_frames(v) for k, v in originals.items()}
    twins = {k: {m.key for m in index.distances(fp) if m.key != k and m.distance < index.threshold}
             for k, fp in stored.items()}
    nearest_unaltered = [next(m.distance for m in index.distances(fp) if m.key != k) for k, fp in stored.items()]
    table = attacks(tmp)
    chosen = {
        "h264 crf28": table["h264 crf28"],
        "h264 crf35": table["h264 crf35"],
        "resize 0.75x": table["resize 0.75x"],
        "crop 10%": table["crop 10%"],
        "crop 10% off-centre": table["crop 10% off-centre"],
        "crop 20% off-centre": table["crop 20% off-centre"],
        "brightness +20%": table["brightness +20%"],
        "fps 24->30 (blend)": table["fps 24->30 (blend)"],
        **{f"{name} + crf28": fn for name, fn in reposts(tmp).items()},
    }
    n_twins = sum(1 for t in twins.values() if t)
    print(f"\nFingerprint: {n_queries} altered copies looked up among {len(index)} released clips "
          f"(procedural, 128x128, 2 s; threshold {index.threshold}, ambiguity {fpr.AMBIGUITY})")
    print(f"index built in {build:.0f} s ({1000 * fps_time / n_clips:.1f} ms per stored fingerprint, "
          f"{len(next(iter(stored.values())).to_bytes())} bytes each); {twins_skipped} generated clips were twins "
          f"of an earlier one (distance under the threshold) and were replaced; {n_twins} of the {n_queries} "
          f"query originals still have a twin among the crop views; nearest other "
          f"clip to an unaltered original: min {min(nearest_unaltered):.3f}, median {np.median(nearest_unaltered):.3f}")
    print("| change | original returned | returned first | false match: other clip returned (of which twins) "
          "| genuine distance max | nearest other clip min |")
    print("|---|---|---|---|---|---|")
    for name, fn in chosen.items():
        found = first = false = false_twin = 0
        genuine: list[float] = []
        nearest_other: list[float] = []
        for key, frames in originals.items():
            q = fpr.fingerprint_frames(fn(Video(frames, 24.0)).frames)
            ranked = index.distances(q)
            genuine.append(next(m.distance for m in ranked if m.key == key))
            nearest_other.append(next(m.distance for m in ranked if m.key != key))
            matches = index.match(q)
            found += any(m.key == key for m in matches)
            first += bool(matches) and matches[0].key == key
            wrong = [m.key for m in matches if m.key != key]
            false += bool(wrong)
            false_twin += bool(wrong) and all(w in twins[key] for w in wrong)
        k = len(originals)
        print(f"| {name} | {found}/{k} | {first}/{k} | {false}/{k} ({false_twin}) | {max(genuine):.3f} | "
              f"{min(nearest_other):.3f} |", flush=True)
    t0 = time.perf_counter()
    for _ in range(20):
        index.match(stored[next(iter(stored))])
    print(f"lookup: {1000 * (time.perf_counter() - t0) / 20:.1f} ms per query over {len(index)} clips "
          f"({len(stored[next(iter(stored))].query_vectors())} views per query: stored, crops, padded, mirrored)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench watermark", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256p only, two clips, 200 fingerprint clips")
    parser.add_argument("--no-baseline", action="store_true", help="skip imwatermark (it imports torch)")
    parser.add_argument("--fp-clips", type=int, default=None, help="released clips in the fingerprint test")
    parser.add_argument("--reader", choices=("rgb", "planes", "verify"), default="rgb",
                        help="how part 1 reads the attacked copies (planes: the decoder's planes; verify: as "
                             "verification reads the mark, stopping early once it verifies)")
    parser.add_argument("--skip", choices=("watermark", "timing", "verify", "readback", "reposts", "fingerprint"),
                        action="append", default=[])
    args = parser.parse_args(argv)
    global READER
    READER = args.reader
    n_fp = args.fp_clips or (200 if args.quick else 1000)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "watermark" not in args.skip:
            bench_watermarks(args, tmp)
        if "timing" not in args.skip:
            bench_timing()
        if "verify" not in args.skip:
            bench_verify(tmp)
        if "readback" not in args.skip:
            bench_readback(tmp)
        if "reposts" not in args.skip:
            bench_reposts_cost(tmp)
        if "fingerprint" not in args.skip:
            bench_fingerprint(n_fp, min(40, n_fp), tmp)
    print(f"\nbenchmark finished in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
