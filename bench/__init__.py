"""Benchmarks: `make bench` (or `python -m bench [name ...]`). Results are ratios against a baseline in the same run."""
