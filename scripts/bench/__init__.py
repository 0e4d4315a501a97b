"""Benchmarks: each prints its numbers (``python -m scripts.bench.NAME --help``)."""
