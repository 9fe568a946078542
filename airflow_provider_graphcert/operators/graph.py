"""GraphRequestOperator: any Graph call from a DAG, paged exports streamed to JSON Lines."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Context

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.files import write_json_lines
from airflow_provider_graphcert.graph.errors import json_body
from airflow_provider_graphcert.operators.base import GraphCertBaseOperator, explained_errors

# XCom lives in the metadata database; large results belong in a file (output_path).
DEFAULT_MAX_XCOM_ITEMS = 1000


class GraphRequestOperator(GraphCertBaseOperator):
    """Call Microsoft Graph with the connection's certificate credentials.

    :param path: API path under the version, e.g. ``/users`` or ``/sites/root/lists`` (templated).
    :param method: HTTP method (default GET).
    :param query: query options such as ``{"$select": "id,displayName"}`` (templated).
    :param headers: extra headers, e.g. ``{"ConsistencyLevel": "eventual"}``; sent on every page.
    :param body: JSON body for POST/PATCH/PUT (templated).
    :param paginate: follow ``@odata.nextLink`` and return every item of the collection.
    :param output_path: write the items as JSON Lines to this file (atomically); XCom then gets
        ``{"path": ..., "count": ...}`` instead of the data.
    :param max_xcom_items: without output_path, fail rather than push more items than this to XCom.
    :param msgraph_cert_conn_id: the ``msgraph_cert`` connection to use.
    :param hook_params: extra arguments for :class:`GraphCertHook`, e.g. ``{"retry_policy": ...}``.
    """

    template_fields: Sequence[str] = ("path", "query", "headers", "body", "output_path")
    template_fields_renderers = {"query": "json", "body": "json", "headers": "json"}

    def __init__(
        self,
        *,
        path: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        paginate: bool = False,
        output_path: str | None = None,
        max_xcom_items: int = DEFAULT_MAX_XCOM_ITEMS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.method = method.upper()
        self.query = query
        self.headers = headers
        self.body = body
        self.paginate = paginate
        self.output_path = output_path
        self.max_xcom_items = max_xcom_items

    def execute(self, context: Context) -> Any:
        with explained_errors(self.log):
            return self._call_graph()

    def _call_graph(self) -> Any:
        client = self.hook.get_conn()
        params = dict(self.query) if self.query else None
        headers = dict(self.headers) if self.headers else None
        if self.paginate:
            if self.method != "GET":
                raise ConfigurationError("paginate=True works with GET requests only.", field="method")
            items = client.iter_items(self.path, params=params, headers=headers)
        else:
            response = client.request(self.method, self.path, params=params, json=self.body, headers=headers)
            result = json_body(response) if response.content else None
            if not self.output_path:
                return result
            items = _records(result)
        if self.output_path:
            path = Path(self.output_path)
            with _full_collections_skip_older_objects():
                count = write_json_lines(path, items)
            self.log.info("Wrote %d records to %s.", count, path)
            return {"path": str(path), "count": count}
        return self._bounded(items)

    def _bounded(self, items: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        for item in items:
            if len(collected) >= self.max_xcom_items:
                raise ConfigurationError(
                    f"{self.path} returned more than max_xcom_items={self.max_xcom_items} items; set "
                    "output_path to write them to a JSON Lines file instead of XCom.",
                    field="output_path",
                )
            collected.append(item)
        return collected


def _records(result: Any) -> Iterator[Any]:
    if isinstance(result, dict) and isinstance(result.get("value"), list):
        yield from result["value"]
    elif result is not None:
        yield result


@contextlib.contextmanager
def _full_collections_skip_older_objects() -> Iterator[None]:
    """While an export runs, full garbage collections walk only the objects created since it began.

    Each page's records live through a collection or two while they are written, which sets off
    full collections, and each walks every object Airflow has loaded (about 170,000): in the
    100,000-user export two of them cost about 0.26 s of CPU (docs/benchmarks.md). ``gc.freeze``
    sets the objects present now aside and ``gc.unfreeze`` returns them
    (https://docs.python.org/3/library/gc.html#gc.freeze); a process that has frozen objects
    already (Airflow's Celery worker does, before forking) is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
