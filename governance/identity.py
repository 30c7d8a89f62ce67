"""Pluggable identity proof: an operator who runs a KYC vendor checks, after the live challenge passed, that the
person on camera is the account holder.

The service calls an :class:`IdentityProof` once per passed live check and records its
:class:`IdentityVerdict` on the likeness (``identity``) and in the audit log (``likeness:identity:check``).
``verified`` and ``not_checked`` change nothing; ``rejected`` and ``unavailable`` (the vendor failed or
could not be reached: fail closed) open an identity review, so the likeness stays ``pending_review`` until an
admin decides. The default, :class:`NullIdentityProof`, checks nothing.

``GOVERNANCE_IDENTITY_PROOF=package.module:factory`` names the operator's factory, called with no arguments
at start; it returns the object with ``name`` and ``check``::

    >>> import numpy as np
    >>> from governance.identity import IdentityRequest, NullIdentityProof, run_check
    >>> face = np.zeros((8, 8, 3), np.uint8)
    >>> run_check(NullIdentityProof(), IdentityRequest("acc_1", "alice", face, "chl_1", None)).outcome.value
    'not_checked'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from governance.config import ConfigError


class IdentityOutcome(StrEnum):
    VERIFIED = "verified"  # the vendor matched the person to the account holder
    REJECTED = "rejected"  # the vendor says the person is not the account holder
    UNAVAILABLE = "unavailable"  # the vendor failed or could not be reached
    NOT_CHECKED = "not_checked"  # no identity proof is configured


@dataclass(frozen=True)
class IdentityRequest:
    """What the check gets: the account, the frontal face crop from the live video (RGB uint8, H x W x 3), the
    challenge it passed, and the likeness being upgraded (``None`` for a new enrollment). No video is passed."""

    account_id: str
    account_name: str
    face: np.ndarray = field(repr=False)
    challenge_id: str
    likeness_id: str | None


@dataclass(frozen=True)
class IdentityVerdict:
    provider: str
    outcome: IdentityOutcome
    reference: str = ""  # the vendor's case or session id, for the operator's records
    detail: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.outcome, IdentityOutcome):
            raise ValueError(f"outcome must be an IdentityOutcome, got {self.outcome!r}")

    @property
    def needs_review(self) -> bool:
        return self.outcome in (IdentityOutcome.REJECTED, IdentityOutcome.UNAVAILABLE)

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "outcome": self.outcome.value, "reference": self.reference,
                "detail": self.detail}


@runtime_checkable
class IdentityProof(Protocol):
    name: str

    def check(self, request: IdentityRequest) -> IdentityVerdict: ...


class NullIdentityProof:
    """The default: no identity vendor; every verdict is ``not_checked``."""

    name = "none"

    def check(self, request: IdentityRequest) -> IdentityVerdict:
        return IdentityVerdict(self.name, IdentityOutcome.NOT_CHECKED)


def run_check(proof: IdentityProof, request: IdentityRequest) -> IdentityVerdict:
    """``proof.check(request)``; whatever the operator's code raises or returns that is not a verdict becomes
    an ``unavailable`` verdict saying so (the likeness then waits for review: fail closed)."""
    name = str(getattr(proof, "name", type(proof).__name__))
    try:
        verdict = proof.check(request)
    except Exception as e:  # the operator's code: any failure is recorded, never lets the claim through
        return IdentityVerdict(name, IdentityOutcome.UNAVAILABLE, detail=f"{type(e).__name__}: {e}"[:300])
    if not isinstance(verdict, IdentityVerdict):
        return IdentityVerdict(name, IdentityOutcome.UNAVAILABLE,
                               detail=f"the identity proof returned {type(verdict).__name__}, not an IdentityVerdict")
    return verdict


def load_identity_proof(spec: str) -> IdentityProof:
    """The identity proof ``spec`` names (``package.module:factory``; empty: :class:`NullIdentityProof`).
    Raises :class:`ConfigError` in one line when the factory cannot be imported, fails, or returns something
    without ``name`` and ``check``."""
    if not spec:
        return NullIdentityProof()
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"identity_proof {spec!r} cannot be imported: {type(e).__name__}: {e}") from e
    try:
        proof = factory()
    except Exception as e:  # the operator's code
        raise ConfigError(f"the identity proof factory {spec!r} failed: {type(e).__name__}: {e}") from e
    if not isinstance(proof, IdentityProof):
        raise ConfigError(f"the identity proof factory {spec!r} must return an object with 'name' and "
                          f"'check(request)', got {type(proof).__name__}")
    return proof
