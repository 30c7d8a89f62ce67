"""onnxruntime sessions for the operator's ONNX models (face backend, image encoder): which execution providers,
and a session whose loading errors are :class:`~detectors.errors.DetectorError`. onnxruntime loads lazily, on
first use::

    >>> from pathlib import Path
    >>> from detectors.onnx import load_session
    >>> load_session(Path("/nonexistent.onnx"), ["CPUExecutionProvider"])
    Traceback (most recent call last):
    ...
    detectors.errors.DetectorError: onnxruntime cannot load nonexistent.onnx: ...
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from detectors.errors import DetectorError

__all__ = ["DEFAULT_PROVIDERS", "choose_providers", "load_session"]

#: The GPU first, then the CPU (onnxruntime-gpu falls back to the CPU when no GPU is visible).
DEFAULT_PROVIDERS: Final = ("CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(requested: Sequence[str] | None) -> list[str]:
    """The onnxruntime execution providers to use: ``requested`` (or :data:`DEFAULT_PROVIDERS`) less those this
    onnxruntime build lacks; none left is a :class:`DetectorError`."""
    import onnxruntime as ort

    wanted = list(requested) if requested else list(DEFAULT_PROVIDERS)
    available = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise DetectorError(f"none of the onnxruntime providers {wanted} is available here "
                            f"(available: {sorted(available)})")
    return chosen


def load_session(path: Path, providers: list[str]) -> Any:
    """An ``onnxruntime.InferenceSession`` for the model file at ``path``; a file onnxruntime cannot load is a
    :class:`DetectorError` naming it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no "CUDA libraries missing" chatter when falling back to CPU
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise DetectorError(f"onnxruntime cannot load {path.name}: {e}") from e
