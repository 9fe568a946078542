"""GraphClient: one pooled session, a token on every request, retries and paging in one place each.

Plain Python (no Airflow). ``verify`` and ``proxies`` are passed on every request because requests
lets REQUESTS_CA_BUNDLE override a session's ``verify`` (docs/microsoft-rules.md §E); the session
itself ignores the environment, which is read once per origin (:class:`RequestEnvironment`).
Redirects are followed here, not by requests, so the token never leaves the Graph host and a loop
ends with a clear error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_graphcert.auth.claims import token_roles
from airflow_provider_graphcert.auth.token_cache import AccessToken
from airflow_provider_graphcert.errors import (
    GraphCertError,
    GraphPagingError,
    GraphRedirectError,
    GraphTransportError,
    GraphUrlError,
)
from airflow_provider_graphcert.graph.addressing import graph_request_url, url_origin
from airflow_provider_graphcert.graph.direct_transport import DirectTransport, RequestBody
from airflow_provider_graphcert.graph.errors import graph_error, json_body
from airflow_provider_graphcert.graph.paging import NextLinkGuard
from airflow_provider_graphcert.graph.read_ahead import read_ahead
from airflow_provider_graphcert.graph.redaction import display_url, install_url_redaction
from airflow_provider_graphcert.graph.retry import RetryBudget, RetryPolicy, parse_retry_after
from airflow_provider_graphcert.graph.throttle import JobThrottle, ThrottleCause

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "v1.0"
# Folder transfers run 8 workers by default; leave headroom for paging alongside them.
DEFAULT_POOL_SIZE = 16
USER_AGENT = "airflow-provider-graphcert"
# Graph redirects /content once (to the download URL); requests allows 30 hops, we need few.
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Statuses whose Retry-After is about the app's (tenant's) quota, so every worker waits it out.
JOB_THROTTLE_STATUSES = frozenset({429, 503})

_TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class TokenSource(Protocol):
    def get_token(self) -> AccessToken: ...

    def invalidate(self, stale: AccessToken | None = None) -> None: ...


class RequestEnvironment:
    """The proxies and CA bundle for each origin, read from the environment once, not per request.

    requests re-scans every environment variable (proxies, NO_PROXY, REQUESTS_CA_BUNDLE) on each
    request; in a folder transfer that was ~15% of the client's CPU (docs/benchmarks.md). The
    session runs with ``trust_env = False`` and each request gets these values, resolved with
    requests' public helpers the way requests itself would (explicit settings win over the
    environment; a configured CA bundle wins over REQUESTS_CA_BUNDLE). ``trust_env = False`` also
    keeps ~/.netrc credentials off every request and redirect.
    """

    def __init__(self, verify: bool | str, proxies: Mapping[str, str] | None) -> None:
        self.verify = verify
        self.proxies = dict(proxies or {})
        self._by_origin: dict[str, tuple[bool | str, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def for_url(self, url: str) -> tuple[bool | str, dict[str, str]]:
        """(verify, proxies) for a request to ``url``."""
        origin = url_origin(url)
        with self._lock:
            resolved = self._by_origin.get(origin)
            if resolved is None:
                resolved = self._resolve(url)
                self._by_origin[origin] = resolved
        return resolved

    def _resolve(self, url: str) -> tuple[bool | str, dict[str, str]]:
        environment = requests.utils.get_environ_proxies(url, no_proxy=self.proxies.get("no_proxy"))
        proxies = {**environment, **self.proxies}
        verify = self.verify
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        return verify, proxies


@dataclass
class _Hop:
    """Where one logical request goes next, as redirects move it."""

    method: str
    url: str
    send_token: bool
    json: Any
    data: RequestBody | None
    redirects: int = 0


@dataclass
class GraphClient:
    """Talks to one Graph host as one app. Thread-safe: share it across a task's worker threads.

    One client is one job's view of Graph: a throttling answer pauses every thread using it
    (:class:`JobThrottle`), and the time paused counts against one budget (``retry.max_job_wait``).
    """

    tokens: TokenSource
    graph_url: str = "https://graph.microsoft.com"
    api_version: str = DEFAULT_API_VERSION
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    timeout: float = 60.0
    retry: RetryPolicy | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    throttle: JobThrottle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.graph_url = self.graph_url.rstrip("/")
        self.retry = self.retry or RetryPolicy()
        self._origin = url_origin(self.graph_url)
        # Read through self, so a policy, sleep or clock set on the client after construction applies.
        self.throttle = JobThrottle(
            lambda: (self.retry or RetryPolicy()).max_job_wait,
            sleep=lambda seconds: self.sleep(seconds),
            clock=lambda: self.clock(),
        )
        self.environment = RequestEnvironment(self.verify, self.proxies)
        self.session = requests.Session()
        self.session.trust_env = False  # read once per origin by self.environment, see there
        # Retries are ours (RetryPolicy); the adapter only pools connections.
        adapter = HTTPAdapter(pool_connections=self.pool_size, pool_maxsize=self.pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.direct = DirectTransport(self.pool_size, USER_AGENT)
        install_url_redaction()

    # -- addressing -----------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path; absolute URLs must stay on the Graph host."""
        return graph_request_url(self.graph_url, self.api_version, path_or_url)

    def fetchable_url(self, url: object, what: str = "URL") -> str:
        """A pre-authenticated URL Graph handed out, checked before it is fetched without the token.

        Only absolute https:// URLs (or the Graph host's own scheme) are fetched: a relative,
        ``file://`` or ``ftp://`` "download URL" is a fault of the service, not a local-disk error.
        """
        text = url if isinstance(url, str) else ""
        parts = urlsplit(text)
        allowed = {"https", urlsplit(self.graph_url).scheme}
        if parts.scheme.lower() not in allowed or not parts.hostname:
            shown = display_url(text) if parts.scheme and parts.netloc else "a relative or empty URL"
            raise GraphUrlError(
                f"Graph handed out a {what} that is not an absolute https:// URL ({shown}); it was not "
                "fetched. This is a fault of the service or of a proxy rewriting its answers."
            )
        return text

    # -- requests -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: RequestBody | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        authenticated: bool = True,
        allow_redirects: bool = True,
        raise_for_status: bool = True,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one logical request, retrying throttling, transient failures and one stale token.

        ``authenticated=False`` is for pre-authenticated download/upload URLs on other hosts: no
        Authorization header goes there and no redirect is followed from there (docs/microsoft-rules.md
        §B7, §B9). Redirects of authenticated requests are followed here: on the Graph host with the
        token, elsewhere only for GET/HEAD and without it. ``idempotent`` says whether the request is
        safe to repeat after a lost reply when its method alone does not tell (a POST that creates an
        upload session is; a PUT with conflictBehavior=rename is not).
        """
        url = self.url(path_or_url) if authenticated else self.fetchable_url(path_or_url)
        hop = _Hop(method.upper(), url, authenticated, json, data)
        client_request_id = str(uuid.uuid4())
        assert self.retry is not None
        budget = RetryBudget(self.retry)
        refreshed_token = False
        while True:
            self.throttle.wait()
            token = self.tokens.get_token() if hop.send_token else None
            response = self._send(hop, token, budget, client_request_id, params, headers, stream, idempotent)
            if response is None:
                continue  # a transport error that is worth another attempt; the wait is done
            if response.status_code in REDIRECT_STATUSES and authenticated and allow_redirects:
                self._redirect(hop, response)
                params = None  # the Location carries its own query
                continue
            if response.status_code == 401 and token is not None and not refreshed_token:
                # The token may have been revoked or expired early: fetch a fresh one once.
                response.close()
                self.tokens.invalidate(token)
                refreshed_token = True
                continue
            if self.retry.retryable_status(hop.method, response.status_code, idempotent) and self._wait_to_retry(
                hop, response, budget
            ):
                continue
            if raise_for_status and response.status_code >= 400:
                error = graph_error(
                    response, method=hop.method, client_request_id=client_request_id, roles=_roles(token)
                )
                error.attempts = budget.attempts
                response.close()
                raise error
            return response

    def _send(
        self,
        hop: _Hop,
        token: AccessToken | None,
        budget: RetryBudget,
        client_request_id: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        stream: bool,
        idempotent: bool | None,
    ) -> requests.Response | None:
        """One attempt; None when it failed in transport and was waited for, ready to repeat."""
        request_headers = {"client-request-id": client_request_id, **(headers or {})}
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token.token}"
        if budget.attempts > 1:
            request_headers["retry-attempt"] = str(budget.attempts - 1)
        verify, proxies = self.environment.for_url(hop.url)
        try:
            if not hop.send_token and not proxies and params is None and hop.json is None:
                # A pre-authenticated URL: nothing of the session's is needed (graph/direct_transport.py).
                return self.direct.send(
                    hop.method,
                    hop.url,
                    headers=request_headers,
                    body=hop.data,
                    stream=stream,
                    verify=verify,
                    timeout=self.timeout,
                )
            return self.session.request(
                hop.method,
                hop.url,
                params=params,
                json=hop.json,
                data=hop.data,  # type: ignore[arg-type]  # any buffer or blocks of them: see RequestBody
                headers=request_headers,
                stream=stream,
                allow_redirects=False,
                verify=verify,
                proxies=proxies,
                timeout=self.timeout,
            )
        except requests.exceptions.SSLError as exc:
            # Not transient: repeating it only delays the same answer.
            raise GraphTransportError(
                f"TLS verification of {urlsplit(hop.url).netloc} failed ({type(exc).__name__}) on "
                f"{hop.method} {display_url(hop.url)}. If a proxy or a private authority is in the way, set "
                "the connection's ca_bundle to its CA certificate file."
            ) from None
        except _TRANSPORT_ERRORS as exc:
            assert self.retry is not None
            retryable = self.retry.retryable_transport_error(hop.method, idempotent)
            delay = budget.next_delay(None) if retryable else None
            if delay is None:
                raise GraphTransportError(
                    f"Graph {hop.method} {display_url(hop.url)} failed: {type(exc).__name__} after "
                    f"{budget.attempts} attempt(s) [client-request-id={client_request_id}]."
                ) from None
            log.warning(
                "Graph %s %s: %s; retrying in %.1f s.", hop.method, display_url(hop.url), type(exc).__name__, delay
            )
            budget.spend(delay)
            self.sleep(delay)
            return None
        except requests.exceptions.RequestException as exc:
            # Not OSErrors to callers: a bad URL or header from the service is not a local disk fault.
            raise GraphTransportError(
                f"Graph {hop.method} {display_url(hop.url)} could not be sent: {type(exc).__name__} "
                f"[client-request-id={client_request_id}]."
            ) from None

    def _redirect(self, hop: _Hop, response: requests.Response) -> None:
        """Move ``hop`` to the redirect's target, or refuse: a loop, or the token or a body to another host."""
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise GraphRedirectError(
                f"Graph answered {hop.method} {display_url(hop.url)} with HTTP {response.status_code} but no Location."
            )
        hop.redirects += 1
        if hop.redirects > MAX_REDIRECTS:
            raise GraphRedirectError(
                f"Graph redirected {hop.method} {display_url(hop.url)} more than {MAX_REDIRECTS} times (a redirect "
                "loop); stopping. This is a fault of the service or of a proxy between this worker and Graph."
            )
        target = urljoin(hop.url, location)
        if response.status_code == 303 or (response.status_code in (301, 302) and hop.method == "POST"):
            hop.method, hop.json, hop.data = "GET", None, None  # as browsers and requests do
        if url_origin(target) == self._origin:
            hop.url = target
            return
        if hop.method not in ("GET", "HEAD"):
            raise GraphRedirectError(
                f"Graph redirected {hop.method} {display_url(hop.url)} to another host ({url_origin(target)}); a "
                "request with a body is not re-sent there. Check graph_url and any proxy rewriting Graph's answers."
            )
        # A download redirect (/content -> pre-authenticated URL): followed without the token.
        hop.url = self.fetchable_url(target, "redirect target")
        hop.send_token = False

    def _wait_to_retry(self, hop: _Hop, response: requests.Response, budget: RetryBudget) -> bool:
        """Wait before repeating a throttled or failed request; False when the budget says stop."""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        delay = budget.next_delay(retry_after)
        if delay is None:
            return False
        request_id = response.headers.get("request-id")
        log.warning(
            "Graph %s %s answered %d (request-id %s); retrying in %.1f s.",
            hop.method,
            display_url(hop.url),
            response.status_code,
            request_id or "-",
            delay,
        )
        response.close()
        budget.spend(delay)
        if retry_after is not None and response.status_code in JOB_THROTTLE_STATUSES:
            cause = ThrottleCause(response.status_code, hop.method, urlsplit(hop.url).path, request_id)
            self.throttle.pause(delay, cause)  # every worker waits; the loop's throttle.wait() sleeps
        else:
            self.sleep(delay)
        return True

    def get_json(self, path_or_url: str, **kwargs: Any) -> Any:
        response = self.request("GET", path_or_url, **kwargs)
        return json_body(response)

    def send_json(self, method: str, path_or_url: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request(method, path_or_url, json=body, **kwargs)
        return json_body(response) if response.content else None

    # -- paging ---------------------------------------------------------------------------------

    def pages(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield each page of a collection, following @odata.nextLink verbatim (docs/microsoft-rules.md §B3).

        Custom headers (e.g. ConsistencyLevel) are sent on every page because Graph does not carry
        them over. A link back to a page already read, or no end of new links, raises
        GraphPagingError (:class:`NextLinkGuard`). When a page's link stands at the top of its body,
        as Graph writes it for directory collections, the next page is requested while this one is
        parsed (:class:`_NextPageAhead`); it is used only if the parsed page names the same link.
        """
        url: str | None = path_or_url
        query = params
        first_url = self.url(path_or_url)
        guard = NextLinkGuard(display_url(first_url))
        guard.start(requests.Request("GET", first_url, params=params).prepare().url or first_url)
        ahead = _NextPageAhead(self, headers)
        try:
            while url:
                response = ahead.take(url) if query is None else None
                if response is None:
                    response = self.request("GET", url, params=query, headers=headers)
                ahead.start(self._leading_next_link(response.content))
                page = json_body(response)
                if not isinstance(page, dict):
                    raise GraphCertError(f"Graph returned a page that is not a JSON object from {display_url(url)}.")
                yield page
                next_link = page.get("@odata.nextLink")
                if next_link is None:
                    return
                if not isinstance(next_link, str) or not next_link:
                    # Ending here would silently drop the rest of the collection.
                    raise GraphPagingError(
                        f"Graph returned an @odata.nextLink that is not a URL ({str(next_link)[:40]!r}) for "
                        f"{display_url(first_url)}; the listing cannot go on and is not taken as complete."
                    )
                items = page.get("value")
                guard.follow(next_link, items_on_page=len(items) if isinstance(items, list) else 0)
                url = self.url(next_link)
                query = None  # the next link already carries every query option
        finally:
            ahead.close()

    def _leading_next_link(self, body: bytes) -> str | None:
        """The next link when it stands among the first members of ``body``, or None (then no request ahead)."""
        found = _LEADING_NEXT_LINK.match(body[:_LEADING_BYTES])
        if found is None:
            return None
        try:
            link = json.loads(b'"' + found.group(1) + b'"')
            return self.url(link) if isinstance(link, str) and link else None
        except (ValueError, GraphCertError):
            return None  # the parsed page decides; nothing is asked ahead for it

    def iter_items(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, lazily across pages; a page of anything but objects is an error.

        The next pages are fetched while the caller works through this one (graph/read_ahead.py).
        """
        pages = self.pages(path_or_url, params=params, headers=headers)
        for page in read_ahead(pages, name="items"):
            items = page.get("value") or []
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise GraphCertError(
                    f"Graph returned a malformed page for {display_url(self.url(path_or_url))}: 'value' is not a "
                    "list of objects."
                )
            yield from items

    def close(self) -> None:
        self.session.close()
        self.direct.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The first members of a page: a few annotations ("@odata.context", "@odata.count" ...) and then
# "@odata.nextLink". Only the top of the body is looked at, so a link inside an item never matches.
_LEADING_BYTES = 8192
_LEADING_NEXT_LINK = re.compile(
    rb'\s*\{\s*(?:"@odata\.(?!nextLink")[A-Za-z]+"\s*:\s*(?:"(?:[^"\\]|\\.)*"|-?\d+)\s*,\s*){0,4}'
    rb'"@odata\.nextLink"\s*:\s*"((?:[^"\\]|\\.)*)"'
)


class _NextPageAhead:
    """At most one page requested ahead, in a helper thread, while the current one is parsed.

    The next link has to come out of a page before the next request can go: with the request
    sent as soon as the link is seen at the top of the body, the service builds the next page
    while this one is parsed and handed on (docs/benchmarks.md: 100,000-user export). An answer
    whose link the parsed page does not confirm is closed unused, whatever it was.
    """

    def __init__(self, client: GraphClient, headers: Mapping[str, str] | None) -> None:
        self.client = client
        self.headers = headers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[str, Future[requests.Response]] | None = None

    def start(self, url: str | None) -> None:
        if url is None:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="graphcert-page-ahead")
        self._pending = (url, self._pool.submit(self.client.request, "GET", url, headers=self.headers))

    def take(self, url: str) -> requests.Response | None:
        """The answer for ``url`` if it was asked ahead (raising what that request raised), else None."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        asked, future = pending
        if asked == url:
            return future.result()
        _discard(future)
        return None

    def close(self) -> None:
        if self._pending is not None:
            _discard(self._pending[1])
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _discard(future: Future[requests.Response]) -> None:
    """Close an answer asked ahead and not used, once it arrives; its failure, if any, is nobody's."""

    def close(done: Future[requests.Response]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    future.add_done_callback(close)


def _roles(token: AccessToken | None) -> list[str] | None:
    return None if token is None else token_roles(token.token)
