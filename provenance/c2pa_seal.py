"""Seal a generated video with a signed C2PA manifest (c2pa-python).

The manifest says what the file is and who let it exist: one ``c2pa.created`` action with the IPTC
digital source type ``trainedAlgorithmicMedia`` and the generator as its software agent, an
``org.consentgate.generator`` assertion (name, version, whether it has learned weights) and an
``org.consentgate.governance`` assertion with the consent and policy decisions relied on (ConsentGate
puts commitments there, never account, likeness or grant ids: :mod:`provenance.commitments`)::

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

import contextlib
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
from provenance.labels import GENERATOR_LABEL, GOVERNANCE_LABEL, mime_for

__all__ = [
    "GENERATOR_LABEL",
    "GOVERNANCE_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "ManifestSpec",
    "seal_video",
]


TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

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
        return {
            "claim_generator_info": [self.claim_generator_info],
            "title": self.title,
            "assertions": [
                {
                    "label": "c2pa.actions.v2",
                    "data": {
                        "actions": [
                            {
                                "action": "c2pa.created",
                                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                                "softwareAgent": agent,
                            }
                        ]
                    },
                },
                {
                    "label": GENERATOR_LABEL,
                    "data": {**agent, "learned_weights": self.learned_weights},
                },
                {"label": GOVERNANCE_LABEL, "data": dict(self.governance)},
            ],
        }


def seal_video(
    src: Path,
    dst: Path,
    spec: ManifestSpec,
    material: SignerMaterial,
    *,
    sign_fn: SignFn | None = None,
    tsa_url: str | None = None,
    mode: int = 0o644,
) -> None:
    """Write ``src`` to ``dst`` (permissions ``mode``, whatever the umask) with a signed C2PA manifest embedded.

    ``dst`` appears complete or not at all (temporary file in the same folder, then ``os.replace``);
    ``src`` and ``dst`` may be the same path. ``tsa_url`` adds an RFC 3161 time stamp and fails when
    the authority cannot be reached. Raises :class:`SigningError` for every failure.
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
            with c2pa.Context() as context, c2pa.Builder(spec.manifest_definition(), context) as builder:
                builder.set_intent(
                    c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.TRAINED_ALGORITHMIC_MEDIA
                )
                with _make_signer(material, sign_fn, tsa_url, callback_errors) as signer:
                    builder.sign(signer, mime, source, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dst)
    except c2pa.C2paError as e:
        if callback_errors:
            cause = callback_errors[0]
            raise SigningError(
                f"the signing callback failed while sealing {src}: {type(cause).__name__}: {cause}"
            ) from cause
        raise SigningError(f"c2pa could not sign {src} as {mime}: {one_line(e)}") from e
    except OSError as e:
        raise SigningError(f"cannot write the sealed file {dst}: {e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------------------------------


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
