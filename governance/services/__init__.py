"""Service layer: takes a session and typed inputs, knows nothing of Flask, never commits."""
