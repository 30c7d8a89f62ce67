"""Signed tree heads: the transparency log's size and Merkle root, signed with the service's C2PA signer.

A signed head is a statement the service cannot take back: two heads of one size with different roots,
or a later head that no consistency proof links to an earlier one, prove the log was rewritten or shows
different histories to different people. Verifiers keep the heads they see and check them with nothing
but this module and the trust anchor (the service's ``root-ca.pem``, or a C2PA trust list)::

    head = SignedTreeHead.from_dict(json.loads(body_of_GET_v1_log))
    head.verify(trust_anchor_pem)          # raises SigningError when it is not the service's signature

The signed message is ``b"ConsentGate transparency log tree head v1\\n"`` followed by the compact,
key-sorted JSON of ``tree_size``, ``root_hash`` (hex) and ``timestamp`` (ISO 8601, UTC): the prefix keeps
a tree head from ever being mistaken for a C2PA claim signed by the same key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from provenance.errors import SigningError
from provenance.keys import SignFn, verify_chain, verify_signature

__all__ = ["CONTEXT", "SignedTreeHead"]

CONTEXT = b"ConsentGate transparency log tree head v1\n"


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    root_hash: str
    timestamp: str
    alg: str
    signature: str  # base64
    certificate_chain_pem: str

    @staticmethod
    def message(tree_size: int, root_hash: str, timestamp: str) -> bytes:
        body = {"root_hash": root_hash, "timestamp": timestamp, "tree_size": tree_size}
        return CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def sign(cls, tree_size: int, root_hash: str, sign_fn: SignFn, alg: str, cert_chain_pem: bytes, *,
             now: dt.datetime | None = None) -> SignedTreeHead:
        """Sign the head of a log of ``tree_size`` entries whose Merkle root is ``root_hash`` (hex)."""
        if tree_size < 0 or len(root_hash) != 64:
            raise SigningError(f"a tree head needs a size >= 0 and a hex SHA-256 root, got {tree_size}, {root_hash!r}")
        timestamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
        try:
            signature = sign_fn(cls.message(tree_size, root_hash, timestamp))
        except Exception as e:  # the signer may be an operator's KMS client
            raise SigningError(f"could not sign the log's tree head: {type(e).__name__}: {e}") from e
        return cls(tree_size, root_hash, timestamp, alg, base64.b64encode(signature).decode("ascii"),
                   cert_chain_pem.decode("ascii"))

    def verify(self, trust_anchor_pem: bytes | None = None) -> None:
        """Check the signature under the head's leaf certificate and, given ``trust_anchor_pem``, that the
        certificate chain is issued under it. Raises :class:`SigningError` saying what failed."""
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except (binascii.Error, ValueError) as e:
            raise SigningError(f"the tree head's signature is not base64: {e}") from e
        chain = self.certificate_chain_pem.encode("ascii")
        verify_signature(chain, self.alg, self.message(self.tree_size, self.root_hash, self.timestamp), signature)
        if trust_anchor_pem is not None:
            verify_chain(chain, trust_anchor_pem)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SignedTreeHead:
        """A head as :meth:`to_dict` (and ``GET /v1/log``) gives it; missing or mistyped fields are named."""
        types = {"tree_size": int, "root_hash": str, "timestamp": str, "alg": str, "signature": str,
                 "certificate_chain_pem": str}
        if not isinstance(data, dict):
            raise SigningError(f"a tree head is a JSON object, got {type(data).__name__}")
        wrong = [k for k, t in types.items() if not isinstance(data.get(k), t) or isinstance(data.get(k), bool)]
        if wrong:
            raise SigningError(f"the tree head lacks or mistypes: {', '.join(wrong)}")
        return cls(**{k: data[k] for k in types})
