"""Benchmarks against the tools users would otherwise pick, and the physical limit (docs/benchmarks.md).

Run with ``python -m bench`` (or ``make bench``). Not part of ``make test``.
"""
