"""The emulator's parts: state (tenants, apps, tokens), the rules for client assertions, the
Entra routes, the fault switchboard and the server that puts them on loopback HTTPS."""

from __future__ import annotations

from airflow_provider_graphcert.testing.emulator.assertions import EntraError
from airflow_provider_graphcert.testing.emulator.faults import FaultRule, FaultSwitchboard, InjectedFault
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator, ReceivedRequest, RequestLog
from airflow_provider_graphcert.testing.emulator.state import (
    AccessTokenError,
    AccessTokenExpiredError,
    AccessTokenRevokedError,
    App,
    EmulatorState,
    Tenant,
    TokenRequestRecord,
)

__all__ = [
    "AccessTokenError",
    "AccessTokenExpiredError",
    "AccessTokenRevokedError",
    "App",
    "EmulatorState",
    "EntraError",
    "FaultRule",
    "FaultSwitchboard",
    "GraphEmulator",
    "InjectedFault",
    "ReceivedRequest",
    "RequestLog",
    "Tenant",
    "TokenRequestRecord",
]
