"""Commitments (format ``cg-commit-v1``): the public record names nobody, yet every name in it can be opened.

A C2PA manifest or a verification report must show that the people in a video consented, not who they are.
So it carries a *commitment* to each identity (an account, a likeness, a grant) and to the prompt, and the
service keeps the *opening* (the value and a random salt) in its private record. Whoever is given an
opening (a regulator, or the person it names) recomputes the commitment and finds it in the manifest::

    commitment = hex(HMAC-SHA256(key=salt, msg=frame("cg-commit-v1") || frame(kind) || frame(value)))
    frame(s)   = len(utf8(s)) as 4 bytes, big-endian || utf8(s)
    salt       = 32 random bytes (64 hex digits), kept in the record, never published

- *Hiding*: without the salt a commitment says nothing about its value, not even whether two videos show
  the same person (HMAC-SHA256 keyed with 256 random bits is a pseudorandom function; RFC 2104, and
  Bellare 2006, "New proofs for NMAC and HMAC").
- *Binding*: to open a commitment to another value one would need an HMAC-SHA256 collision.
- *Domain separation*: the format name and the kind are framed into the message, so a commitment of one
  kind never opens as another kind, and a later format (``cg-commit-v2``) never collides with this one.

The frozen test vector (``tests/provenance/test_commitments.py`` checks the same value)::

    >>> from provenance.commitments import Opening, commit
    >>> salt = bytes(range(32))
    >>> commit("likeness", "lk_0123456789abcdef", salt)
    '5854015d70d343f68f6a8489feb32471f0ce6d202c0c14b1ba6cfb6948d45abd'
    >>> opening = Opening("likeness", "lk_0123456789abcdef", salt.hex())
    >>> opening.opens('5854015d70d343f68f6a8489feb32471f0ce6d202c0c14b1ba6cfb6948d45abd')
    True
    >>> Opening("grant", "lk_0123456789abcdef", salt.hex()).opens(opening.commitment)  # another kind
    False

Pure and dependency-free (``hmac``, ``hashlib``, ``secrets``): a regulator can check a record with this
one file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from provenance.errors import ProvenanceError

__all__ = ["KINDS", "SALT_BYTES", "SCHEME", "CommitmentError", "Opening", "commit", "new_salt", "opens"]

SCHEME: Final = "cg-commit-v1"
"""The name (and version) of this commitment format; framed into every commitment."""

KINDS: Final = ("requester", "prompt", "likeness", "owner", "grant")
"""What may be committed to: the requester's account id, the prompt, a likeness id, its owner's account
id, and the id of the grant that let the requester use it."""

SALT_BYTES: Final = 32

_HEX64 = re.compile(r"[0-9a-f]{64}")


class CommitmentError(ProvenanceError):
    """A commitment or opening that is not well formed (unknown kind, bad salt, not a string)."""


def _frame(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def _check(kind: str, value: str, salt: bytes) -> None:
    if kind not in KINDS:
        raise CommitmentError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if not isinstance(value, str):
        raise CommitmentError(f"the committed value must be a string, got {type(value).__name__}")
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SALT_BYTES:
        got = f"{len(salt)} bytes" if isinstance(salt, (bytes, bytearray)) else type(salt).__name__
        raise CommitmentError(f"the salt must be {SALT_BYTES} bytes, got {got}")


def new_salt() -> bytes:
    """32 fresh random bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(SALT_BYTES)


def commit(kind: str, value: str, salt: bytes) -> str:
    """The ``cg-commit-v1`` commitment to ``value`` of ``kind`` under ``salt``: 64 lowercase hex digits.

    Raises :class:`CommitmentError` for a kind not in :data:`KINDS`, a value that is not a string, or a
    salt that is not :data:`SALT_BYTES` bytes.
    """
    _check(kind, value, salt)
    msg = _frame(SCHEME) + _frame(kind) + _frame(value)
    return hmac.new(bytes(salt), msg, hashlib.sha256).hexdigest()


def opens(commitment: str, kind: str, value: str, salt: bytes) -> bool:
    """Whether (``kind``, ``value``, ``salt``) opens ``commitment`` (compared in constant time). A
    malformed commitment opens nothing; a malformed opening raises :class:`CommitmentError`."""
    expected = commit(kind, value, salt)
    return isinstance(commitment, str) and hmac.compare_digest(expected, commitment.lower())


@dataclass(frozen=True)
class Opening:
    """What opens one commitment: its ``kind``, the ``value`` committed to and the ``salt`` as 64 hex
    digits. Checked on construction (:class:`CommitmentError`)."""

    kind: str
    value: str
    salt: str

    def __post_init__(self) -> None:
        if not isinstance(self.salt, str) or not _HEX64.fullmatch(self.salt):
            raise CommitmentError(f"the salt must be {SALT_BYTES * 2} lowercase hex digits, got {self.salt!r}")
        _check(self.kind, self.value, bytes.fromhex(self.salt))

    @property
    def commitment(self) -> str:
        return commit(self.kind, self.value, bytes.fromhex(self.salt))

    def opens(self, commitment: str) -> bool:
        return opens(commitment, self.kind, self.value, bytes.fromhex(self.salt))

    def to_dict(self) -> dict[str, str]:
        """``{"scheme", "kind", "value", "salt", "commitment"}``, as the consent-record endpoint returns it."""
        return {"scheme": SCHEME, "kind": self.kind, "value": self.value, "salt": self.salt,
                "commitment": self.commitment}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Opening:
        """The inverse of :meth:`to_dict` (``commitment`` is recomputed, never trusted). Refuses another
        ``scheme``."""
        if not isinstance(data, Mapping):
            raise CommitmentError(f"an opening is a mapping, got {type(data).__name__}")
        scheme = data.get("scheme", SCHEME)
        if scheme != SCHEME:
            raise CommitmentError(f"this library opens {SCHEME} commitments, got {scheme!r}")
        try:
            return cls(data["kind"], data["value"], data["salt"])
        except KeyError as e:
            raise CommitmentError(f"an opening needs 'kind', 'value' and 'salt'; {e.args[0]!r} is missing") from e
