"""Ask an Entra ID v2.0 token endpoint for an app-only token with a client assertion (docs/microsoft-rules.md §A2)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from airflow_provider_graphcert.auth.credentials import AssertionCredential
from airflow_provider_graphcert.auth.entra_errors import RequestContext, token_error
from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE, AccessToken, TokenCache
from airflow_provider_graphcert.errors import TokenRequestError

log = logging.getLogger(__name__)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_TYPE = "client_credentials"

# Entra ID answers bursts with 429 and outages with 5xx; the request is safe to repeat because
# every attempt carries the same (still valid) assertion and yields an equivalent token.
TOKEN_RETRY_STATUSES = (429, 500, 502, 503, 504)
TOKEN_RETRY_ATTEMPTS = 3
# A token request should not wait minutes on one Retry-After; the task's own retries take over.
TOKEN_RETRY_AFTER_MAX_SECONDS = 30
# Answers that would make requests re-send the form (with the signed assertion) somewhere else.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Entra ID always sends expires_in; a response without it is taken to live 10 minutes, not forever.
DEFAULT_EXPIRES_IN = 600.0

SecretSink = Callable[[str], None]


class _CappedRetry(Retry):
    """urllib3's Retry with a ceiling on Retry-After (not every urllib3 2.x has ``retry_after_max``).

    A Retry-After that is neither seconds nor an HTTP date (``-1``, ``soon``) means "back off as
    usual": urllib3 would raise InvalidHeader and end the retries after one throttled answer.
    """

    def parse_retry_after(self, retry_after: str) -> float:
        return min(float(super().parse_retry_after(retry_after)), TOKEN_RETRY_AFTER_MAX_SECONDS)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None


def token_session(pool_size: int = 10) -> requests.Session:
    """A session whose adapter retries transient token-endpoint failures (urllib3 Retry)."""
    retry = _CappedRetry(
        total=TOKEN_RETRY_ATTEMPTS,
        connect=TOKEN_RETRY_ATTEMPTS,
        read=TOKEN_RETRY_ATTEMPTS,
        status=TOKEN_RETRY_ATTEMPTS,
        status_forcelist=TOKEN_RETRY_STATUSES,
        allowed_methods=None,
        backoff_factor=0.5,
        backoff_jitter=0.25,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass
class TokenProvider:
    """Gets app-only access tokens for one app, tenant and scope, from the cache when it can.

    ``verify`` and ``proxies`` go on every request, not on the session, because requests lets
    REQUESTS_CA_BUNDLE override a session's verify (docs/microsoft-rules.md §E). ``secret_sink`` is told every
    assertion and token so a host (Airflow) can mask them in logs.
    """

    tenant_id: str
    client_id: str
    credential: AssertionCredential
    authority_host: str
    scope: str
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    timeout: float = 30.0
    session: requests.Session = field(default_factory=token_session, repr=False)
    cache: TokenCache = field(default=DEFAULT_TOKEN_CACHE, repr=False)
    secret_sink: SecretSink | None = field(default=None, repr=False)
    requests_made: int = 0

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def cache_key(self) -> tuple[str, ...]:
        return (self.authority_host, self.tenant_id, self.client_id, self.scope, self.credential.cache_key)

    def get_token(self) -> AccessToken:
        return self.cache.get(self.cache_key, self.request_token)

    def invalidate(self, stale: AccessToken | None = None) -> None:
        self.cache.invalidate(self.cache_key, stale)

    def new_assertion(self) -> str:
        assertion = self.credential.client_assertion(client_id=self.client_id, audience=self.token_endpoint)
        if self.secret_sink is not None:
            self.secret_sink(assertion)
        return assertion

    def request_token(self) -> AccessToken:
        """One round trip to the token endpoint, bypassing the cache."""
        form = {
            "client_id": self.client_id,
            "scope": self.scope,
            "grant_type": GRANT_TYPE,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.new_assertion(),
        }
        started = time.time()
        self.requests_made += 1
        try:
            response = self.session.post(
                self.token_endpoint,
                data=form,
                headers={"Accept": "application/json"},
                verify=self.verify,
                proxies=dict(self.proxies) if self.proxies else None,
                timeout=self.timeout,
                # The form carries the signed assertion, a credential Entra ID accepts from anyone
                # for its lifetime: it goes to the authority and nowhere else.
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise TokenRequestError(
                f"TLS verification of {self.authority_host} failed ({_reason(exc)}). If a proxy or a "
                "private authority is in the way, set ca_bundle to its CA certificate file."
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TokenRequestError(
                f"Could not reach the token endpoint {self.token_endpoint} ({_reason(exc)}). Check "
                "authority_host/cloud, proxies and the network from this worker."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise TokenRequestError(
                f"The token request to {self.token_endpoint} failed ({_reason(exc)}). Check "
                "authority_host/cloud and any proxy between this worker and Entra ID."
            ) from None
        if response.status_code in REDIRECT_STATUSES:
            response.close()
            raise self._redirect_error(response)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise token_error(response.status_code, body, self._context())
        token = AccessToken.from_lifetime(
            self._checked_token(body.get("access_token")),
            expires_in=self._lifetime(body.get("expires_in", DEFAULT_EXPIRES_IN), "expires_in") or DEFAULT_EXPIRES_IN,
            refresh_in=self._lifetime(body.get("refresh_in"), "refresh_in"),
            now=started,
            scope=self.scope,
        )
        if self.secret_sink is not None:
            self.secret_sink(token.token)
        log.info(
            "Got an access token for app %s in tenant %s (valid %d s, request-id %s).",
            self.client_id,
            self.tenant_id,
            int(token.expires_at - started),
            response.headers.get("x-ms-request-id", "-"),
        )
        return token

    def _checked_token(self, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise TokenRequestError(
                f"The token endpoint {self.token_endpoint} answered 200 without a usable access_token. Check "
                "authority_host/cloud and any proxy between this worker and Entra ID."
            )
        return value

    def _lifetime(self, value: object, name: str) -> float | None:
        """Seconds from the token response (Entra sends numbers, some proxies strings); None when absent."""
        if value is None:
            return None
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            seconds = math.nan
        if not (0 < seconds < math.inf):
            raise TokenRequestError(
                f"The token endpoint {self.token_endpoint} answered {name}={str(value)[:40]!r}, not a positive "
                "number of seconds. Check authority_host/cloud and any proxy between this worker and Entra ID."
            )
        return seconds

    def _redirect_error(self, response: requests.Response) -> TokenRequestError:
        authority = urlsplit(self.authority_host).netloc or self.authority_host
        target = urlsplit(response.headers.get("Location", ""))
        where = f" to {target.scheme}://{target.netloc}" if target.netloc else ""
        return TokenRequestError(
            f"The token endpoint at {authority} answered HTTP {response.status_code}, redirecting{where}; "
            "a token request (it carries the signed client assertion) is never sent anywhere but the "
            f"authority. Check authority_host/cloud (it should be the authority itself, such as "
            f"https://login.microsoftonline.com) and any proxy that rewrites requests to {authority}.",
            status=response.status_code,
        )

    def _context(self) -> RequestContext:
        try:
            described = self.credential.describe()
        except Exception:  # describing must never hide the real error
            described = "the configured credential"
        return RequestContext(
            client_id=self.client_id,
            tenant_id=self.tenant_id,
            token_endpoint=self.token_endpoint,
            credential=described,
        )


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    """The innermost cause, without URLs' query strings or bodies (which never hold secrets here)."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    return f"{type(inner).__name__}: {inner}"[:300]
