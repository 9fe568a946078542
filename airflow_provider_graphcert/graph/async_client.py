"""AsyncGraphClient: the coroutine twin of GraphClient for Airflow's triggerer, on httpx.

Same rules, other transport: retries and throttling are decided by :mod:`graph.retry` (one
RetryPolicy, one budget per logical request, Retry-After honoured), errors are typed by
:func:`graph.errors.graph_error`, absolute links must stay on the Graph host, and paging follows
``@odata.nextLink`` verbatim. Nothing here blocks the event loop: the CA bundle is read in a
worker thread once, and every wait is an ``await``. Responses are read whole (triggers only ask
for small JSON pages); transfers stay on the sync client.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_graphcert.auth.claims import token_roles
from airflow_provider_graphcert.auth.token_cache import AccessToken
from airflow_provider_graphcert.errors import GraphCertError, GraphTransportError
from airflow_provider_graphcert.graph.addressing import graph_request_url
from airflow_provider_graphcert.graph.client import DEFAULT_API_VERSION, USER_AGENT
from airflow_provider_graphcert.graph.errors import graph_error, json_body
from airflow_provider_graphcert.graph.redaction import display_url
from airflow_provider_graphcert.graph.retry import RetryBudget, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

# Says at the service which side called (a triggerer poll, not a task): handy in Graph's logs too.
ASYNC_USER_AGENT = f"{USER_AGENT} (async)"
# A paging loop follows what the service sends; a hostile or broken feed must not spin forever.
DEFAULT_MAX_PAGES = 10_000

_TRANSPORT_ERRORS = (httpx.TransportError,)


class AsyncTokenSourceProtocol(Protocol):
    async def get_token(self) -> AccessToken: ...

    async def invalidate(self, stale: AccessToken | None = None) -> None: ...


@dataclass
class AsyncGraphClient:
    """Talks to one Graph host as one app from coroutines. Use as ``async with``."""

    tokens: AsyncTokenSourceProtocol
    graph_url: str = "https://graph.microsoft.com"
    api_version: str = DEFAULT_API_VERSION
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    timeout: float = 60.0
    retry: RetryPolicy | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    max_pages: int = DEFAULT_MAX_PAGES
    _http: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.graph_url = self.graph_url.rstrip("/")
        self.retry = self.retry or RetryPolicy()

    async def open(self) -> None:
        if self._http is not None:
            return
        # Loading a CA bundle reads a file and parses certificates: keep it off the loop.
        context = await asyncio.to_thread(_ssl_context, self.verify)
        mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
        for scheme, proxy in (self.proxies or {}).items():
            if scheme in ("http", "https"):
                mounts[f"{scheme}://"] = httpx.AsyncHTTPTransport(verify=context, proxy=proxy)
        # trust_env=False: the connection's ca_bundle and proxies decide, as on the sync side where
        # they are passed on every request so that REQUESTS_CA_BUNDLE cannot override them.
        self._http = httpx.AsyncClient(
            verify=context,
            mounts=mounts or None,
            timeout=self.timeout,
            follow_redirects=False,  # no credential follows a redirect
            trust_env=False,
            headers={"User-Agent": ASYNC_USER_AGENT},
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncGraphClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- addressing -----------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path; absolute URLs must stay on the Graph host."""
        return graph_request_url(self.graph_url, self.api_version, path_or_url)

    # -- requests -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request, retrying throttling, transient failures and one stale token."""
        await self.open()
        assert self._http is not None and self.retry is not None
        url = self.url(path_or_url)
        client_request_id = str(uuid.uuid4())
        budget = RetryBudget(self.retry)
        refreshed_token = False
        while True:
            token = await self.tokens.get_token()
            request_headers = {
                "client-request-id": client_request_id,
                **(headers or {}),
                "Authorization": f"Bearer {token.token}",
            }
            if budget.attempts > 1:
                request_headers["retry-attempt"] = str(budget.attempts - 1)
            try:
                response = await self._http.request(
                    method, url, params=dict(params) if params else None, json=json, headers=request_headers
                )
            except _TRANSPORT_ERRORS as exc:
                retryable = self.retry.retryable_transport_error(method, idempotent)
                delay = budget.next_delay(None) if retryable else None
                if delay is None:
                    raise GraphTransportError(
                        f"Graph {method} {display_url(url)} failed: {type(exc).__name__} after "
                        f"{budget.attempts} attempt(s) [client-request-id={client_request_id}]."
                    ) from None
                log.warning("Graph %s %s: %s; retrying in %.1f s.", method, display_url(url), type(exc).__name__, delay)
                await self._wait(budget, delay)
                continue
            if response.status_code == 401 and not refreshed_token:
                # The token may have been revoked or expired early: fetch a fresh one once.
                await self.tokens.invalidate(token)
                refreshed_token = True
                continue
            if self.retry.retryable_status(method, response.status_code, idempotent):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                delay = budget.next_delay(retry_after)
                if delay is not None:
                    log.warning(
                        "Graph %s %s answered %d (request-id %s); retrying in %.1f s.",
                        method,
                        display_url(url),
                        response.status_code,
                        response.headers.get("request-id", "-"),
                        delay,
                    )
                    await self._wait(budget, delay)
                    continue
            if raise_for_status and response.status_code >= 400:
                error = graph_error(
                    _as_requests_response(response),
                    method=method,
                    client_request_id=client_request_id,
                    roles=None if token is None else token_roles(token.token),
                )
                error.attempts = budget.attempts
                raise error
            return response

    async def _wait(self, budget: RetryBudget, delay: float) -> None:
        budget.spend(delay)
        await self.sleep(delay)

    async def get_json(self, path_or_url: str, **kwargs: Any) -> Any:
        response = await self.request("GET", path_or_url, **kwargs)
        return json_body(response)

    # -- paging ---------------------------------------------------------------------------------

    async def pages(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each page of a collection, following @odata.nextLink verbatim (at most ``max_pages``)."""
        url: str | None = path_or_url
        query = params
        for _ in range(self.max_pages):
            if not url:
                return
            page = await self.get_json(url, params=query, headers=headers)
            if not isinstance(page, dict):
                raise GraphCertError(
                    f"Graph returned a page that is not a JSON object from {display_url(self.url(url))}."
                )
            yield page
            next_link = page.get("@odata.nextLink")
            url = self.url(next_link) if isinstance(next_link, str) else None
            query = None  # the next link already carries every query option
        if url:
            raise GraphCertError(
                f"Graph kept sending next pages for {display_url(self.url(path_or_url))} past {self.max_pages} pages; "
                "stopped to stay bounded."
            )

    async def iter_items(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, lazily across pages; a page of anything but objects is an error."""
        async for page in self.pages(path_or_url, params=params, headers=headers):
            items = page.get("value") or []
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise GraphCertError(
                    f"Graph returned a malformed page for {display_url(self.url(path_or_url))}: 'value' is not a list "
                    "of objects."
                )
            for item in items:
                yield item


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    # The sync side trusts certifi's bundle through requests; trust the same roots here.
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _as_requests_response(response: httpx.Response) -> requests.Response:
    """The parts graph_error reads (status, headers, URL, body), so both clients share one error mapper."""
    converted = requests.Response()
    converted.status_code = response.status_code
    converted.headers = CaseInsensitiveDict(dict(response.headers))
    converted.url = str(response.url)
    converted._content = response.content
    converted.encoding = response.encoding
    return converted
