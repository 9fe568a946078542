"""Test helpers: an emulated Entra ID + Microsoft Graph service and its pytest fixtures.

``GraphEmulator`` is imported lazily so that loading the pytest plugin (registered for every
pytest run once the provider is installed) costs nothing until a test asks for the emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

__all__ = ["GraphEmulator"]


def __getattr__(name: str) -> Any:
    if name == "GraphEmulator":
        from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

        return GraphEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
