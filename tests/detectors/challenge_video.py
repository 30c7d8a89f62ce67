"""Challenge videos made from real photos, for the live check's tests and its calibration.

There is no real head-turn selfie video in ``../shared/testdata``, so one is made from a photo: the face
is cut out square, and in every frame the head is turned by re-projecting the photo's pixels as if they
lay on an ellipsoid (the head) rotated about its centre, blended smoothly into the unmoved background.
That moves the nose across the face and squeezes the far cheek, as a turning head does, without using
the landmark model the check measures with. The head follows the asked poses (about 1 s each: 0.4 s to
get there, the rest held), with a slow sway of a degree or two, a hand-held camera's drift and zoom,
and sensor noise, so no two frames are alike; the frames are encoded with H.264 through
:mod:`media.video`. Also here: the attacks the check must refuse (a still photo replayed as a video, a
slideshow of photos, two people spliced together).

Used by ``tests/detectors/test_liveness.py`` (through its fixture) and by ``python -m bench liveness``,
both of which load this file by path (the tests folder is not a package).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detectors.headpose import default_landmarks
from media.video import Clip, read_video, write_video

#: The head's rotation for each pose, degrees (yaw to the person's left, pitch chin up), as the warp
#: applies it; what the landmark fit then measures is in docs/enrollment.md.
POSE_ANGLES: dict[str, tuple[float, float]] = {
    "center": (0.0, 0.0), "left": (40.0, 0.0), "right": (-40.0, 0.0), "up": (0.0, 35.0), "down": (0.0, -35.0),
}
_CROP: float = 2.4  # the square crop's side, in face widths (the HOG box)


def face_crop(photo: np.ndarray, size: int = 320) -> tuple[np.ndarray, tuple[float, float], float]:
    """The photo's (largest) face cut out square, ``_CROP`` face widths a side, resized to ``size``;
    with the head's centre ``(x, y)`` and the face's width in the crop's pixels."""
    import cv2

    rgb = np.asarray(photo)
    scale = min(1.0, 1000.0 / max(rgb.shape[:2]))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    found = default_landmarks().detect(small) or default_landmarks().detect(small, upsample=1)
    if not found:
        raise ValueError("no face in the photo")
    box, points = found[0]
    cx, cy = (points.min(axis=0) + points.max(axis=0)) / 2.0 / scale
    face = box.width / scale
    side = round(_CROP * face)
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    pad = side
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    k = size / side
    return np.ascontiguousarray(crop), ((cx - x0) * k, (cy - y0) * k), face * k


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    a, b = np.radians(yaw), np.radians(pitch)
    turn = np.array([[np.cos(a), 0.0, -np.sin(a)], [0.0, 1.0, 0.0], [np.sin(a), 0.0, np.cos(a)]])
    nod = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(b), np.sin(b)], [0.0, -np.sin(b), np.cos(b)]])
    return nod @ turn


def head_turn(crop: np.ndarray, centre: tuple[float, float], face: float, yaw: float, pitch: float) -> np.ndarray:
    """``crop`` with the head turned by ``yaw`` / ``pitch`` degrees: each output pixel inside the head's
    ellipsoid (0.8 x 1.15 x 0.8 face widths, centred a little above ``centre``) shows the photo's pixel that the
    rotation brought there (orthographic projection); a soft band blends it into the unmoved background."""
    import cv2

    h, w = crop.shape[:2]
    a, b, c = 0.8 * face, 1.15 * face, 0.8 * face
    centre = (centre[0], centre[1] - 0.15 * face)  # the head's middle is above the landmarks' (the nose)
    rot = _rotation(yaw, pitch)
    quad = rot @ np.diag([1 / a**2, 1 / b**2, 1 / c**2]) @ rot.T
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = xx - centre[0], yy - centre[1]
    qa = quad[2, 2]
    qb = 2 * (quad[0, 2] * x + quad[1, 2] * y)
    qc = quad[0, 0] * x**2 + 2 * quad[0, 1] * x * y + quad[1, 1] * y**2 - 1
    disc = qb * qb - 4 * qa * qc
    z = (-qb - np.sqrt(np.maximum(disc, 0))) / (2 * qa)  # the surface facing the camera
    src = np.stack([x, y, z], axis=-1) @ rot  # rotate back: where that point was in the photo
    radius = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    alpha = np.clip((1.0 - radius) / 0.3, 0.0, 1.0) * (disc > 0)
    alpha = alpha * alpha * (3 - 2 * alpha)
    map_x = (alpha * src[..., 0] + (1 - alpha) * x + centre[0]).astype(np.float32)
    map_y = (alpha * src[..., 1] + (1 - alpha) * y + centre[1]).astype(np.float32)
    return np.asarray(cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))


def _smooth_noise(rng: np.random.Generator, n: int, amplitude: float, period: int) -> np.ndarray:
    """A slow random wobble: noise at every ``period`` frames, interpolated, of about ``amplitude``."""
    knots = rng.normal(0.0, amplitude, n // period + 2)
    return np.interp(np.arange(n) / period, np.arange(knots.size), knots)


def trajectory(poses: Sequence[str], fps: float, *, seconds_per_pose: float = 1.0, lead_s: float = 0.5,
               tail_s: float = 0.5, angles: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """``(T, 2)`` head angles (yaw, pitch) per frame: facing the camera for ``lead_s``, then each pose
    in turn (40 % of ``seconds_per_pose`` to get there, eased, the rest held), then back to the camera
    for ``tail_s``."""
    table = angles or POSE_ANGLES
    keys: list[tuple[float, tuple[float, float], tuple[float, float]]] = []  # (seconds, from, to)
    here = table["center"]
    keys.append((lead_s, here, here))
    for pose in poses:
        there = table[pose]
        keys.append((0.4 * seconds_per_pose, here, there))
        keys.append((0.6 * seconds_per_pose, there, there))
        here = there
    keys.append((tail_s, here, table["center"]))
    out = []
    for seconds, start, end in keys:
        frames = max(1, round(seconds * fps))
        for k in range(frames):
            s = (k + 1) / frames
            s = s * s * (3 - 2 * s)
            out.append((start[0] + (end[0] - start[0]) * s, start[1] + (end[1] - start[1]) * s))
    return np.array(out)


def challenge_frames(photo: np.ndarray, poses: Sequence[str], *, size: int = 320, fps: float = 20.0,
                     seed: int = 0, angles: dict[str, tuple[float, float]] | None = None,
                     seconds_per_pose: float = 1.0) -> np.ndarray:
    """``(T, size, size, 3)`` frames of the photo's face performing ``poses`` (see the module docstring)."""
    import cv2

    crop, centre, face = face_crop(photo, size)
    path = trajectory(poses, fps, angles=angles, seconds_per_pose=seconds_per_pose)
    n = len(path)
    rng = np.random.default_rng(seed)
    sway_yaw, sway_pitch = _smooth_noise(rng, n, 1.5, 6), _smooth_noise(rng, n, 1.0, 6)
    drift_x, drift_y = _smooth_noise(rng, n, 3.0, 10), _smooth_noise(rng, n, 2.0, 10)
    zoom = 1.0 + 0.03 * np.sin(np.arange(n) / n * 2 * np.pi) + _smooth_noise(rng, n, 0.01, 12)
    roll = _smooth_noise(rng, n, 1.0, 12)
    out = np.empty((n, size, size, 3), np.uint8)
    for t, (yaw, pitch) in enumerate(path):
        frame = head_turn(crop, centre, face, yaw + sway_yaw[t], pitch + sway_pitch[t])
        hand = cv2.getRotationMatrix2D(centre, float(roll[t]), float(zoom[t]))
        hand[:, 2] += (drift_x[t], drift_y[t])
        frame = cv2.warpAffine(frame, hand, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        noisy = frame.astype(np.float32) + rng.normal(0.0, 1.5, frame.shape)
        out[t] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def encode(frames: np.ndarray, fps: float = 20.0, *, crf: int = 23) -> bytes:
    """The frames as an H.264 MP4 file's bytes (libx264 through :func:`media.video.write_video`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "challenge.mp4"
        write_video(path, Clip(frames=np.ascontiguousarray(frames), fps=fps), crf=crf)
        return path.read_bytes()


def decode(data: bytes) -> tuple[np.ndarray, float]:
    """An MP4's frames and frame rate."""
    clip = read_video(data, with_audio=False)
    return clip.frames, clip.fps


def challenge_video(photo: np.ndarray, poses: Sequence[str], *, size: int = 320, fps: float = 20.0,
                    seed: int = 0, **kw: object) -> bytes:
    """:func:`challenge_frames` encoded with H.264."""
    return encode(challenge_frames(photo, poses, size=size, fps=fps, seed=seed, **kw), fps)  # type: ignore[arg-type]


def still_video(photo: np.ndarray, *, seconds: float = 4.0, size: int = 320, fps: float = 20.0) -> bytes:
    """One photo's face replayed as a video: the same frame ``seconds`` long."""
    crop, _, _ = face_crop(photo, size)
    return encode(np.repeat(crop[None], round(seconds * fps), axis=0), fps)


def slideshow_video(photos: Sequence[np.ndarray], *, hold_s: float = 0.5, rounds: int = 2, size: int = 320,
                    fps: float = 20.0) -> bytes:
    """Photos' faces shown one after another, each held ``hold_s``, the whole series ``rounds`` times."""
    crops = [face_crop(p, size)[0] for p in photos]
    hold = max(1, round(hold_s * fps))
    frames = [c for _ in range(rounds) for c in crops for _ in range(hold)]
    return encode(np.stack(frames), fps)


def spliced_frames(photo_a: np.ndarray, photo_b: np.ndarray, poses: Sequence[str], *, size: int = 320,
                   fps: float = 20.0, dissolve_s: float = 0.0, seed: int = 0) -> np.ndarray:
    """The challenge performed by the face of ``photo_a`` for the first half and by ``photo_b`` for the
    rest, both following the very same head motion; with ``dissolve_s`` the switch is a cross-fade that
    long instead of a cut."""
    a = challenge_frames(photo_a, poses, size=size, fps=fps, seed=seed)
    b = challenge_frames(photo_b, poses, size=size, fps=fps, seed=seed)
    n = min(len(a), len(b))
    mix = np.zeros(n, np.float32)
    half = n // 2
    width = max(1, round(dissolve_s * fps))
    if dissolve_s > 0:
        mix[half - width // 2:half - width // 2 + width] = np.linspace(0.0, 1.0, width)
        mix[half - width // 2 + width:] = 1.0
    else:
        mix[half:] = 1.0
    w = mix[:, None, None, None]
    return np.clip(a[:n] * (1 - w) + b[:n] * w + 0.5, 0, 255).astype(np.uint8)
