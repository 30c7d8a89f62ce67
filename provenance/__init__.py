"""Provenance: C2PA signing and verification, signer keys, visible and invisible watermarks."""
