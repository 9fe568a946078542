"""The Airflow entry of the ``spo://`` scheme: ``schemes`` and ``get_fs`` (provider info "filesystems").

Airflow's ObjectStoragePath takes the connection id from the URL's user part and calls
``get_fs(conn_id, storage_options)``. fsspec itself (pandas' ``read_csv("spo://conn@...")``)
builds :class:`ConnectionFileSystem` from the same URL. Either way the connection becomes a
GraphClient through GraphCertHook, the one place where an Airflow connection is read.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_graphcert.fs import addressing
from airflow_provider_graphcert.fs.filesystem import SharePointFileSystem
from airflow_provider_graphcert.graph.client import GraphClient

schemes = [addressing.PROTOCOL]
DEFAULT_CONN_ID = "msgraph_cert_default"


class ConnectionFileSystem(SharePointFileSystem):
    """SharePointFileSystem for an Airflow connection; instances are shared per connection id."""

    cachable = True

    def __init__(self, conn_id: str | None = None, *, client: GraphClient | None = None, **kwargs: Any) -> None:
        self.conn_id = conn_id or DEFAULT_CONN_ID
        super().__init__(client if client is not None else _client_for(self.conn_id), **kwargs)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        conn_id = addressing.connection_from_url(path)
        return {"conn_id": conn_id} if conn_id else {}


def _client_for(conn_id: str) -> GraphClient:
    # Imported here: loading the file system class (fsspec's registry does) must not load Airflow.
    from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook

    return GraphCertHook(msgraph_cert_conn_id=conn_id).get_conn()


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> SharePointFileSystem:
    """What Airflow calls for ``spo://`` paths (airflow.sdk.io.fs.get_fs)."""
    return ConnectionFileSystem(conn_id=conn_id, **(storage_options or {}))
