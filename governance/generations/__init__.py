"""Generations: the request, the gate (precheck, generate, scan, seal, release), held generations' reviews
and the public consent record."""
