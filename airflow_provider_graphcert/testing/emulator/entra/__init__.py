"""The emulated Entra ID service: its state (tenants, apps, certificates, tokens), the rules a
client assertion must meet, and the routes of the authority host."""

from __future__ import annotations

from airflow_provider_graphcert.testing.emulator.entra.assertions import EntraError
from airflow_provider_graphcert.testing.emulator.entra.routes import EntraRoutes
from airflow_provider_graphcert.testing.emulator.entra.state import EmulatorState

__all__ = ["EmulatorState", "EntraError", "EntraRoutes"]
