"""Kept for imports written before the split: snapshots live in ``graph/snapshots.py``."""

from airflow_provider_graphcert.testing.emulator.graph.snapshots import *  # noqa: F403
