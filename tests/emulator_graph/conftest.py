"""Fixtures for the Graph emulator tests; the harness itself is in graph_harness.py."""

from __future__ import annotations

from graph_harness import graph, library, listeners

__all__ = ["graph", "library", "listeners"]
