"""Seal a generated video with a signed C2PA manifest (c2pa-python).

The manifest says what the file is and who let it exist: one ``c2pa.created`` action with the IPTC
digital source type the generator declares (``algorithmicMedia`` for the procedural renderer,
``trainedAlgorithmicMedia`` for a learned model) and the generator as its software agent; a
``c2pa.watermarked`` action and one ``c2pa.soft-binding`` assertion per soft binding (the invisible
watermark and the fingerprint: :mod:`provenance.softbinding`); an ``org.consentgate.generator`` assertion
(name, version, whether it has learned weights); an ``org.consentgate.disclosure`` assertion with
California SB 942's latent disclosure (provider, system and version, creation time, unique id) and the
visible label's declaration; an ``org.consentgate.governance`` assertion with the consent and policy
decisions relied on (ConsentGate puts commitments there, never account, likeness or grant ids:
:mod:`provenance.commitments`). A remix names its parent's signed file as an ingredient (``inputTo``).

Before the sealed file is released, :func:`seal_video` reads it back with c2pa-python's Reader and checks
that the manifest validates and carries the source type, the ``c2pa.watermarked`` action and every soft
binding with the values given; anything missing is a :class:`SigningError` and nothing is written::

    >>> from pathlib import Path
    >>> from provenance.keys import ensure_dev_ca
    >>> from provenance.c2pa_seal import ManifestSpec, seal_video
    >>> spec = ManifestSpec(
    ...     title="clip.mp4",
    ...     generator_name="consentgate-procedural",
    ...     generator_version="0.1",
    ...     learned_weights=False,
    ...     governance={"generation_id": "gen-1", "likenesses": [], "decisions": ["allow"]},
    ... )
    >>> material = ensure_dev_ca(Path("/tmp/consentgate-keys"))
    >>> seal_video(Path("raw.mp4"), Path("clip.mp4"), spec, material)   # doctest: +SKIP

Pass ``sign_fn`` to sign through a callback (a KMS or HSM) instead of the key in ``material``; the
private key in ``material`` is then not used. Every call builds its own Builder and Signer: c2pa
objects must not be shared between threads.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa

from provenance.errors import ProvenanceError, SigningError, one_line
from provenance.keys import SignerMaterial, SignFn
from provenance.labels import DISCLOSURE_LABEL, GENERATOR_LABEL, GOVERNANCE_LABEL, mime_for
from provenance.softbinding import SoftBinding

__all__ = [
    "GENERATOR_LABEL",
    "GOVERNANCE_LABEL",
    "ALGORITHMIC_MEDIA",
    "DISCLOSURE_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Ingredient",
    "ManifestSpec",
    "Sealed",
    "seal_video",
]


TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
_INTENT_SOURCE = {
    TRAINED_ALGORITHMIC_MEDIA: "TRAINED_ALGORITHMIC_MEDIA",
    ALGORITHMIC_MEDIA: "ALGORITHMIC_MEDIA",
}
_UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class Ingredient:
    """A signed file this one was made from: ``relationship`` ``inputTo`` (a new generation from it) or
    ``parentOf`` (its frames edited, with a ``c2pa.opened`` action instead of ``c2pa.created``)."""

    path: Path
    title: str
    relationship: str = "inputTo"

    def __post_init__(self) -> None:
        if self.relationship not in ("inputTo", "parentOf"):
            raise SigningError(f"an ingredient's relationship must be inputTo or parentOf, got {self.relationship!r}")
        if not isinstance(self.title, str) or not self.title.strip():
            raise SigningError("an ingredient needs a non-empty title")


@dataclass(frozen=True)
class Sealed:
    """What :func:`seal_video` made: the active manifest's id (``urn:c2pa:...``, its label in the store) and
    the manifest store's bytes (``application/c2pa``, what c2pa embedded)."""

    manifest_id: str
    store: bytes = field(repr=False)

_HEAD_BYTES = 64


@dataclass(frozen=True)
class ManifestSpec:
    """What goes into the manifest of one generated file. Checked on construction.

    ``governance`` is copied on construction (later changes to the caller's mapping do not leak in)
    and must be JSON: string keys, finite numbers, strings, booleans, null, lists and objects.
    ``claim_generator`` is ``"name/version"`` (the version part is optional).
    """

    title: str
    generator_name: str
    generator_version: str
    learned_weights: bool
    governance: Mapping[str, Any] = field(hash=False)
    claim_generator: str = "ConsentGate/0.1"
    digital_source_type: str = ""
    soft_bindings: tuple[SoftBinding, ...] = ()
    disclosure: Mapping[str, Any] | None = field(default=None, hash=False)
    ingredients: tuple[Ingredient, ...] = ()

    def __post_init__(self) -> None:
        for name in ("title", "generator_name", "generator_version", "claim_generator"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise SigningError(f"ManifestSpec.{name} must be a non-empty string, got {value!r}")
        if not isinstance(self.learned_weights, bool):
            raise SigningError(
                f"ManifestSpec.learned_weights must be a bool, got {type(self.learned_weights).__name__}"
            )
        if not isinstance(self.governance, Mapping):
            raise SigningError(
                f"ManifestSpec.governance must be a mapping, got {type(self.governance).__name__}"
            )
        object.__setattr__(self, "governance", _json_copy(self.governance))
        expected = TRAINED_ALGORITHMIC_MEDIA if self.learned_weights else ALGORITHMIC_MEDIA
        if not self.digital_source_type:
            object.__setattr__(self, "digital_source_type", expected)
        elif self.digital_source_type != expected:
            raise SigningError(f"a generator with learned_weights={self.learned_weights} makes "
                               f"{expected.rsplit('/', 1)[-1]}, got digital_source_type {self.digital_source_type!r}")
        if not all(isinstance(b, SoftBinding) for b in self.soft_bindings):
            raise SigningError("ManifestSpec.soft_bindings must hold SoftBinding values")
        object.__setattr__(self, "soft_bindings", tuple(self.soft_bindings))
        if self.disclosure is not None:
            if not isinstance(self.disclosure, Mapping):
                raise SigningError(f"ManifestSpec.disclosure must be a mapping, got {type(self.disclosure).__name__}")
            object.__setattr__(self, "disclosure", _json_copy(self.disclosure))
        if not all(isinstance(i, Ingredient) for i in self.ingredients):
            raise SigningError("ManifestSpec.ingredients must hold Ingredient values")
        object.__setattr__(self, "ingredients", tuple(self.ingredients))
        if sum(i.relationship == "parentOf" for i in self.ingredients) > 1:
            raise SigningError("a manifest has at most one parentOf ingredient")

    @property
    def opened(self) -> bool:
        """Whether the file is an edit of a parentOf ingredient (``c2pa.opened``) rather than new (``c2pa.created``)."""
        return any(i.relationship == "parentOf" for i in self.ingredients)

    @property
    def claim_generator_info(self) -> dict[str, str]:
        name, _, version = self.claim_generator.partition("/")
        info = {"name": name.strip()}
        if version.strip():
            info["version"] = version.strip()
        return info

    def manifest_definition(self) -> dict[str, Any]:
        """The c2pa-python manifest definition (JSON-able dict) this spec stands for."""
        agent = {"name": self.generator_name, "version": self.generator_version}
        first: dict[str, Any] = {
            "action": "c2pa.opened" if self.opened else "c2pa.created",
            "digitalSourceType": self.digital_source_type,
            "softwareAgent": agent,
        }
        actions = [first]
        if any(b.watermark for b in self.soft_bindings):
            actions.append({"action": "c2pa.watermarked", "softwareAgent": {"name": self.claim_generator_info["name"]}})
        assertions: list[dict[str, Any]] = [
            {"label": "c2pa.actions.v2", "data": {"actions": actions}},
            *(b.assertion() for b in self.soft_bindings),
            {"label": GENERATOR_LABEL, "data": {**agent, "learned_weights": self.learned_weights}},
        ]
        if self.disclosure is not None:
            assertions.append({"label": DISCLOSURE_LABEL, "data": dict(self.disclosure)})
        assertions.append({"label": GOVERNANCE_LABEL, "data": dict(self.governance)})
        return {"claim_generator_info": [self.claim_generator_info], "title": self.title, "assertions": assertions}


def seal_video(
    src: Path,
    dst: Path,
    spec: ManifestSpec,
    material: SignerMaterial,
    *,
    sign_fn: SignFn | None = None,
    tsa_url: str | None = None,
    mode: int = 0o644,
) -> Sealed:
    """Write ``src`` to ``dst`` (permissions ``mode``, whatever the umask) with a signed C2PA manifest embedded.

    ``dst`` appears complete or not at all (temporary file in the same folder, then ``os.replace``);
    ``src`` and ``dst`` may be the same path. ``tsa_url`` adds an RFC 3161 time stamp and fails when
    the authority cannot be reached. The signed file is read back with c2pa-python's Reader before it
    replaces ``dst`` (module docstring). Raises :class:`SigningError` for every failure.
    """

    src, dst = Path(src), Path(dst)
    if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
        raise SigningError(f"tsa_url must be an http(s) URL, got {tsa_url!r}")
    if sign_fn is None and material.private_key_pem is None:
        raise SigningError("the signer material holds no private key: pass the KMS/HSM signing callback (sign_fn)")
    try:
        with open(src, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as e:
        raise SigningError(f"cannot read the file to seal {src}: {e}") from e
    try:
        mime = mime_for(head)
    except ProvenanceError as e:
        raise SigningError(f"cannot seal {src}: {e}") from e
    if not dst.parent.is_dir():
        raise SigningError(f"the destination folder {dst.parent} does not exist")

    callback_errors: list[Exception] = []
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    except OSError as e:
        raise SigningError(f"cannot create a temporary file beside {dst}: {e}") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as out, open(src, "rb") as source:
            with contextlib.ExitStack() as stack:
                context = stack.enter_context(c2pa.Context())
                builder = stack.enter_context(c2pa.Builder(spec.manifest_definition(), context))
                if not spec.opened:
                    builder.set_intent(c2pa.C2paBuilderIntent.CREATE,
                                       getattr(c2pa.C2paDigitalSourceType, _INTENT_SOURCE[spec.digital_source_type]))
                for ingredient in spec.ingredients:
                    with open(ingredient.path, "rb") as parent:
                        builder.add_ingredient({"title": ingredient.title, "relationship": ingredient.relationship},
                                               mime_for(parent.read(_HEAD_BYTES)), _rewound(parent))
                signer = stack.enter_context(_make_signer(material, sign_fn, tsa_url, callback_errors))
                store = builder.sign(signer, mime, source, out)
            out.flush()
            os.fsync(out.fileno())
            out.seek(0)
            manifest_id = check_sealed(out, mime, spec)
        os.chmod(tmp, mode)
        os.replace(tmp, dst)
        return Sealed(manifest_id, bytes(store))
    except c2pa.C2paError as e:
        if callback_errors:
            cause = callback_errors[0]
            raise SigningError(
                f"the signing callback failed while sealing {src}: {type(cause).__name__}: {cause}"
            ) from cause
        full = _out_of_space(dst.parent, src)
        if full is not None:  # c2pa's Io errors carry no errno: a full disk would read as a signing failure
            full.__cause__ = e
            raise SigningError(f"c2pa could not sign {src} as {mime}: {one_line(e)}") from full
        raise SigningError(f"c2pa could not sign {src} as {mime}: {one_line(e)}") from e
    except OSError as e:
        raise SigningError(f"cannot write the sealed file {dst}: {e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _out_of_space(folder: Path, src: Path) -> OSError | None:
    """An ENOSPC error when ``folder``'s file system has fewer bytes free than ``src`` holds (the sealed copy is
    ``src`` plus its manifest, so it cannot have fitted), else None. c2pa-python reports a failed write as
    ``C2paError.Io`` without the operating system's errno; this gives the caller the failure it really was."""
    try:
        st = os.statvfs(folder)
        need = os.path.getsize(src)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize >= need:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))


def check_sealed(stream: Any, mime: str, spec: ManifestSpec) -> str:
    """Read a just-signed file with c2pa-python's Reader and check it says what ``spec`` asked; returns the
    active manifest's id. Raises :class:`SigningError` naming the first thing missing."""
    try:
        with c2pa.Context() as context, c2pa.Reader(mime, stream, None, context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as e:
        raise SigningError(f"the sealed file cannot be read back: {one_line(e)}") from e
    manifest_id = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(manifest_id) or {}
    failures = [f.get("code") for f in ((store.get("validation_results") or {}).get("activeManifest") or {})
                .get("failure", [])]
    bad = [f for f in failures if f != _UNTRUSTED]  # the trust list is the verifier's business, not ours
    if not manifest_id or bad:
        raise SigningError(f"the sealed file does not validate: {', '.join(map(str, bad)) or 'no active manifest'}")
    assertions = [a for a in manifest.get("assertions", []) if isinstance(a, Mapping)]
    actions = [x for a in assertions if str(a.get("label", "")).startswith("c2pa.actions")
               for x in (a.get("data") or {}).get("actions", [])]
    first = "c2pa.opened" if spec.opened else "c2pa.created"
    if not any(x.get("action") == first and x.get("digitalSourceType") == spec.digital_source_type for x in actions):
        raise SigningError(f"the sealed manifest lacks the {first} action with {spec.digital_source_type}")
    if any(b.watermark for b in spec.soft_bindings) and not any(x.get("action") == "c2pa.watermarked" for x in actions):
        raise SigningError("the sealed manifest lacks the c2pa.watermarked action")
    found = {
        (str(a["data"].get("alg")), tuple(str(b.get("value")) for b in a["data"].get("blocks", [])))
        for a in assertions
        if str(a.get("label", "")).startswith("c2pa.soft-binding") and isinstance(a.get("data"), Mapping)
    }
    for binding in spec.soft_bindings:
        want = (binding.alg, tuple(base64.b64encode(b.value).decode("ascii") for b in binding.blocks))
        if want not in found:
            raise SigningError(f"the sealed manifest lacks the soft binding {binding.alg} with the values given")
    if len(manifest.get("ingredients") or []) != len(spec.ingredients):
        raise SigningError(f"the sealed manifest has {len(manifest.get('ingredients') or [])} ingredients, "
                           f"expected {len(spec.ingredients)}")
    return str(manifest_id)


# --------------------------------------------------------------------------------------------------


def _rewound(fh: Any) -> Any:
    fh.seek(0)
    return fh


def _make_signer(
    material: SignerMaterial,
    sign_fn: SignFn | None,
    tsa_url: str | None,
    callback_errors: list[Exception],
) -> c2pa.Signer:
    if sign_fn is None:
        info = c2pa.C2paSignerInfo(material.alg, material.cert_chain_pem, material.private_key_pem, tsa_url)
        return c2pa.Signer.from_info(info)

    def recording(data: bytes) -> bytes:
        # c2pa swallows callback exceptions (it only sees a failed signature); keep ours for the chain.
        try:
            return sign_fn(data)
        except Exception as e:
            callback_errors.append(e)
            raise

    alg = c2pa.C2paSigningAlg[material.alg.upper()]
    return c2pa.Signer.from_callback(recording, alg, material.cert_chain_pem.decode("ascii"), tsa_url)


def _json_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``value`` that is strict JSON, or :class:`SigningError` saying where it is not."""

    def check(v: Any, path: str) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                raise SigningError(f"governance{path} must be a finite number, got {v!r}")
            return float(v)
        if isinstance(v, Mapping):
            out: dict[str, Any] = {}
            for k, item in v.items():
                if not isinstance(k, str):
                    raise SigningError(f"governance{path} keys must be strings, got {k!r}")
                out[k] = check(item, f"{path}[{k!r}]")
            return out
        if isinstance(v, (list, tuple)):
            return [check(item, f"{path}[{i}]") for i, item in enumerate(v)]
        raise SigningError(
            f"governance{path or ''} must be JSON-serialisable (str, number, bool, None, list, mapping), "
            f"got {type(v).__name__}"
        )

    copied = check(value, "")
    json.dumps(copied, allow_nan=False)  # belt and braces: what c2pa receives is plain JSON
    return copied  # type: ignore[no-any-return]
