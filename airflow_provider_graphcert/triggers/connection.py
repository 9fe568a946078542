"""An `msgraph_cert` connection, read from the triggerer's event loop, as an AsyncGraphClient."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from airflow.sdk import BaseHook, Connection
from airflow.sdk.log import mask_secret

from airflow_provider_graphcert.auth.async_tokens import AsyncTokenSource
from airflow_provider_graphcert.auth.token_client import TokenProvider
from airflow_provider_graphcert.graph.async_client import ASYNC_USER_AGENT, AsyncGraphClient
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.hooks.graph_cert import mask_material
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.sharepoint.resolver import Drive, SharePointResolver


@dataclass(frozen=True)
class TriggerGraph:
    """What a trigger needs to call Graph: the async client and, for one-off lookups, the settings."""

    settings: ConnectionSettings
    provider: TokenProvider

    def async_client(self) -> AsyncGraphClient:
        return AsyncGraphClient(
            tokens=AsyncTokenSource(self.provider),
            graph_url=self.settings.graph_url,
            verify=self.settings.verify,
            proxies=self.settings.proxies,
            timeout=self.settings.timeout,
        )

    async def locate(self, *, url: str | None, site_url: str | None, library: str | None) -> tuple[Drive, str]:
        """Site -> library -> path, once per trigger start, with the sync resolver in a worker thread.

        Resolution has many URL forms and rules (subsites, library display vs URL names) that the
        tested sync resolver owns; running it once in a thread keeps one implementation and the loop
        free. It shares the process-wide token with the async client.
        """

        def locate() -> tuple[Drive, str]:
            with GraphClient(
                tokens=self.provider,
                graph_url=self.settings.graph_url,
                verify=self.settings.verify,
                proxies=self.settings.proxies,
                timeout=self.settings.timeout,
                pool_size=1,
            ) as client:
                return SharePointResolver(client).drive_for(url=url, site_url=site_url, library=library)

        return await asyncio.to_thread(locate)


async def trigger_graph(conn_id: str) -> TriggerGraph:
    connection = await BaseHook.aget_connection(conn_id)
    # Off the loop: decoding inline key material and checking the CA bundle touch files and parse
    # keys, and Airflow's sync masker may block on the supervisor socket (or refuse, on the loop).
    settings = await asyncio.to_thread(_masked_settings, connection, conn_id)
    provider = settings.token_provider(secret_sink=mask_secret)
    # Token requests from the triggerer say so, like its Graph calls (counted in docs/executors.md).
    provider.session.headers["User-Agent"] = ASYNC_USER_AGENT
    return TriggerGraph(settings=settings, provider=provider)


def _masked_settings(connection: Connection, conn_id: str) -> ConnectionSettings:
    extra = connection.extra_dejson
    mask_material(connection.password)
    for name in ("certificate_data", "client_assertion"):
        value = extra.get(name)
        mask_material(value if isinstance(value, str) else None)
    return ConnectionSettings.from_fields(
        login=connection.login, password=connection.password, extra=extra, conn_id=conn_id
    )
