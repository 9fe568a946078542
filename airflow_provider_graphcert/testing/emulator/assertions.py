"""Kept for imports written before the split: the assertion rules live in ``entra/assertions.py``."""

from airflow_provider_graphcert.testing.emulator.entra.assertions import *  # noqa: F403
