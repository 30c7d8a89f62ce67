"""The HTTP API (Flask blueprints)."""
