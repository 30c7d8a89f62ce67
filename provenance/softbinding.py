"""C2PA soft bindings: the ``c2pa.soft-binding`` assertion's values, and resolving them to manifests.

A *soft binding* (C2PA 2.2, section 18.10) ties a manifest to content by something that survives
re-encoding: an invisible watermark or a perceptual fingerprint. ConsentGate declares two, each under an
algorithm name in its own reverse-domain namespace (C2PA 2.2 section 18.10.4 asks for names from the
C2PA soft binding algorithm list; these two are not registered there yet: docs/provenance.md):

* :data:`WATERMARK_ALG` (``dev.consentgate.watermark.1``): the value is the 8-byte content id the keyed
  watermark carries (:mod:`provenance.watermark`), one block whose ``scope.timespan`` covers the whole clip
  in milliseconds;
* :data:`FINGERPRINT_ALG` (``dev.consentgate.fingerprint.1``): the value is the clip's stored fingerprint
  (:meth:`provenance.fingerprint.Fingerprint.to_bytes`, 4,232 bytes), one block over the whole clip.

The **Soft Binding Resolution API** (C2PA 2.2, *Decoupled* section 1.3, OpenAPI 1.0.0) looks manifests up
by a binding value (``/matches/byBinding``) or by the content itself (``/matches/byContent``) and answers
``{"matches": [{"manifestId", "similarityScore"}]}``, the score an integer 0-100. :func:`resolve_by_binding`
and :func:`resolve_by_content` are that lookup without HTTP, over any :class:`ManifestDirectory` (the
service's database; a dict in tests)::

    >>> from provenance.softbinding import WATERMARK_ALG, resolve_by_binding
    >>> class Directory:
    ...     def by_watermark(self, payload): return ["urn:c2pa:1"] if payload == b"clip-042" else []
    ...     def by_fingerprint(self, fp, max_results): return []
    >>> import base64
    >>> [m.to_dict() for m in resolve_by_binding(Directory(), WATERMARK_ALG, base64.b64encode(b"clip-042").decode())]
    [{'manifestId': 'urn:c2pa:1', 'similarityScore': 100}]

Scores: a watermark match is 100 (its tag is a keyed MAC: a chance match has probability at most
:data:`provenance.watermark.FALSE_POSITIVE_BOUND`); a fingerprint match at distance ``d`` scores
``round(100 * (1 - d / threshold))`` clipped to 1..99, so a copy at the calibrated threshold
(:data:`provenance.fingerprint.MATCH_THRESHOLD`) scores near 1 and an identical one 99.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from provenance.errors import ProvenanceError, SigningError

__all__ = [
    "FINGERPRINT_ALG",
    "SUPPORTED_ALGS",
    "WATERMARK_ALG",
    "BindingQueryError",
    "ManifestDirectory",
    "Match",
    "SoftBinding",
    "SoftBindingBlock",
    "resolve_by_binding",
    "resolve_by_content",
]

WATERMARK_ALG = "dev.consentgate.watermark.1"
FINGERPRINT_ALG = "dev.consentgate.fingerprint.1"
SUPPORTED_ALGS = {"watermarks": (WATERMARK_ALG,), "fingerprints": (FINGERPRINT_ALG,)}
"""What ``/services/supportedAlgorithms`` lists (the OpenAPI ``c2pa.softBindingAlgList`` shape)."""
DEFAULT_MAX_RESULTS = 10
"""The OpenAPI document's default for ``maxResults``."""
MAX_RESULTS_LIMIT = 100
"""Our upper bound on ``maxResults`` (the API sets only a minimum of 1)."""
_MAX_VALUE_BYTES = 64 * 1024


class BindingQueryError(ProvenanceError):
    """A soft binding query that cannot be answered: an unknown algorithm, a value that is not base64 or not
    of the algorithm's format, a ``maxResults`` out of range (HTTP 400 in the resolution API)."""


@dataclass(frozen=True)
class SoftBindingBlock:
    """One ``soft-binding-block-map``: the value computed over the time span ``start_ms``..``end_ms``."""

    value: bytes
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or not self.value:
            raise SigningError("a soft binding block's value must be non-empty bytes")
        for name in ("start_ms", "end_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise SigningError(f"a soft binding block's {name} must be a whole number of ms >= 0, got {v!r}")
        if self.end_ms < self.start_ms:
            raise SigningError(f"a soft binding block ends ({self.end_ms} ms) before it starts ({self.start_ms} ms)")


@dataclass(frozen=True)
class SoftBinding:
    """One ``c2pa.soft-binding`` assertion (``soft-binding-map``). ``watermark`` says the binding is an
    inserted watermark, which makes the manifest carry the ``c2pa.watermarked`` action as well (C2PA 2.2
    section 18.14.5)."""

    alg: str
    blocks: tuple[SoftBindingBlock, ...]
    watermark: bool
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.alg, str) or not self.alg.strip():
            raise SigningError(f"a soft binding's alg must be a non-empty string, got {self.alg!r}")
        if not self.blocks or not all(isinstance(b, SoftBindingBlock) for b in self.blocks):
            raise SigningError("a soft binding needs at least one SoftBindingBlock")
        object.__setattr__(self, "blocks", tuple(self.blocks))

    @classmethod
    def whole_clip(cls, alg: str, value: bytes, duration_s: float, *, watermark: bool,
                   name: str | None = None) -> SoftBinding:
        """A binding with one block covering ``0``..``duration_s`` (rounded to whole milliseconds)."""
        return cls(alg, (SoftBindingBlock(bytes(value), 0, max(0, round(duration_s * 1000))),), watermark, name)

    def assertion(self) -> dict[str, Any]:
        """The c2pa-python assertion definition (bytes as lists of ints, which c2pa writes as CBOR bstr)."""
        data: dict[str, Any] = {
            "alg": self.alg,
            "pad": [0],
            "blocks": [
                {"scope": {"timespan": {"start": b.start_ms, "end": b.end_ms}}, "value": list(b.value)}
                for b in self.blocks
            ],
        }
        if self.name:
            data["name"] = self.name
        return {"label": "c2pa.soft-binding", "data": data}


@dataclass(frozen=True)
class Match:
    """One entry of ``c2pa.softBindingQueryResult.matches``."""

    manifest_id: str
    similarity: int
    alg: str

    def to_dict(self) -> dict[str, Any]:
        return {"manifestId": self.manifest_id, "similarityScore": self.similarity}


class ManifestDirectory(Protocol):
    """Where released manifests are looked up: by watermark payload, or by fingerprint (nearest first,
    each with its distance)."""

    def by_watermark(self, payload: bytes) -> Sequence[str]: ...

    def by_fingerprint(self, fp: Any, max_results: int) -> Sequence[tuple[str, float]]: ...


def decode_value(value: str) -> bytes:
    """The bytes of a base64 query value (standard or URL-safe alphabet, padding optional)."""
    if not isinstance(value, str) or not value.strip():
        raise BindingQueryError("value must be a non-empty base64 string")
    text = value.strip()
    if len(text) > _MAX_VALUE_BYTES * 4 // 3 + 4:
        raise BindingQueryError(f"value is longer than {_MAX_VALUE_BYTES} bytes once decoded")
    text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise BindingQueryError(f"value must be base64, could not decode it: {e}") from e


def check_max_results(max_results: object) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or \
            not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise BindingQueryError(f"maxResults must be a whole number from 1 to {MAX_RESULTS_LIMIT}, got {max_results!r}")
    return max_results


def resolve_by_binding(directory: ManifestDirectory, alg: str, value: str, *,
                       max_results: int = DEFAULT_MAX_RESULTS) -> list[Match]:
    """Manifests whose soft binding ``alg`` has ``value`` (base64), best first, at most ``max_results``.

    A watermark value is the 8-byte payload; a fingerprint value is a stored fingerprint, matched by
    distance (not equality: a re-encoded copy's fingerprint differs a little). Raises
    :class:`BindingQueryError` for an unsupported ``alg`` or a value not of its format.
    """
    from provenance.fingerprint import Fingerprint
    from provenance.watermark import PAYLOAD_BYTES

    max_results = check_max_results(max_results)
    raw = decode_value(value)
    if alg == WATERMARK_ALG:
        if len(raw) != PAYLOAD_BYTES:
            raise BindingQueryError(f"a {WATERMARK_ALG} value is {PAYLOAD_BYTES} bytes, got {len(raw)}")
        return [Match(m, 100, alg) for m in _unique(directory.by_watermark(raw))][:max_results]
    if alg == FINGERPRINT_ALG:
        try:
            fp = Fingerprint.from_bytes(raw)
        except ProvenanceError as e:
            raise BindingQueryError(f"not a {FINGERPRINT_ALG} value: {e}") from e
        return _fingerprint_matches(directory, fp, max_results)
    supported = ", ".join(SUPPORTED_ALGS["watermarks"] + SUPPORTED_ALGS["fingerprints"])
    raise BindingQueryError(f"alg must be one of {supported}, got {alg!r}")


def resolve_by_content(directory: ManifestDirectory, *, watermark_payload: bytes | None, fingerprint: Any,
                       alg: str | None = None, max_results: int = DEFAULT_MAX_RESULTS) -> list[Match]:
    """Manifests matching an asset, from what was read out of it: the watermark payload (``None`` when no
    mark verified) and its fingerprint (``None`` when it could not be taken). Watermark matches come first
    (score 100), then fingerprint matches not already listed. ``alg`` restricts the lookup to one algorithm.
    """
    max_results = check_max_results(max_results)
    if alg is not None and alg not in (WATERMARK_ALG, FINGERPRINT_ALG):
        raise BindingQueryError(f"alg must be {WATERMARK_ALG} or {FINGERPRINT_ALG}, got {alg!r}")
    out: list[Match] = []
    if watermark_payload is not None and alg in (None, WATERMARK_ALG):
        out += [Match(m, 100, WATERMARK_ALG) for m in _unique(directory.by_watermark(watermark_payload))]
    if fingerprint is not None and alg in (None, FINGERPRINT_ALG):
        seen = {m.manifest_id for m in out}
        out += [m for m in _fingerprint_matches(directory, fingerprint, max_results) if m.manifest_id not in seen]
    return out[:max_results]


def fingerprint_score(distance: float) -> int:
    """The 0-100 similarity score of a fingerprint match at ``distance`` (module docstring)."""
    from provenance.fingerprint import MATCH_THRESHOLD

    return int(min(99, max(1, round(100 * (1 - distance / MATCH_THRESHOLD)))))


def _fingerprint_matches(directory: ManifestDirectory, fp: Any, max_results: int) -> list[Match]:
    return [Match(m, fingerprint_score(d), FINGERPRINT_ALG)
            for m, d in _unique_pairs(directory.by_fingerprint(fp, max_results))][:max_results]


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _unique_pairs(pairs: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    seen: dict[str, float] = {}
    for m, d in pairs:
        if m not in seen:
            seen[m] = d
    return list(seen.items())
