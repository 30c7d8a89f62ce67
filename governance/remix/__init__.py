"""Remixes: a generation made from a released one. Lineage is kept as edges (child -> parent); consent is
checked over the whole ancestry, and a takedown or a revocation follows the edges down to the descendants."""
