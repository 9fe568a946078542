"""One error hierarchy for the whole provider.

Every message is written for the person who owns the Airflow connection: what failed, which
connection field is involved, and what to do. Microsoft's correlation identifiers are kept so a
support ticket can be opened. Secrets (keys, passwords, assertions, tokens) never enter a message.
"""

from __future__ import annotations


class GraphCertError(Exception):
    """Base class of every error this provider raises on purpose."""


class ConfigurationError(GraphCertError, ValueError):
    """A connection field (or argument) is missing or invalid.

    ``field`` names the connection field so a UI or CLI can point at it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CertificateError(ConfigurationError):
    """The certificate or private key cannot be used to authenticate."""


class ClientAssertionError(ConfigurationError):
    """A pre-signed or federated client assertion cannot be used (expired, unreadable, malformed)."""


class TokenRequestError(GraphCertError):
    """Entra ID refused (or could not answer) a token request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        aadsts: int | None = None,
        trace_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.trace_id = trace_id
        self.correlation_id = correlation_id


class GraphRequestError(GraphCertError):
    """Microsoft Graph answered with an error (after retries, where retrying made sense)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        inner_code: str | None = None,
        graph_message: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        date: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.inner_code = inner_code
        self.graph_message = graph_message
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.date = date
        self.method = method
        self.url = url
        # How many times the request was sent: a 409 on a repeat may be our own first attempt.
        self.attempts = 1


class GraphThrottledError(GraphRequestError):
    """Graph kept throttling (429/503/504) beyond the configured retry budget."""


class GraphNotFoundError(GraphRequestError):
    """404 itemNotFound: the site, drive, item or path does not exist (or is not visible to the app)."""


class GraphAccessDeniedError(GraphRequestError):
    """403: the app lacks an application permission (or a Sites.Selected grant)."""


class GraphConflictError(GraphRequestError):
    """409: nameAlreadyExists and friends."""


class GraphTransportError(GraphCertError):
    """The connection to Graph failed (DNS, TLS, reset, timeout) and retries did not help."""


class GraphRedirectError(GraphCertError):
    """Graph redirected a request where it may not follow: in a loop, or with the token or a body to another host."""


class GraphUrlError(GraphCertError):
    """A URL from Graph (a download or upload URL, a link) that is not an absolute https:// URL we may fetch."""


class GraphPagingError(GraphCertError):
    """Paging did not end: a next link pointing back to a page already read, or no end in sight."""
