"""Where client assertions come from: a certificate we sign with, a pasted JWT, or a token file.

Each source answers ``client_assertion(client_id=..., audience=...)`` for one token request and
exposes a ``cache_key`` that identifies it in the token cache without containing any secret.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import jwt

from airflow_provider_graphcert.auth.assertion import (
    DEFAULT_ASSERTION_LIFETIME_SECONDS,
    AssertionInfo,
    SigningAlgorithm,
    inspect_assertion,
    mint_assertion,
)
from airflow_provider_graphcert.auth.certificates import (
    DEFAULT_EXPIRY_WARNING_DAYS,
    ClientCertificate,
    check_validity,
    load_client_certificate,
)
from airflow_provider_graphcert.errors import CertificateError, ClientAssertionError

# A pasted assertion this close to expiry would die in flight; refuse it with the same advice.
ASSERTION_EXPIRY_MARGIN_SECONDS = 30

SWITCH_TO_CERTIFICATE = (
    "Pasted assertions expire (usually after minutes). Instead set certificate_path or "
    "certificate_data on the connection: the provider then signs a fresh assertion for every "
    "token request and nothing expires until the certificate does."
)


class AssertionCredential(Protocol):
    """Anything that can hand out a client assertion for a token request."""

    @property
    def cache_key(self) -> str: ...

    def client_assertion(self, *, client_id: str, audience: str) -> str: ...

    def describe(self) -> str: ...


def _fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class CertificateMaterial:
    """Where the certificate and key are: read anew on every use so a rotated file is picked up."""

    path: Path | None = None
    key_path: Path | None = None
    inline: bytes | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        if self.path is not None:
            return f"certificate_path '{self.path}'"
        return "certificate_data"

    @property
    def cache_key(self) -> str:
        if self.path is not None:
            return f"cert-file:{self.path}:{self.key_path or ''}"
        return f"cert-data:{_fingerprint(self.inline or b'')}"

    def load(self) -> ClientCertificate:
        data = self.inline if self.inline is not None else _read(self.path, "certificate_path")
        key_data = _read(self.key_path, "key_path") if self.key_path is not None else None
        return load_client_certificate(data, key_data=key_data, password=self.password, source=self.source)


def _read(path: Path | None, field_name: str) -> bytes:
    if path is None:
        raise CertificateError(f"{field_name} is not set.", field=field_name)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(
            f"{field_name} '{path}' does not exist on this machine. Every worker needs the file at "
            "this path, or put the material in certificate_data (for example from a secrets backend).",
            field=field_name,
        ) from None
    except IsADirectoryError:
        raise CertificateError(
            f"{field_name} '{path}' is a directory; point it at the .pem or .pfx file.", field=field_name
        ) from None
    except PermissionError:
        raise CertificateError(
            f"{field_name} '{path}' is not readable by this process (permission denied). Make it "
            "readable by the user Airflow workers run as.",
            field=field_name,
        ) from None


@dataclass(frozen=True)
class CertificateCredential:
    """Signs a fresh assertion with the app's certificate for every token request."""

    material: CertificateMaterial
    algorithm: SigningAlgorithm = "PS256"
    include_chain: bool = False
    lifetime: int = DEFAULT_ASSERTION_LIFETIME_SECONDS
    expiry_warning_days: int = DEFAULT_EXPIRY_WARNING_DAYS

    @property
    def cache_key(self) -> str:
        return self.material.cache_key

    def certificate(self) -> ClientCertificate:
        cert = self.material.load()
        check_validity(cert, warning_days=self.expiry_warning_days, source=self.material.source)
        return cert

    def client_assertion(self, *, client_id: str, audience: str) -> str:
        return mint_assertion(
            self.certificate(),
            client_id=client_id,
            audience=audience,
            algorithm=self.algorithm,
            include_chain=self.include_chain,
            lifetime=self.lifetime,
        )

    def describe(self) -> str:
        return self.certificate().describe()


def _checked(assertion: str, *, origin: str, field_name: str, clock: Callable[[], float]) -> str:
    assertion = assertion.strip()
    try:
        info = inspect_assertion(assertion)
    except jwt.DecodeError:
        raise ClientAssertionError(
            f"{origin} is not a JWT (expected three base64url parts separated by dots).", field=field_name
        ) from None
    left = info.seconds_left(clock())
    if left is not None and left < ASSERTION_EXPIRY_MARGIN_SECONDS:
        raise ClientAssertionError(_expired_message(info, origin, clock()), field=field_name)
    return assertion


def _expired_message(info: AssertionInfo, origin: str, now: float) -> str:
    assert info.expires_at is not None
    ago = now - info.expires_at.timestamp()
    when = f"{info.expires_at:%Y-%m-%d %H:%M:%S}Z"
    if ago > 0:
        age = f"expired at {when}, {_duration(ago)} ago"
    else:
        age = f"expires at {when}, in {_duration(-ago)}: too soon to use"
    return f"{origin} {age}. {SWITCH_TO_CERTIFICATE}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


@dataclass(frozen=True)
class StaticAssertionCredential:
    """A pre-signed assertion pasted into the connection (the old way); checked before use."""

    assertion: str = field(repr=False)
    clock: Callable[[], float] = time.time

    @property
    def cache_key(self) -> str:
        return f"assertion:{_fingerprint(self.assertion.encode())}"

    def client_assertion(self, *, client_id: str, audience: str) -> str:
        return _checked(
            self.assertion,
            origin="The pre-signed client_assertion",
            field_name="client_assertion",
            clock=self.clock,
        )

    def describe(self) -> str:
        try:
            info = inspect_assertion(self.assertion)
        except jwt.DecodeError:
            return "a pre-signed client assertion (malformed)"
        expiry = f"{info.expires_at:%Y-%m-%d %H:%M}Z" if info.expires_at else "no expiry claim"
        return f"a pre-signed client assertion (expires {expiry})"


@dataclass(frozen=True)
class AssertionFileCredential:
    """A federated token file (e.g. Kubernetes workload identity), re-read on every token request."""

    path: Path
    clock: Callable[[], float] = time.time

    @property
    def cache_key(self) -> str:
        return f"assertion-file:{self.path}"

    def client_assertion(self, *, client_id: str, audience: str) -> str:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ClientAssertionError(
                f"client_assertion_file '{self.path}' does not exist. On Kubernetes, check that the "
                "service account token volume is mounted at this path in the worker pod.",
                field="client_assertion_file",
            ) from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
            raise ClientAssertionError(
                f"client_assertion_file '{self.path}' cannot be read ({type(exc).__name__}).",
                field="client_assertion_file",
            ) from None
        if not text.strip():
            raise ClientAssertionError(f"client_assertion_file '{self.path}' is empty.", field="client_assertion_file")
        return _checked(
            text,
            origin=f"The assertion in client_assertion_file '{self.path}'",
            field_name="client_assertion_file",
            clock=self.clock,
        )

    def describe(self) -> str:
        return f"the federated assertion file {self.path}"
