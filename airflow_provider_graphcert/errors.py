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
