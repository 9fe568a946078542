"""GraphClient: one pooled session, a token on every request, retries and paging in one place each.

Plain Python (no Airflow). ``verify`` and ``proxies`` are passed on every request because requests
lets REQUESTS_CA_BUNDLE override a session's ``verify`` (reference E).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_graphcert.auth.token_cache import AccessToken
from airflow_provider_graphcert.diagnostics import token_claims
from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError, GraphTransportError
from airflow_provider_graphcert.graph.errors import graph_error
from airflow_provider_graphcert.graph.retry import RetryBudget, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "v1.0"
# Folder transfers run 8 workers by default; leave headroom for paging alongside them.
DEFAULT_POOL_SIZE = 16
USER_AGENT = "airflow-provider-graphcert"

_TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class TokenSource(Protocol):
    def get_token(self) -> AccessToken: ...

    def invalidate(self, stale: AccessToken | None = None) -> None: ...


@dataclass
class GraphClient:
    """Talks to one Graph host as one app. Thread-safe: share it across a task's worker threads."""

    tokens: TokenSource
    graph_url: str = "https://graph.microsoft.com"
    api_version: str = DEFAULT_API_VERSION
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    timeout: float = 60.0
    retry: RetryPolicy | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.graph_url = self.graph_url.rstrip("/")
        self.retry = self.retry or RetryPolicy()
        self._origin = _origin(self.graph_url)
        self.session = requests.Session()
        # Retries are ours (RetryPolicy); the adapter only pools connections.
        adapter = HTTPAdapter(pool_connections=self.pool_size, pool_maxsize=self.pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    # -- addressing -----------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path; absolute URLs must stay on the Graph host."""
        if path_or_url.startswith(("https://", "http://")):
            if _origin(path_or_url) != self._origin:
                raise GraphCertError(
                    f"Refusing to send the Graph token to {_origin(path_or_url)}: Graph returned a link to a "
                    f"host other than {self._origin}."
                )
            return path_or_url
        return f"{self.graph_url}/{self.api_version}/{path_or_url.lstrip('/')}"

    # -- requests -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        authenticated: bool = True,
        allow_redirects: bool = True,
        raise_for_status: bool = True,
    ) -> requests.Response:
        """Send one logical request, retrying throttling, transient failures and one stale token.

        ``authenticated=False`` is for pre-authenticated download/upload URLs on other hosts: no
        Authorization header goes there (reference B7, B9).
        """
        url = self.url(path_or_url) if authenticated else path_or_url
        client_request_id = str(uuid.uuid4())
        assert self.retry is not None
        budget = RetryBudget(self.retry)
        refreshed_token = False
        while True:
            token = self.tokens.get_token() if authenticated else None
            request_headers = {"client-request-id": client_request_id, **(headers or {})}
            if token is not None:
                request_headers["Authorization"] = f"Bearer {token.token}"
            if budget.attempts > 1:
                request_headers["retry-attempt"] = str(budget.attempts - 1)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=request_headers,
                    stream=stream,
                    allow_redirects=allow_redirects and authenticated,
                    verify=self.verify,
                    proxies=dict(self.proxies) if self.proxies else None,
                    timeout=self.timeout,
                )
            except _TRANSPORT_ERRORS as exc:
                delay = budget.next_delay(None) if self.retry.retryable_transport_error(method) else None
                if delay is None:
                    raise GraphTransportError(
                        f"Graph {method} {_display(url)} failed: {type(exc).__name__} after "
                        f"{budget.attempts} attempt(s) [client-request-id={client_request_id}]."
                    ) from None
                log.warning("Graph %s %s: %s; retrying in %.1f s.", method, _display(url), type(exc).__name__, delay)
                self._wait(budget, delay)
                continue
            if response.status_code == 401 and token is not None and not refreshed_token:
                # The token may have been revoked or expired early: fetch a fresh one once.
                response.close()
                self.tokens.invalidate(token)
                refreshed_token = True
                continue
            if self.retry.retryable_status(method, response.status_code):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                delay = budget.next_delay(retry_after)
                if delay is not None:
                    log.warning(
                        "Graph %s %s answered %d (request-id %s); retrying in %.1f s.",
                        method,
                        _display(url),
                        response.status_code,
                        response.headers.get("request-id", "-"),
                        delay,
                    )
                    response.close()
                    self._wait(budget, delay)
                    continue
            if raise_for_status and response.status_code >= 400:
                error = graph_error(response, method=method, client_request_id=client_request_id, roles=_roles(token))
                response.close()
                raise error
            return response

    def _wait(self, budget: RetryBudget, delay: float) -> None:
        budget.spend(delay)
        self.sleep(delay)

    def get_json(self, path_or_url: str, **kwargs: Any) -> Any:
        response = self.request("GET", path_or_url, **kwargs)
        return _json_body(response)

    def send_json(self, method: str, path_or_url: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request(method, path_or_url, json=body, **kwargs)
        return _json_body(response) if response.content else None

    # -- paging ---------------------------------------------------------------------------------

    def pages(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield each page of a collection, following @odata.nextLink verbatim (reference B3).

        Custom headers (e.g. ConsistencyLevel) are sent on every page because Graph does not carry
        them over. Only one page is held at a time.
        """
        url: str | None = path_or_url
        query = params
        while url:
            page = self.get_json(url, params=query, headers=headers)
            if not isinstance(page, dict):
                raise GraphCertError(f"Graph returned a page that is not a JSON object from {_display(url)}.")
            yield page
            next_link = page.get("@odata.nextLink")
            url = self.url(next_link) if isinstance(next_link, str) else None
            query = None  # the next link already carries every query option

    def iter_items(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, lazily across pages."""
        for page in self.pages(path_or_url, params=params, headers=headers):
            yield from page.get("value") or []

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _display(url: str) -> str:
    """The URL without its query: pre-authenticated URLs carry credentials there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _roles(token: AccessToken | None) -> list[str] | None:
    if token is None:
        return None
    roles = token_claims(token.token).get("roles")
    return [str(r) for r in roles] if isinstance(roles, list) else None


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GraphRequestError(
            f"Graph answered HTTP {response.status_code} with a body that is not JSON "
            f"[request-id={response.headers.get('request-id')}].",
            status=response.status_code,
            request_id=response.headers.get("request-id"),
        ) from None
