"""The VideoGenerator interface and its backends (embedded procedural generator first)."""
