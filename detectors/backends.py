"""The face backend a deployment configured, by name: :func:`backend_from_settings`. The backends themselves
live in :mod:`detectors.faces` (dlib), :mod:`detectors.blazeface` (the video detector) and
:mod:`detectors.insightface`; this module is the one that knows all three::

    >>> from detectors.backends import backend_from_settings
    >>> backend_from_settings("dlib", detector="hog").name
    'dlib-resnet-v1'
    >>> backend_from_settings("opencv")
    Traceback (most recent call last):
    ...
    detectors.errors.DetectorError: unknown face backend 'opencv'; expected one of dlib, insightface
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from detectors.errors import DetectorError
from detectors.faces import DlibBackend, FaceBackend, default_backend

__all__ = ["BACKENDS", "DETECTORS", "backend_from_settings"]

_lock = threading.Lock()
#: The names :func:`backend_from_settings` accepts.
BACKENDS: Final = ("dlib", "insightface")
#: The detectors the dlib backend can scan video with: ``auto`` (BlazeFace when its model file is present,
#: else HOG), ``blazeface`` (required: a missing model is an error) or ``hog``.
DETECTORS: Final = ("auto", "blazeface", "hog")
_INSIGHTFACE_ENV: Final = "GOVERNANCE_INSIGHTFACE_DIR"
_scanning: dict[tuple[str, str], FaceBackend] = {}


def backend_from_settings(name: str = "dlib", model_dir: str | os.PathLike[str] | None = None, *,
                          providers: Sequence[str] | None = None, detector: str = "hog") -> FaceBackend:
    """The face backend a deployment configured: ``"dlib"`` (the process-wide default; ``model_dir``
    may point at other dlib model files) or ``"insightface"`` (``model_dir``, or the
    ``GOVERNANCE_INSIGHTFACE_DIR`` environment variable, must hold the operator's SCRFD and ArcFace
    ONNX files; see ``docs/insightface.md``). For dlib, ``detector`` (one of :data:`DETECTORS`) picks
    what finds faces in video: ``"blazeface"`` and ``"auto"`` give a :class:`DlibBackend` whose
    :meth:`~DlibBackend.detect` runs BlazeFace (``detectors.blazeface``; ``auto`` falls back to HOG when
    the model file is absent: ``make models`` fetches it). Unknown names and missing files raise
    :class:`DetectorError`."""
    key = (name or "").strip().lower()
    which = (detector or "").strip().lower()
    if which not in DETECTORS:
        raise DetectorError(f"unknown face detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    if key == "dlib":
        if which != "hog":
            from detectors.blazeface import BlazeFaceDetector, default_model_path

            if which == "auto" and not default_model_path().is_file():
                which = "hog"
            else:
                cache = (str(model_dir or ""), str(default_model_path()))
                with _lock:
                    if cache not in _scanning:
                        _scanning[cache] = DlibBackend(Path(model_dir) if model_dir is not None else None,
                                                       detector=BlazeFaceDetector())
                    return _scanning[cache]
        return default_backend() if model_dir is None else DlibBackend(Path(model_dir))
    if key == "insightface":
        from detectors.insightface import InsightFaceBackend

        where = model_dir if model_dir is not None else os.environ.get(_INSIGHTFACE_ENV)
        if not where:
            raise DetectorError(f"the insightface backend needs a model directory ({_INSIGHTFACE_ENV})")
        return InsightFaceBackend(where, providers=providers)
    raise DetectorError(f"unknown face backend {name!r}; expected one of {', '.join(BACKENDS)}")
