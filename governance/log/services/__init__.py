"""The log domain's services: the log itself (translog) and the signing and watermark keys (keys)."""
