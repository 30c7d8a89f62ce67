"""Likenesses: enrollment (photo and live), consent (modes and grants), disputes over a claim, and the
protected public figures."""
