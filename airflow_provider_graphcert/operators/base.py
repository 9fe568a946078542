"""What every graphcert operator and sensor shares: the hook, the SharePoint location, readable errors.

``hook`` is a cached property, the override point Airflow users know: subclass an operator and
return your own hook, or pass ``hook_params`` (e.g. ``{"retry_policy": RetryPolicy(...)}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Protocol

from airflow.sdk import BaseOperator

from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.sharepoint.locations import SharePointLocation, location_from

# The fields a SharePoint task is pointed with; templated in every task that has them.
LOCATION_FIELDS = ("url", "site_url", "library", "path")

LOCATION_DOC = """
    Where in SharePoint: either ``url`` (a folder or file address copied from the browser, also
    ``Forms/AllItems.aspx?id=...`` links) or ``site_url`` + ``library`` (+ ``path`` inside it).
"""

# Where a message turns from what failed to what to do: after its first sentence or clause
# (not after the "e.g." or "i.e." inside one).
_HINT_BOUNDARY = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.;])\s+(?=\S)")


def split_hint(message: str) -> tuple[str, str | None]:
    """(what failed, what to do) of an error message; the UI's log view cuts one long line off-screen."""
    first_line, _, rest = message.partition("\n")
    match = _HINT_BOUNDARY.search(first_line)
    if match is None:
        return first_line, rest.strip() or None
    hint = (first_line[match.end() :] + ("\n" + rest if rest else "")).strip()
    return first_line[: match.start()], hint or None


class ErrorLogger(Protocol):
    def error(self, event: Any, *args: Any) -> Any: ...


@contextmanager
def explained_errors(log: ErrorLogger) -> Iterator[None]:
    """Log a provider error as what failed, then what to do on a line of its own, and re-raise it."""
    try:
        yield
    except GraphCertError as exc:
        failed, hint = split_hint(str(exc))
        log.error("%s", failed)
        if hint:
            log.error("What to do: %s", hint)
        raise


class GraphCertTaskMixin:
    """The hook of a graphcert task, built once from ``msgraph_cert_conn_id`` and ``hook_params``."""

    msgraph_cert_conn_id: str
    hook_params: Mapping[str, Any]

    def _init_hook_arguments(self, msgraph_cert_conn_id: str, hook_params: Mapping[str, Any] | None) -> None:
        self.msgraph_cert_conn_id = msgraph_cert_conn_id
        self.hook_params = dict(hook_params or {})

    @cached_property
    def hook(self) -> GraphCertHook:
        """The task's GraphCertHook; override in a subclass to supply your own."""
        return GraphCertHook(self.msgraph_cert_conn_id, **self.hook_params)


class SharePointLocationMixin:
    """``url`` or ``site_url`` + ``library`` + ``path``, read after templating as one SharePointLocation."""

    url: str | None
    site_url: str | None
    library: str | None
    path: str

    def _init_location(self, url: str | None, site_url: str | None, library: str | None, path: str | None) -> None:
        self.url = url
        self.site_url = site_url
        self.library = library
        self.path = path or ""

    @property
    def location(self) -> SharePointLocation:
        return location_from(url=self.url, site_url=self.site_url, library=self.library, path=self.path or "")

    @property
    def location_text(self) -> str:
        """The location as the user wrote it (logs, and the key of a sync's saved state)."""
        return self.url or f"{self.site_url}|{self.library}|{self.path or ''}"


class GraphCertBaseOperator(GraphCertTaskMixin, BaseOperator):
    """Base of the graphcert operators: ``msgraph_cert_conn_id``, ``hook_params`` and the ``hook`` property.

    :param msgraph_cert_conn_id: the ``msgraph_cert`` connection to use.
    :param hook_params: extra arguments for :class:`GraphCertHook`, e.g. ``{"retry_policy": ...}``.
    """

    def __init__(
        self,
        *,
        msgraph_cert_conn_id: str = GraphCertHook.default_conn_name,
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_hook_arguments(msgraph_cert_conn_id, hook_params)
