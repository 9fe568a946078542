"""The emulator: two services, ``entra`` (Entra ID) and ``graph`` (Microsoft Graph), each with its
models below its routes, plus what they share: the fault switchboard (``faults``), the test CA
(``tls``) and the server that puts both on loopback HTTPS (``server``)."""

from __future__ import annotations

from airflow_provider_graphcert.testing.emulator.entra.assertions import EntraError
from airflow_provider_graphcert.testing.emulator.entra.state import (
    AccessTokenError,
    AccessTokenExpiredError,
    AccessTokenRevokedError,
    App,
    EmulatorState,
    Tenant,
    TokenRequestRecord,
)
from airflow_provider_graphcert.testing.emulator.faults import FaultRule, FaultSwitchboard, InjectedFault
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator, ReceivedRequest, RequestLog

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
