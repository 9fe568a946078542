"""Kept for imports written before the split: the Entra state lives in ``entra/state.py``."""

from airflow_provider_graphcert.testing.emulator.entra.state import *  # noqa: F403
