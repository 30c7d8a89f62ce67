"""The video generator a deployment configured, by name: :func:`get_generator`. The interface is
:mod:`generator.base`; the backends are :mod:`generator.procedural` (no weights) and
:mod:`generator.diffusers_video` (a local model directory)::

    >>> from generator.backends import get_generator
    >>> get_generator("procedural").info.name
    'consentgate-procedural'
"""

from __future__ import annotations

from typing import Any

from generator.base import GeneratorError, VideoGenerator

__all__ = ["get_generator"]

_KNOWN = ("procedural", "diffusers")


def get_generator(name: str, **options: Any) -> VideoGenerator:
    """Build the backend called ``name``: ``"procedural"`` (no weights), or ``"diffusers"`` with
    ``model_dir=`` a local model directory (see :mod:`generator.diffusers_video`)."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key == "procedural":
        from generator.procedural import ProceduralGenerator

        try:
            return ProceduralGenerator(**options)
        except TypeError as e:
            raise GeneratorError(f"bad options for the procedural generator {sorted(options)}: {e}") from e
    if key == "diffusers":
        from generator.diffusers_video import DiffusersGenerator

        options = dict(options)
        model_dir = options.pop("model_dir", None)
        if not model_dir:
            raise GeneratorError("the diffusers generator needs the model's local directory "
                                 "(GOVERNANCE_GENERATOR_DIR): nothing is downloaded")
        try:
            return DiffusersGenerator(model_dir, **options)
        except TypeError as e:
            raise GeneratorError(f"bad options for the diffusers generator {sorted(options)}: {e}") from e
    raise GeneratorError(f"unknown generator {name!r}; expected one of {', '.join(_KNOWN)}")
