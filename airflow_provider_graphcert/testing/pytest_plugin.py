"""pytest fixtures for the emulated Entra ID + Graph service (entry point ``pytest11``).

pytest loads this module for every run wherever the provider is installed, so it imports
nothing heavy (no Airflow, no uvicorn) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator


@pytest.fixture
def graph_emulator() -> Iterator[GraphEmulator]:
    """A running emulator with empty state and no faults, stopped after the test."""
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

    with GraphEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def graph_emulator_session() -> Iterator[GraphEmulator]:
    """One emulator for the whole session: add your own tenant and app, and clear any faults you add."""
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

    with GraphEmulator() as emulator:
        yield emulator
