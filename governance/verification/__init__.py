"""Verification: anyone's upload checked for a C2PA manifest, a watermark, a fingerprint and its log entry."""
