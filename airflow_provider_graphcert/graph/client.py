"""GraphClient: one pooled session, a token on every request, retries and paging in one place each.

Plain Python (no Airflow). ``verify`` and ``proxies`` are passed on every request because requests
lets REQUESTS_CA_BUNDLE override a session's ``verify`` (reference E).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_graphcert.auth.token_cache import AccessToken
from airflow_provider_graphcert.diagnostics import token_claims
from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError, GraphTransportError
from airflow_provider_graphcert.graph.errors import graph_error
from airflow_provider_graphcert.graph.retry import RetryBudget, RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from requests.sessions import _Settings

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


class EnvironmentCachingSession(requests.Session):
    """A requests.Session that reads the proxy and CA environment once per origin, not per request.

    requests re-scans every environment variable (proxies, NO_PROXY, REQUESTS_CA_BUNDLE) on each
    request; in a folder transfer that was ~15% of the client's CPU (docs/benchmarks.md). The result
    is the same as requests' own merge, memoised by origin and the no_proxy in effect.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str | None], dict[str, str]] = {}
        self._environment_lock = threading.Lock()

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        if not self.trust_env or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        proxies = dict(proxies or {})
        key = (_origin(url), proxies.get("no_proxy"))
        with self._environment_lock:
            environ_proxies = self._environment.get(key)
            if environ_proxies is None:
                environ_proxies = requests.utils.get_environ_proxies(url, no_proxy=key[1])
                self._environment[key] = environ_proxies
        for name, value in environ_proxies.items():
            proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        return {
            "proxies": _merge_setting(proxies, self.proxies),
            "stream": _merge_setting(stream, self.stream),
            "verify": _merge_setting(verify, self.verify),
            "cert": _merge_setting(cert, self.cert),
        }


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
        self.session = EnvironmentCachingSession()
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
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one logical request, retrying throttling, transient failures and one stale token.

        ``authenticated=False`` is for pre-authenticated download/upload URLs on other hosts: no
        Authorization header goes there (reference B7, B9). ``idempotent`` says whether the
        request is safe to repeat after a lost reply when its method alone does not tell (a POST
        that creates an upload session is; a PUT with conflictBehavior=rename is not).
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
                retryable = self.retry.retryable_transport_error(method, idempotent)
                delay = budget.next_delay(None) if retryable else None
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
            if self.retry.retryable_status(method, response.status_code, idempotent):
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
                error.attempts = budget.attempts
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
        """Every item of a collection, lazily across pages; a page of anything but objects is an error."""
        for page in self.pages(path_or_url, params=params, headers=headers):
            items = page.get("value") or []
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise GraphCertError(
                    f"Graph returned a malformed page for {_display(self.url(path_or_url))}: 'value' is not a list "
                    "of objects."
                )
            yield from items

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge_setting(request_value: Any, session_value: Any) -> Any:
    """requests.sessions.merge_setting: the request's value wins; mappings merge, None deletes a key."""
    if session_value is None:
        return request_value
    if request_value is None:
        return session_value
    if not (isinstance(request_value, Mapping) and isinstance(session_value, Mapping)):
        return request_value
    merged = {**session_value, **request_value}
    return {key: value for key, value in merged.items() if value is not None}


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
