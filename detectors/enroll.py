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
from collections.abc import Iterator, Sequence
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
#: A selfie video's faces are one person unless (:func:`_video_split`; in units of the backend's match threshold,
#: measured for dlib, whose threshold is 0.50, with ``python -m bench selfie``: docs/face-matching.md, "Selfie
#: videos"): one face is further than ``_VIDEO_LOOK`` (0.60, the live check's pose allowance) from the mean of the
#: others (one person's faces came up to 0.59, the real clip's up to 0.61-0.64 in 250-500 kbit/s VP8; a detector's
#: false face 0.80); or the faces split into two groups whose mean faces are further apart than ``_VIDEO_PAIR``
#: (0.55, where the scanner splits a track) when the smaller group holds 2 faces, or ``_VIDEO_GROUP`` (the threshold
#: itself) when it holds 3 or more (one person's groups came up to 0.58 and 0.515; two people's whole videos were
#: 0.55-0.84 apart). A face within the limit but further than the threshold from the mean of the others is kept out
#: of the template: it cannot be told from a lookalike cut in.
_VIDEO_LOOK: Final = 1.2
_VIDEO_PAIR: Final = 1.1
_VIDEO_GROUP: Final = 1.0
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


@dataclass(frozen=True)
class _Split:
    """Faces of a selfie video that do not look like the others: their positions in the sequence (one face, or
    the smaller of two groups), how far they (their mean face) are from the others' mean face, and the limit."""

    faces: tuple[int, ...]
    distance: float
    limit: float


def _from_the_others(emb: np.ndarray) -> np.ndarray:
    """``(n,)``: each of the ``(n, d)`` embeddings' distance from the mean of the other ``n - 1`` (n >= 2)."""
    n = len(emb)
    return np.asarray(np.linalg.norm(emb - (emb.sum(axis=0) - emb) / (n - 1), axis=1))


def _groups(emb: np.ndarray) -> Iterator[tuple[tuple[int, ...], float]]:
    """The ways :func:`_video_split` splits the ``(n, d)`` embeddings in two (n >= 4): the two sides of every cut of
    them sorted along their first and second principal directions, each side at least 2. Yields the faces of the
    smaller side (of two equal ones, the later) and how far apart the two sides' mean faces are."""
    n = len(emb)
    if n < 4:
        return
    total = emb.sum(axis=0)
    centred = emb - emb.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    for axis in axes[:2]:
        order = np.argsort(centred @ axis, kind="stable")
        sums = np.cumsum(emb[order], axis=0)
        for i in range(2, n - 1):
            low, high = order[:i], order[i:]
            group = low if i < n - i or (i == n - i and low.min() > high.min()) else high
            distance = float(np.linalg.norm(sums[i - 1] / i - (total - sums[i - 1]) / (n - i)))
            yield tuple(sorted(int(j) for j in group)), distance


def _video_split(emb: np.ndarray, threshold: float) -> _Split | None:
    """The worst sign (the largest ``distance / limit``) that the ``(n, d)`` embeddings of a selfie video's
    faces, in time order, show more than one person; ``None`` when they show one.

    One face further than ``_VIDEO_LOOK * threshold`` from the mean of all the others is someone else (or a face
    too spoilt to trust): that catches another person cut in for a moment, too short to form a group. Two groups
    of faces (:func:`_groups`) whose mean faces are further apart than ``_VIDEO_PAIR`` (2 faces in the smaller
    group) or ``_VIDEO_GROUP`` (3 or more) times ``threshold`` are two people: a cut, a cross-fade or a morph to
    someone else, or two people's faces interleaved (the principal directions are where two people's faces lie
    apart, whatever their order in time).

    Why not successive faces, as the rule this replaced did (0.55 between neighbours): in the real clip two
    neighbouring samples of one person came up to 0.75 apart (0.83 with a detector's false face), since each carries
    its own compression noise, expression and pose, so that rule refused 24 % of one person's sampled videos (57 % of
    the real clip's); means of several faces average that out, and a switch to someone else persists.
    """
    return _video_faces(emb, threshold).split


def _worst_split(emb: np.ndarray, far: np.ndarray, threshold: float) -> _Split | None:
    """:func:`_video_split` of the ``(n, d)`` embeddings (n >= 2), given each one's distance from the mean of the
    others (``far``, :func:`_from_the_others`)."""
    worst: _Split | None = None

    def consider(faces: tuple[int, ...], distance: float, limit: float) -> None:
        nonlocal worst
        if distance > limit and (worst is None or distance / limit > worst.distance / worst.limit):
            worst = _Split(faces, distance, limit)

    k = int(np.argmax(far))
    consider((k,), float(far[k]), threshold * _VIDEO_LOOK)
    for faces, distance in _groups(emb):
        consider(faces, distance, threshold * (_VIDEO_PAIR if len(faces) == 2 else _VIDEO_GROUP))
    return worst


@dataclass(frozen=True)
class _VideoFaces:
    """What enrollment makes of a selfie video's faces: the worst sign of a second person (:func:`_video_split`),
    the faces that may become template rows (``trusted``: within the threshold of the mean of the others; all of
    them when there is one face) and each face's distance from that mean (``far``; empty for one face)."""

    split: _Split | None
    trusted: list[int]
    far: np.ndarray

    @property
    def one_person(self) -> bool:
        """Accepted: no sign of a second person, and at least one face near the others."""
        return self.split is None and bool(self.trusted)


def _video_faces(emb: np.ndarray, threshold: float) -> _VideoFaces:
    """The judgement of the ``(n, d)`` embeddings of a selfie video's faces, in time order (the rule of
    :func:`_same_person_in_video`, which turns a refusal into its error; ``python -m bench selfie`` measures it)."""
    if len(emb) < 2:
        return _VideoFaces(None, list(range(len(emb))), np.zeros(0))
    far = _from_the_others(emb)
    return _VideoFaces(_worst_split(emb, far, threshold), [int(k) for k in np.flatnonzero(far <= threshold)], far)


def _spans(numbers: Sequence[int]) -> str:
    """``[2, 3, 4, 9]`` -> ``"2-4, 9"``."""
    runs: list[list[int]] = []
    for x in sorted(numbers):
        if runs and x == runs[-1][1] + 1:
            runs[-1][1] = x
        else:
            runs.append([x, x])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _same_person_in_video(accepted: list[_Candidate], emb: np.ndarray, threshold: float) -> list[int]:
    """The faces of a selfie video to build the template from: those within ``threshold`` of the mean of the
    others. ``multiple_people`` when :func:`_video_split` finds more than one person, or when no face is that
    near the others, naming the sampled frames (their positions among the frames given, from 0) and distances."""
    n = len(accepted)
    judged = _video_faces(emb, threshold)
    split = judged.split
    if split is not None:
        frames = [accepted[k].image for k in split.faces]
        if len(frames) == 1:
            raise EnrollmentError(
                "multiple_people", f"the face in sampled frame {frames[0]} is {split.distance:.3f} from the mean face "
                f"of the other {n - 1} (more than {split.limit:.3f}): it does not look like the same person; the "
                "video must show only the person enrolling")
        raise EnrollmentError(
            "multiple_people", f"the faces in sampled frames {_spans(frames)} do not look like the same person as the "
            f"other {n - len(frames)} (their mean faces are {split.distance:.3f} apart, more than {split.limit:.3f}); "
            "the video must show only the person enrolling")
    if not judged.trusted:
        raise EnrollmentError(
            "multiple_people", f"no face of the {n} is within {threshold:.2f} of the mean face of the others (the "
            f"nearest is {float(judged.far.min()):.3f}): they do not agree on one person")
    return judged.trusted


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
    ``require_pose_change`` (selfie videos, see :func:`enroll_video`; ``images`` are then its frames in time
    order) a turning head's first and last faces may be further apart than the threshold, so the faces are
    judged as one person's instead (:func:`_video_split`: one face far from the mean of the others, or two
    groups of faces far apart -> ``"multiple_people"``; a face further than the threshold from the mean of the
    others is left out of the template), fewer than :data:`MIN_VIDEO_FRAMES` usable faces are ``"too_short"``
    (judged first), and faces whose head yaw never varies by :data:`MIN_POSE_SPREAD` are ``"single_pose"``: what
    a replayed still photo looks like.

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
    trusted = list(range(len(accepted)))
    if require_pose_change:
        if len(accepted) < MIN_VIDEO_FRAMES:
            raise EnrollmentError(
                "too_short", f"only {len(accepted)} of {len(images)} frames show a usable face; "
                f"at least {MIN_VIDEO_FRAMES} are needed (hold the face steady, in good light, close to the camera)")
        trusted = _same_person_in_video(accepted, emb, threshold)
        yaws = [_yaw(c) for c in accepted]
        spread = max(yaws) - min(yaws)
        if spread < MIN_POSE_SPREAD:
            raise EnrollmentError(
                "single_pose", f"the head never turns (pose spread {spread:.2f} < {MIN_POSE_SPREAD:.2f}); "
                "turn the head slowly left and right while recording (a still photo is not accepted)")
    else:
        i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[i, j] > threshold:
            a, b = accepted[int(i)].image, accepted[int(j)].image
            raise EnrollmentError(
                "multiple_people",
                f"images {min(a, b)} and {max(a, b)} do not show the same person "
                f"(distance {dist[i, j]:.2f} > {threshold:.2f})",
            )

    kept, ref = _select([accepted[k] for k in trusted], dist[np.ix_(trusted, trusted)])
    kept, best = [trusted[k] for k in kept], accepted[trusted[ref]]
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
