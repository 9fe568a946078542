"""Fixtures for the SDK fidelity suite; the harness itself is in sdk_harness.py."""

from __future__ import annotations

from sdk_harness import fidelity

__all__ = ["fidelity"]
