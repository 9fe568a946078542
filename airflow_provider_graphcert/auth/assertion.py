"""Mint and inspect RFC 7523 client assertions the way Entra ID expects them (docs/microsoft-rules.md §A3, §A4)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt

from airflow_provider_graphcert.auth.certificates import ClientCertificate

SigningAlgorithm = Literal["PS256", "RS256"]
SIGNING_ALGORITHMS: tuple[SigningAlgorithm, ...] = ("PS256", "RS256")

# The identity-platform docs ask for an assertion lifetime of 5-10 minutes (docs/microsoft-rules.md §A4).
DEFAULT_ASSERTION_LIFETIME_SECONDS = 300


def mint_assertion(
    certificate: ClientCertificate,
    *,
    client_id: str,
    audience: str,
    algorithm: SigningAlgorithm = "PS256",
    include_chain: bool = False,
    lifetime: int = DEFAULT_ASSERTION_LIFETIME_SECONDS,
    now: float | None = None,
) -> str:
    """Sign a fresh client assertion for one token request.

    PS256 pairs with the SHA-256 thumbprint header (current docs); RS256 with the SHA-1 one (older
    docs, still accepted). ``include_chain`` adds ``x5c`` for subject-name + issuer authentication.
    """
    issued = int(now if now is not None else time.time())
    header: dict[str, Any] = {"typ": "JWT"}
    if algorithm == "PS256":
        header["x5t#S256"] = certificate.x5t_s256
    else:
        header["x5t"] = certificate.x5t
    if include_chain:
        header["x5c"] = certificate.x5c
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": issued,
        "iat": issued,
        "exp": issued + lifetime,
    }
    return jwt.encode(claims, certificate.private_key, algorithm=algorithm, headers=header)


@dataclass(frozen=True)
class AssertionInfo:
    """What can be read from an assertion without verifying it (enough to fail early)."""

    issuer: str | None
    audience: str | list[str] | None
    expires_at: datetime | None
    not_before: datetime | None

    def seconds_left(self, now: float | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return self.expires_at.timestamp() - (now if now is not None else time.time())


def inspect_assertion(assertion: str) -> AssertionInfo:
    """Decode claims without verifying the signature; raises ``jwt.DecodeError`` if malformed."""
    claims = jwt.decode(assertion, options={"verify_signature": False, "verify_exp": False})
    return AssertionInfo(
        issuer=claims.get("iss"),
        audience=claims.get("aud"),
        expires_at=_numeric_date(claims.get("exp")),
        not_before=_numeric_date(claims.get("nbf")),
    )


def _numeric_date(value: object) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    return None
