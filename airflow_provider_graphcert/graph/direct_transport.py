"""Pre-authenticated URLs sent straight through urllib3, without requests' session machinery.

Download and upload URLs that Graph hands out carry their own credential (docs/microsoft-rules.md
§B7, §B9): no token, no cookies, no redirects to follow and no query to encode. Through a
``requests.Session`` each such request still pays for merging settings, preparing, hooks and
cookie extraction: 1.15 ms of CPU per 16 KiB file against 0.45 ms through urllib3 here
(docs/benchmarks.md, bulk small files), which in a folder of small files is most of the client's
CPU. Answers come back as ``requests.Response`` objects and failures as requests' exceptions, so
callers and the retry loop in ``GraphClient`` see exactly what they saw before.

Requests through a proxy keep the session path: requests' proxy handling (auth, tunnels,
``NO_PROXY``) is not repeated here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    HTTPError,
    InvalidHeader,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from airflow_provider_graphcert.graph.redaction import display_url

# What a request may carry: bytes, any buffer, or blocks produced as they are sent (with a
# Content-Length header given by the caller), as urllib3 and requests both accept.
RequestBody: TypeAlias = bytes | memoryview | Iterable[bytes | bytearray | memoryview]

# Connection pools kept per TLS setting (one per download/upload host is the usual case).
_POOLS_PER_MANAGER = 10
# The bytes on the wire are the file's bytes: hash, size and Range all apply to them as sent.
_DEFAULT_HEADERS = {"Accept-Encoding": "identity", "Accept": "*/*"}


class DirectTransport:
    """Sends requests to pre-authenticated URLs; thread-safe, one per ``GraphClient``."""

    def __init__(self, pool_size: int, user_agent: str) -> None:
        self.pool_size = pool_size
        self.headers = {**_DEFAULT_HEADERS, "User-Agent": user_agent}
        self._managers: dict[bool | str, urllib3.PoolManager] = {}
        self._pools: dict[tuple[str, str, bool | str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: RequestBody | None,
        stream: bool,
        verify: bool | str,
        timeout: float,
    ) -> requests.Response:
        """One attempt, no retries and no redirects: those are the caller's (``GraphClient.request``)."""
        try:
            pool, target = self._pool(url, verify)
            raw = pool.urlopen(
                method,
                target,
                body=body,  # type: ignore[arg-type]  # urllib3 sends any buffer (body_to_chunks); its hint omits memoryview
                headers={**self.headers, **headers},
                redirect=False,
                assert_same_host=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
            response = _as_requests_response(raw, url)
            if not stream:
                response.content  # noqa: B018 - read the body now, as requests does without stream=True
            return response
        except requests.exceptions.RequestException:
            raise
        except (ClosedPoolError, ProtocolError, NewConnectionError, OSError) as exc:
            raise requests.exceptions.ConnectionError(_reason(exc, url)) from None
        except ConnectTimeoutError as exc:
            raise requests.exceptions.ConnectTimeout(_reason(exc, url)) from None
        except ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(_reason(exc, url)) from None
        except Urllib3SSLError as exc:
            raise requests.exceptions.SSLError(_reason(exc, url)) from None
        except ProxyError as exc:
            raise requests.exceptions.ProxyError(_reason(exc, url)) from None
        except InvalidHeader as exc:
            raise requests.exceptions.InvalidHeader(_reason(exc, url)) from None
        except (HTTPError, ValueError) as exc:
            raise requests.exceptions.RequestException(_reason(exc, url)) from None

    def _pool(self, url: str, verify: bool | str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The connection pool for ``url``'s origin, and the target to request from it (path and query).

        Looked up by our own split of the URL: urllib3's ``PoolManager.urlopen`` parses every URL
        again and builds a pool key of some thirty fields per request.
        """
        parts = urlsplit(url)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        key = (parts.scheme, parts.netloc, verify)
        pool = self._pools.get(key)
        if pool is not None:
            return pool, target
        with self._lock:
            pool = self._pools.get(key)  # another worker may have made it meanwhile
            if pool is None:
                manager = self._managers.get(verify)
                if manager is None:
                    manager = urllib3.PoolManager(
                        num_pools=_POOLS_PER_MANAGER, maxsize=self.pool_size, **_tls_settings(verify)
                    )
                    self._managers[verify] = manager
                pool = manager.connection_from_url(url)
                self._pools[key] = pool
        return pool, target

    def close(self) -> None:
        with self._lock:
            managers, self._managers, self._pools = list(self._managers.values()), {}, {}
        for manager in managers:
            manager.clear()


def _tls_settings(verify: bool | str) -> dict[str, Any]:
    """urllib3's TLS settings for requests' ``verify`` value, as ``HTTPAdapter.cert_verify`` sets them."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    location = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if not location or not os.path.exists(location):
        raise requests.exceptions.SSLError(
            f"Could not find a suitable TLS CA certificate bundle, invalid path: {location}"
        )
    if os.path.isdir(location):
        return {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": location}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": location}


def _as_requests_response(raw: urllib3.BaseHTTPResponse, url: str) -> requests.Response:
    """What ``HTTPAdapter.build_response`` makes of an answer, less the cookie jar (no cookies here)."""
    response = requests.Response()
    response.status_code = raw.status
    response.headers = CaseInsensitiveDict(raw.headers)
    response.encoding = get_encoding_from_headers(response.headers)
    response.raw = raw
    response.reason = raw.reason or ""
    response.url = url
    return response


def _reason(exc: BaseException, url: str) -> str:
    # The URL's query is a credential: name the request without it.
    return f"{type(exc).__name__} on {display_url(url)}"
