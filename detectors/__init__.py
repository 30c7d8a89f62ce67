"""Face detection and embeddings, enrollment templates, the likeness index, video scanning."""
