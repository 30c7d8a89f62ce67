"""A person's enrolled likeness as the detectors keep it: :class:`Template` (embeddings, the backend that made
them, a reference crop, and the head pose of each row) and its stored blob format, ``consentgate-template-v1``
(:meth:`Template.to_bytes`). :mod:`detectors.enroll` makes templates, :mod:`detectors.index` searches them::

    >>> import numpy as np
    >>> from detectors.template import Template
    >>> t = Template(np.zeros((2, 4), np.float32), "test", np.zeros((8, 8, 3), np.uint8), ("frontal", "left"))
    >>> Template.from_bytes(t.to_bytes()).bins
    ('frontal', 'left')
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Final

import numpy as np

from detectors.errors import DetectorError

__all__ = ["POSE_BINS", "Template", "merge_templates"]

_FORMAT: Final = "consentgate-template-v1"
#: The head poses a template's embeddings may be labelled with (``Template.bins``): facing the camera,
#: or turned to the person's left or right, chin up or down, as the live challenge measured them.
POSE_BINS: Final = ("frontal", "left", "right", "up", "down")


@dataclass(frozen=True, eq=False)
class Template:
    """One person's enrolled likeness: ``embeddings`` (k, dim) float32 from ``backend``, and the
    ``reference`` RGB face crop the generator composites, or ``None`` once it is stored apart (a stored
    likeness keeps its reference encrypted in the file store, not in its row: :meth:`without_reference`).
    Arrays are private, read-only copies.

    ``bins`` is empty, or names the head pose of each embedding row (k names from :data:`POSE_BINS`),
    as a live challenge enrolls turned views besides frontal ones; :meth:`view` selects one bin."""

    embeddings: np.ndarray
    backend: str
    reference: np.ndarray | None
    bins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        emb = np.array(self.embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] < 1 or emb.shape[1] < 1 or not np.all(np.isfinite(emb)):
            raise DetectorError(f"template embeddings must be a finite (k >= 1, dim) array, got {emb.shape}")
        if not isinstance(self.backend, str) or not self.backend:
            raise DetectorError(f"template backend must be a non-empty name, got {self.backend!r}")
        ref = self.reference
        if ref is not None and (not isinstance(ref, np.ndarray) or ref.dtype != np.uint8 or ref.ndim != 3
                                or ref.shape[2] != 3 or ref.shape[0] < 1 or ref.shape[1] < 1):
            raise DetectorError(f"template reference must be an (H, W, 3) uint8 image or None, got "
                                f"{getattr(ref, 'shape', type(ref))}")
        bins = tuple(self.bins) if isinstance(self.bins, (tuple, list)) else self.bins
        if not isinstance(bins, tuple) or not all(isinstance(b, str) for b in bins):
            raise DetectorError(f"template bins must be a tuple of names, got {self.bins!r}")
        if bins and (len(bins) != emb.shape[0] or not set(bins) <= set(POSE_BINS)):
            raise DetectorError(f"template bins must name one of {', '.join(POSE_BINS)} for each of the "
                                f"{emb.shape[0]} embeddings, got {bins!r}")
        object.__setattr__(self, "bins", bins)
        if ref is not None:
            ref = ref.copy()
            ref.setflags(write=False)
        emb.setflags(write=False)
        object.__setattr__(self, "embeddings", emb)
        object.__setattr__(self, "reference", ref)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __repr__(self) -> str:
        ref = "apart" if self.reference is None else "{1}x{0}".format(*self.reference.shape[:2])
        binned = f", bins={'/'.join(b for b in POSE_BINS if b in self.bins)}" if self.bins else ""
        return (f"Template(k={self.embeddings.shape[0]}, dim={self.dim}, backend={self.backend!r}, "
                f"reference={ref}{binned})")

    def without_reference(self) -> Template:
        """The same template with no reference image: what a likeness row stores (embeddings and a few names:
        3.3 KB for five 128-d rows, 10.4 KB for five 512-d ones, against ~500 KB with a 518 x 518 reference
        crop; issue 12)."""
        return Template(embeddings=self.embeddings, backend=self.backend, reference=None, bins=self.bins)

    def view(self, pose_bin: str) -> np.ndarray:
        """The ``(j, dim)`` embeddings labelled ``pose_bin`` (one of :data:`POSE_BINS`); ``j`` is 0 when the
        template has none, or no bins at all."""
        if pose_bin not in POSE_BINS:
            raise DetectorError(f"unknown pose bin {pose_bin!r}; expected one of {', '.join(POSE_BINS)}")
        rows = [i for i, b in enumerate(self.bins) if b == pose_bin]
        return self.embeddings[rows]

    def to_bytes(self) -> bytes:
        """Serialise as a compressed ``.npz`` (no pickles): arrays ``format`` (the string
        ``consentgate-template-v1``), ``embeddings``, ``backend``, ``reference`` only when the template has
        one, and ``bins`` (unicode strings) only when the template has bins. Readers ignore members they do
        not know, so a binned template still loads, without its bins, in code that predates them; a template
        without a reference loads only in code that knows references may be stored apart (issue 12)."""
        buf = io.BytesIO()
        arrays = {
            "format": np.array(_FORMAT),
            "embeddings": self.embeddings,
            "backend": np.array(self.backend),
        }
        if self.reference is not None:
            arrays["reference"] = self.reference
        if self.bins:
            arrays["bins"] = np.array(self.bins, dtype=f"<U{max(len(b) for b in POSE_BINS)}")
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """Parse :meth:`to_bytes` output; anything else raises :class:`DetectorError`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                fmt = str(npz["format"])
                if fmt != _FORMAT:
                    raise DetectorError(f"expected a {_FORMAT} template, got format {fmt!r}")
                bins = tuple(str(b) for b in npz["bins"]) if "bins" in npz.files else ()
                reference = npz["reference"] if "reference" in npz.files else None
                return cls(embeddings=npz["embeddings"], backend=str(npz["backend"]), reference=reference, bins=bins)
        except DetectorError:
            raise
        except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as e:
            raise DetectorError(f"not a serialised template: {e}") from e


def merge_templates(*templates: Template) -> Template:
    """One template holding the rows of all ``templates`` (of one backend), e.g. a likeness's photos and
    its live challenge's turned views, so a scan compares a turned face with the turned views
    (``detectors.pose``). Rows of a template without bins are labelled ``frontal`` (photos are enrolled
    by HOG, a frontal detector: portraits measure |yaw| <= 23 degrees, docs/enrollment.md) as soon as
    any template has bins; the reference crop is the first template's. Raises :class:`DetectorError`
    for no templates or mixed backends."""
    if not templates:
        raise DetectorError("merge_templates needs at least one template")
    backends = {t.backend for t in templates}
    if len(backends) != 1:
        raise DetectorError(f"templates of different backends cannot be merged: {sorted(backends)}")
    binned = any(t.bins for t in templates)
    bins: list[str] = []
    for t in templates:
        bins += list(t.bins) if t.bins else ["frontal"] * len(t.embeddings)
    return Template(embeddings=np.concatenate([t.embeddings for t in templates]), backend=templates[0].backend,
                    reference=templates[0].reference, bins=tuple(bins) if binned else ())
