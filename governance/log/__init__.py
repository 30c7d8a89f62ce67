"""The transparency log: append-only entries, Merkle proofs (RFC 9162), signed tree heads and the signing keys."""
