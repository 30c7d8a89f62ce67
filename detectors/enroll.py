"""Enrollment: turn a person's photos (or frames of a short selfie video) into a :class:`Template`.

Every image must show exactly one face, all images must show the same person, and at least one face
must be large and sharp enough. Rejections raise :class:`~detectors.errors.EnrollmentError` with a
stable ``reason``::

    >>> from media.video import load_image
    >>> from detectors.enroll import Template, enroll
    >>> photos = [load_image(f"../shared/testdata/faces/{n}") for n in ("obama.jpg", "obama2.jpg")]
    >>> template = enroll(photos)
    >>> template.embeddings.shape, template.backend
    ((2, 128), 'dlib-resnet-v1')
    >>> Template.from_bytes(template.to_bytes()).embeddings.shape
    (2, 128)

A template from the live challenge (:mod:`detectors.liveness`) also says which head pose each
embedding was taken in (``Template.bins``, one of :data:`POSE_BINS` per row); photo templates and
templates stored before the live check have no bins (``()``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from detectors.errors import DetectorError, EnrollmentError
from detectors.faces import Face, FaceBackend, as_rgb, crop_face, default_backend
from detectors.matching import threshold_for
from detectors.template import POSE_BINS, Template, merge_templates

__all__ = [
    "MAX_TEMPLATE_EMBEDDINGS", "MIN_POSE_SPREAD", "MIN_SHARPNESS", "MIN_VIDEO_FRAMES", "POSE_BINS", "Template",
    "enroll", "enroll_video", "face_sharpness", "merge_templates",
]

#: At most this many embeddings are kept per template (the most distinct of the largest faces).
MAX_TEMPLATE_EMBEDDINGS: Final = 10
#: Faces whose :func:`face_sharpness` is below this are "too_blurry". Sharp portraits measure
#: 160-800; a Gaussian blur of sigma 2 px on a 100 px face brings them to 10-30.
MIN_SHARPNESS: Final = 20.0

_MAX_SIDE: Final = 1600  # larger photos are downscaled first: faces stay big, HOG stays fast
_SMALL_IMAGE: Final = 400  # below this shorter side, detect with one upsampling (finds ~40 px faces)
_DUPLICATE: Final = 0.06  # embeddings closer than this add nothing to a template
_POSE_BIN: Final = 0.1  # template embeddings are spread over head-yaw bins this wide
_VIDEO_STEP: Final = 1.1  # in a selfie video, successive samples may differ by this times the match threshold
#: A selfie video's head yaw (:func:`detectors.faces.yaw_from_landmarks`) must vary at least this much.
#: Measured: a person turning their head 0.45; a still photo moved, zoomed and tilted in front of the
#: camera 0.08 (docs/face-matching.md).
MIN_POSE_SPREAD: Final = 0.2
#: A selfie video needs at least this many frames with a usable face.
MIN_VIDEO_FRAMES: Final = 5
def face_sharpness(rgb: np.ndarray, face: Face) -> float:
    """Variance of the Laplacian of the face resized to 100x100 gray: low means blurry."""
    import cv2

    crop = crop_face(rgb, face.box, margin=0.0)
    gray = cv2.cvtColor(cv2.resize(crop, (100, 100), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F).var())


@dataclass(frozen=True, eq=False)
class _Candidate:
    image: int
    rgb: np.ndarray
    face: Face
    sharpness: float


def _prepare(image: np.ndarray, position: int) -> np.ndarray:
    try:
        rgb = as_rgb(image)
    except DetectorError as e:
        raise EnrollmentError("unreadable", f"image {position}: {e}") from e
    longest = max(rgb.shape[:2])
    if longest > _MAX_SIDE:
        import cv2

        scale = _MAX_SIDE / longest
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb


def _detect(backend: FaceBackend, rgb: np.ndarray) -> list[Face]:
    small = min(rgb.shape[:2]) < _SMALL_IMAGE
    faces = backend.faces(rgb, upsample=1 if small else 0)
    if not faces and not small:
        # Upsample 0 misses faces under ~80 px; look again so a small face reads as "too small", not "none".
        faces = backend.faces(rgb, upsample=1)
    return faces


def _candidates(images: Sequence[np.ndarray], backend: FaceBackend, min_face_px: int
                ) -> tuple[list[_Candidate], int, int]:
    """The usable face of every image (one face, large and sharp enough), and how many were too small
    or too blurry. A second face in any image is ``multiple_people``."""
    accepted: list[_Candidate] = []
    too_small = too_blurry = 0
    for position, image in enumerate(images):
        rgb = _prepare(image, position)
        faces = _detect(backend, rgb)
        if not faces:
            continue
        main = faces[0]
        others = [f for f in faces[1:] if f.box.size >= min(min_face_px, main.box.size / 2)]
        if others:
            raise EnrollmentError(
                "multiple_people",
                f"image {position} shows {len(others) + 1} faces; each image must show only the person enrolling",
            )
        if main.box.size < min_face_px:
            too_small += 1
            continue
        sharpness = face_sharpness(rgb, main)
        if sharpness < MIN_SHARPNESS:
            too_blurry += 1
            continue
        accepted.append(_Candidate(position, rgb, main, sharpness))
    return accepted, too_small, too_blurry


def _quality(c: _Candidate) -> float:
    """Bigger and sharper is better; sharpness stops mattering once a face is clearly sharp."""
    return float(c.face.box.size) * min(1.0, c.sharpness / (4 * MIN_SHARPNESS))


def _yaw(c: _Candidate) -> float:
    return float(c.face.pose) if c.face.pose is not None else 0.0


def _select(accepted: list[_Candidate], dist: np.ndarray) -> tuple[list[int], int]:
    """Up to MAX_TEMPLATE_EMBEDDINGS candidates, spread over head poses (best quality first within each
    pose bin, bins taken in turn), skipping near-duplicates; and the one to crop the reference from (the
    most frontal of the good ones)."""
    bins: dict[int, list[int]] = {}
    for k in sorted(range(len(accepted)), key=lambda k: _quality(accepted[k]), reverse=True):
        bins.setdefault(round(_yaw(accepted[k]) / _POSE_BIN), []).append(k)
    queues = sorted(bins.values(), key=lambda q: _quality(accepted[q[0]]), reverse=True)
    kept: list[int] = []
    while any(queues) and len(kept) < MAX_TEMPLATE_EMBEDDINGS:
        for q in queues:
            while q:
                k = q.pop(0)
                if all(dist[k, m] >= _DUPLICATE for m in kept):
                    kept.append(k)
                    break
            if len(kept) == MAX_TEMPLATE_EMBEDDINGS:
                break
    best = max(_quality(c) for c in accepted)
    good = [k for k in range(len(accepted)) if _quality(accepted[k]) >= 0.7 * best]
    reference = min(good, key=lambda k: (abs(_yaw(accepted[k])), -_quality(accepted[k])))
    return kept, reference


def _same_person_in_video(accepted: list[_Candidate], emb: np.ndarray, dist: np.ndarray, threshold: float) -> None:
    """In a selfie video one face turns, so its first and last frames may be further apart than the
    threshold (0.68 was measured for one person). Instead: every face is within the threshold of the
    mean face, and no two successive samples jump further than a little over it (a switch to someone
    else is a jump, measured >= 0.62 for dlib)."""
    steps = [float(dist[k, k + 1]) for k in range(len(accepted) - 1)]
    if steps and max(steps) > threshold * _VIDEO_STEP:
        k = int(np.argmax(steps))
        raise EnrollmentError(
            "multiple_people", f"the face changes between frames {accepted[k].image} and {accepted[k + 1].image} "
            f"(distance {steps[k]:.2f} > {threshold * _VIDEO_STEP:.2f}); the video must show only the person enrolling")
    to_mean = np.linalg.norm(emb - emb.mean(axis=0), axis=1)
    if float(to_mean.max()) > threshold:
        k = int(np.argmax(to_mean))
        raise EnrollmentError(
            "multiple_people", f"frame {accepted[k].image} does not show the same person as the others "
            f"(distance {to_mean[k]:.2f} from their mean > {threshold:.2f})")


def enroll(
    images: Sequence[np.ndarray],
    backend: FaceBackend | None = None,
    *,
    min_face_px: int = 60,
    require_pose_change: bool = False,
) -> Template:
    """Build a :class:`Template` from photos or sampled selfie-video frames of one person.

    Per image: no face (or only faces smaller than ``min_face_px`` or too blurry) -> the image is skipped;
    more than one face -> ``"multiple_people"`` (a second face counts when it is at least
    ``min_face_px`` or half the main face's size). Across images: any two faces further apart than the
    backend's match threshold -> ``"multiple_people"``. When no image is usable the reason is
    ``"too_blurry"``, ``"face_too_small"`` or ``"no_face"``, in that order of precedence. With
    ``require_pose_change`` (selfie videos, see :func:`enroll_video`), faces whose head yaw never varies
    by :data:`MIN_POSE_SPREAD` are ``"single_pose"``: what a replayed still photo looks like.

    The template keeps up to :data:`MAX_TEMPLATE_EMBEDDINGS` embeddings of the largest, sharpest faces
    spread over the head poses seen; the reference crop is the most frontal of the best faces.
    """

    backend = backend or default_backend()
    if min_face_px < 1:
        raise ValueError(f"min_face_px must be >= 1, got {min_face_px}")
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]  # one image passed bare
    if len(images) == 0:
        raise EnrollmentError("no_face", "no images were given")
    threshold = threshold_for(backend)

    accepted, too_small, too_blurry = _candidates(images, backend, min_face_px)
    if not accepted:
        n = len(images)
        if too_blurry:
            raise EnrollmentError("too_blurry", f"every face found in the {n} image(s) is too blurry to enroll")
        if too_small:
            raise EnrollmentError(
                "face_too_small", f"every face found in the {n} image(s) is smaller than {min_face_px} px"
            )
        raise EnrollmentError("no_face", f"no face was found in any of the {n} image(s)")

    emb = np.stack([c.face.embedding for c in accepted])
    dist = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    if require_pose_change:
        _same_person_in_video(accepted, emb, dist, threshold)
    else:
        i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[i, j] > threshold:
            a, b = accepted[int(i)].image, accepted[int(j)].image
            raise EnrollmentError(
                "multiple_people",
                f"images {min(a, b)} and {max(a, b)} do not show the same person "
                f"(distance {dist[i, j]:.2f} > {threshold:.2f})",
            )
    if require_pose_change:
        if len(accepted) < MIN_VIDEO_FRAMES:
            raise EnrollmentError(
                "too_short", f"only {len(accepted)} of {len(images)} frames show a usable face; "
                f"at least {MIN_VIDEO_FRAMES} are needed (hold the face steady, in good light, close to the camera)")
        yaws = [_yaw(c) for c in accepted]
        spread = max(yaws) - min(yaws)
        if spread < MIN_POSE_SPREAD:
            raise EnrollmentError(
                "single_pose", f"the head never turns (pose spread {spread:.2f} < {MIN_POSE_SPREAD:.2f}); "
                "turn the head slowly left and right while recording (a still photo is not accepted)")

    kept, ref = _select(accepted, dist)
    best = accepted[ref]
    return Template(
        embeddings=emb[kept],
        backend=backend.name,
        reference=crop_face(best.rgb, best.face.box),
    )


def _video_frames(source: str | os.PathLike[str] | np.ndarray | Sequence[np.ndarray], max_samples: int,
                  max_seconds: float) -> list[np.ndarray]:
    if isinstance(source, (str, os.PathLike)):
        from media.video import MediaError, iter_frames, probe, sample_frames

        try:
            info = probe(source)
            limit = max(1, round(max_seconds * info.fps))
            if info.frame_count > 0:
                every = max(1, min(limit, info.frame_count) // max_samples)
                frames = [f for _, f in iter_frames(source, every=every, max_frames=limit)]
            else:  # a browser's recording states no length: spread the samples over what it really holds
                frames = sample_frames(source, max_samples, max_frames=limit)
        except MediaError as e:
            raise EnrollmentError("unreadable", f"the selfie video cannot be read: {e}") from e
    else:
        all_frames = list(source) if not isinstance(source, np.ndarray) else source
        every = max(1, len(all_frames) // max_samples)
        frames = [all_frames[i] for i in range(0, len(all_frames), every)]
    return frames[:max_samples]


def enroll_video(
    source: str | os.PathLike[str] | np.ndarray | Sequence[np.ndarray],
    backend: FaceBackend | None = None,
    *,
    min_face_px: int = 60,
    max_samples: int = 24,
    max_seconds: float = 15.0,
) -> Template:
    """Enroll from a short selfie video (a file, or decoded RGB frames) in which the owner turns their
    head: up to ``max_samples`` frames spread over the first ``max_seconds`` are judged as in
    :func:`enroll` with ``require_pose_change=True``, so a replayed still photo is ``"single_pose"`` and
    a clip with too few usable frames is ``"too_short"``."""
    frames = _video_frames(source, max_samples, max_seconds)
    if not frames:
        raise EnrollmentError("too_short", "the selfie video has no frames")
    return enroll(frames, backend, min_face_px=min_face_px, require_pose_change=True)
