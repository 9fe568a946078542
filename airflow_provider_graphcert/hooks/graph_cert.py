"""The Airflow face of the auth core: an `msgraph_cert` connection becomes a configured Graph client."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, Variable
from airflow.sdk.log import mask_secret

from airflow_provider_graphcert.auth.token_client import TokenProvider
from airflow_provider_graphcert.diagnostics import describe_success
from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.settings import CONN_TYPE, ConnectionSettings, parse_extra

if TYPE_CHECKING:
    from airflow_provider_graphcert.sharepoint.service import SharePoint

# PEM lines are 64 characters; masking each one too catches a key printed in pieces.
_MIN_MASKED_LINE = 16


def mask_material(value: str | None) -> None:
    """Register a secret with Airflow's masker, multi-line PEM text line by line as well."""
    if not value:
        return
    mask_secret(value)
    for line in value.replace("\\n", "\n").splitlines():
        line = line.strip()
        if len(line) >= _MIN_MASKED_LINE and not line.startswith("-----"):
            mask_secret(line)


class GraphCertHook(BaseHook):
    """Microsoft Graph as an Entra ID app authenticated by a client certificate.

    ``get_conn()`` returns the :class:`GraphClient` (retries, paging, typed errors) built from the
    connection; ``sharepoint`` offers the SharePoint jobs over that client.

    :param msgraph_cert_conn_id: an Airflow connection of type ``msgraph_cert``.
    :param retry_policy: how Graph requests are retried and how long they may wait when throttled;
        overrides the connection's ``retry_*`` fields (the defaults are :class:`RetryPolicy`'s).
    :param timeout: seconds per request; overrides the connection's ``timeout`` field.
    """

    conn_name_attr = "msgraph_cert_conn_id"
    default_conn_name = "msgraph_cert_default"
    conn_type = CONN_TYPE
    hook_name = "Microsoft Graph (client certificate)"

    def __init__(
        self,
        msgraph_cert_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.msgraph_cert_conn_id = msgraph_cert_conn_id
        self.retry_policy = retry_policy
        self.timeout = timeout
        self._client: GraphClient | None = None

    @cached_property
    def settings(self) -> ConnectionSettings:
        conn = self.get_connection(self.msgraph_cert_conn_id)
        extra = parse_extra(conn.extra)  # extra_dejson hides text that is not JSON (and logs a traceback)
        mask_material(conn.password)
        for name in ("certificate_data", "client_assertion"):
            value = extra.get(name)
            mask_material(value if isinstance(value, str) else None)
        settings = ConnectionSettings.from_fields(
            login=conn.login, password=conn.password, extra=extra, conn_id=self.msgraph_cert_conn_id
        )
        overrides: dict[str, Any] = {}
        if self.retry_policy is not None:
            overrides["retry"] = self.retry_policy
        if self.timeout is not None:
            overrides["timeout"] = self.timeout
        return replace(settings, **overrides) if overrides else settings

    @cached_property
    def token_provider(self) -> TokenProvider:
        return self.settings.token_provider(secret_sink=mask_secret)

    def get_access_token(self) -> str:
        """A valid Graph access token, from the process cache when possible."""
        return self.token_provider.get_token().token

    def test_connection(self) -> tuple[bool, str]:
        """Get a fresh token and say what it grants; never raises (Airflow's UI and CLI call this)."""
        try:
            provider = self.token_provider
            token = provider.request_token()
            return True, describe_success(self.settings, token.token)
        except GraphCertError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"Unexpected {type(exc).__name__} while testing the connection: {exc}"

    def get_conn(self) -> GraphClient:
        """The Graph client for this connection, built once per hook.

        It shares the hook's token provider (and so the process-wide token cache) and is
        thread-safe: a task's worker threads can share it.
        """
        if self._client is None:
            settings = self.settings
            self._client = GraphClient(
                tokens=self.token_provider,
                graph_url=settings.graph_url,
                verify=settings.verify,
                proxies=settings.proxies,
                timeout=settings.timeout,
                retry=settings.retry,
            )
        return self._client

    @property
    def client(self) -> GraphClient:
        """Deprecated alias of :meth:`get_conn`."""
        warnings.warn("GraphCertHook.client is deprecated; use get_conn().", DeprecationWarning, stacklevel=2)
        return self.get_conn()

    def get_client(self) -> GraphClient:
        """Deprecated alias of :meth:`get_conn`."""
        warnings.warn("GraphCertHook.get_client() is deprecated; use get_conn().", DeprecationWarning, stacklevel=2)
        return self.get_conn()

    @cached_property
    def sharepoint(self) -> SharePoint:
        """SharePoint jobs (resolve, download, upload, sync, lists) over this hook's client."""
        # Imported here: a task that only calls Graph does not load the SharePoint jobs (about a
        # fifth of the hook's import time; docs/benchmarks.md, cold start).
        from airflow_provider_graphcert.sharepoint.service import SharePoint

        return SharePoint(self.get_conn(), logger=self.log)


class VariableDeltaStore:
    """Keeps a sync's delta link in an Airflow Variable, so any worker can continue the sync."""

    def __init__(self, key: str) -> None:
        self.key = key

    @classmethod
    def for_folder(cls, conn_id: str, folder: str) -> VariableDeltaStore:
        digest = hashlib.sha256(folder.encode("utf-8")).hexdigest()[:16]
        return cls(f"graphcert_delta__{conn_id}__{digest}")

    def load(self) -> str | None:
        value = Variable.get(self.key, default=None)
        return str(value) if value else None

    def save(self, link: str) -> None:
        Variable.set(self.key, link, description="Delta link of a SharePoint sync (airflow-provider-graphcert)")

    def describe(self) -> str:
        """Where the link is kept, for error messages that tell the user what to clear."""
        return f"the Airflow Variable {self.key!r}"
