"""The emulated directory as plain Python objects: tenants, apps, certificates and issued tokens.

Nothing here knows about HTTP (the moto split): the routes in ``routes.py`` parse and
render, the rules in ``assertions.py`` decide, and this module only keeps state, thread-safely,
because tests mutate it while the server thread reads it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from airflow_provider_graphcert.testing.emulator.entra.signing import SigningKey, b64url, process_signing_key

# docs/microsoft-rules.md §A5: app-only tokens come back with about 3599 s whatever the assertion says.
DEFAULT_TOKEN_LIFETIME_SECONDS = 3599
# docs/microsoft-rules.md §A4: Entra's real skew tolerance is UNCONFIRMED; 5 minutes is the common JWT default.
DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS = 300
# Real Entra access tokens carry iat/nbf about 5 minutes before issue so that resource servers
# with slow clocks accept them. Seen in decoded tokens; not in the reference (UNCONFIRMED).
ACCESS_TOKEN_BACKDATE_SECONDS = 300
# docs/microsoft-rules.md §A5: msal reads an optional refresh_in. Entra sends it only for long-lived tokens;
# the threshold used here (2 h, refresh at half-life) is UNCONFIRMED.
REFRESH_IN_MIN_LIFETIME_SECONDS = 7200
PUBLIC_GRAPH_RESOURCE = "https://graph.microsoft.com"
ACCESS_TOKEN_ALGORITHM = "RS256"
# v1.0 access tokens (the kind Graph receives) name the STS with this issuer.
ACCESS_TOKEN_ISSUER = "https://sts.windows.net/{tenant_id}/"
# appidacr: how the client authenticated; "2" means a certificate (Entra access-token claims).
APP_AUTH_CERTIFICATE = "2"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

CertificateInput = x509.Certificate | bytes | str
CertificatesInput = CertificateInput | Sequence[CertificateInput]


def new_guid() -> str:
    return str(uuid.uuid4())


def _require_guid(value: str, what: str) -> str:
    lowered = value.strip().lower()
    if not _GUID.match(lowered):
        raise ValueError(f"{what} must be a GUID like 00000000-0000-0000-0000-000000000000, not {value!r}")
    return lowered


def load_certificates(value: CertificatesInput) -> list[x509.Certificate]:
    """Accept a certificate object, PEM/DER bytes, PEM text, or a list of any of these."""
    if isinstance(value, x509.Certificate | bytes | str):
        return _load_one(value)
    certificates: list[x509.Certificate] = []
    for item in value:
        certificates.extend(_load_one(item))
    return certificates


def _load_one(value: CertificateInput) -> list[x509.Certificate]:
    if isinstance(value, x509.Certificate):
        return [value]
    data = value.encode("ascii") if isinstance(value, str) else value
    if b"-----BEGIN" in data:
        return list(x509.load_pem_x509_certificates(data))
    return [x509.load_der_x509_certificate(data)]


@dataclass(frozen=True)
class RegisteredCertificate:
    """A certificate as Entra stores it on an app: the public part plus its digests."""

    certificate: x509.Certificate
    sha1: bytes
    sha256: bytes

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> RegisteredCertificate:
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(certificate, hashlib.sha1(der).digest(), hashlib.sha256(der).digest())  # noqa: S324

    @property
    def thumbprint(self) -> str:
        """Upper-case hex SHA-1, the form the Entra portal and AADSTS700027 show."""
        return self.sha1.hex().upper()

    @property
    def x5t(self) -> str:
        return b64url(self.sha1)

    @property
    def x5t_s256(self) -> str:
        return b64url(self.sha256)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.certificate.issuer.rfc4514_string()


class App:
    """An app registration (with its service principal) in one tenant.

    ``subject_name_issuer`` apps trust any certificate with a registered subject and issuer pair
    (SN+I, docs/microsoft-rules.md §A3) rather than specific thumbprints.
    """

    def __init__(
        self,
        *,
        client_id: str,
        tenant_id: str,
        display_name: str,
        roles: Sequence[str],
        subject_name_issuer: bool,
        lock: threading.RLock,
    ) -> None:
        self.client_id = client_id
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.subject_name_issuer = subject_name_issuer
        # The service principal's object id: the oid/sub of the tokens it gets.
        self.object_id = new_guid()
        self._roles = tuple(roles)
        self._certificates: list[RegisteredCertificate] = []
        self._lock = lock

    def __repr__(self) -> str:
        return f"App(client_id={self.client_id!r}, tenant_id={self.tenant_id!r})"

    @property
    def roles(self) -> tuple[str, ...]:
        with self._lock:
            return self._roles

    @roles.setter
    def roles(self, value: Sequence[str]) -> None:
        with self._lock:
            self._roles = tuple(value)

    @property
    def certificates(self) -> tuple[RegisteredCertificate, ...]:
        with self._lock:
            return tuple(self._certificates)

    def add_certificate(self, certificate: CertificatesInput) -> list[RegisteredCertificate]:
        added = [RegisteredCertificate.from_certificate(cert) for cert in load_certificates(certificate)]
        with self._lock:
            known = {registered.sha256 for registered in self._certificates}
            self._certificates.extend(item for item in added if item.sha256 not in known)
        return added

    def remove_certificate(self, certificate: CertificateInput) -> None:
        """Remove by certificate (object, PEM, DER) or by its hex SHA-1 thumbprint."""
        if isinstance(certificate, str) and re.fullmatch(r"[0-9A-Fa-f]{40}", certificate.strip()):
            digests = {bytes.fromhex(certificate.strip())}
        else:
            digests = {RegisteredCertificate.from_certificate(c).sha1 for c in load_certificates(certificate)}
        with self._lock:
            remaining = [item for item in self._certificates if item.sha1 not in digests]
            if len(remaining) == len(self._certificates):
                raise KeyError(f"certificate is not registered on app {self.client_id}")
            self._certificates = remaining

    def find_certificate(
        self, *, sha1: bytes | None = None, sha256: bytes | None = None
    ) -> RegisteredCertificate | None:
        with self._lock:
            for item in self._certificates:
                if (sha256 is not None and item.sha256 == sha256) or (sha1 is not None and item.sha1 == sha1):
                    return item
        return None

    def trusts_subject_and_issuer(self, certificate: x509.Certificate) -> bool:
        with self._lock:
            return any(
                item.certificate.subject == certificate.subject and item.certificate.issuer == certificate.issuer
                for item in self._certificates
            )


class Tenant:
    """A directory, addressable in URLs by its GUID or any of its domain names."""

    def __init__(self, *, tenant_id: str, domains: Sequence[str], display_name: str) -> None:
        self.tenant_id = tenant_id
        self.domains = tuple(domain.lower() for domain in domains)
        self.display_name = display_name
        self.apps: dict[str, App] = {}

    def __repr__(self) -> str:
        return f"Tenant(tenant_id={self.tenant_id!r}, domains={self.domains!r})"

    def matches(self, segment: str) -> bool:
        lowered = segment.lower()
        return lowered == self.tenant_id or lowered in self.domains


@dataclass(frozen=True)
class IssuedAccessToken:
    access_token: str
    expires_in: int
    ext_expires_in: int
    refresh_in: int | None
    claims: dict[str, Any]


@dataclass(frozen=True)
class TokenRequestRecord:
    """One POST to the token endpoint as the routes saw it (fault-injected requests never get here)."""

    timestamp: float
    tenant: str
    client_id: str | None
    status: int
    error: str | None
    aadsts: int | None
    request_id: str
    algorithm: str | None = None
    # What was exchanged, so tests can prove neither ever reaches a log (never shown in repr).
    client_assertion: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status == 200


class TokenRequestLog:
    """Thread-safe log of token requests, so tests can count what a client really sent."""

    def __init__(self) -> None:
        self._records: list[TokenRequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: TokenRequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def __iter__(self) -> Iterator[TokenRequestRecord]:
        with self._lock:
            return iter(list(self._records))

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def count(self, app: App | str | None = None, *, succeeded: bool | None = None) -> int:
        return len(self.records(app, succeeded=succeeded))

    def records(self, app: App | str | None = None, *, succeeded: bool | None = None) -> list[TokenRequestRecord]:
        client_id = app.client_id if isinstance(app, App) else app
        with self._lock:
            return [
                record
                for record in self._records
                if (client_id is None or (record.client_id or "").lower() == client_id.lower())
                and (succeeded is None or record.succeeded == succeeded)
            ]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class AccessTokenError(Exception):
    """An access token presented to the emulator is unusable; ``reason`` is for Graph's 401 text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessTokenMalformedError(AccessTokenError):
    pass


class AccessTokenSignatureError(AccessTokenError):
    pass


class AccessTokenExpiredError(AccessTokenError):
    pass


class AccessTokenRevokedError(AccessTokenError):
    pass


class AccessTokenAudienceError(AccessTokenError):
    pass


@dataclass
class _IssueRecord:
    client_id: str
    issued_at: float
    expires_at: float


@dataclass
class _Revocations:
    everything_before: float = float("-inf")
    by_client: dict[str, float] = field(default_factory=dict)

    def cutoff(self, client_id: str) -> float:
        return max(self.everything_before, self.by_client.get(client_id.lower(), float("-inf")))


class EmulatorState:
    """Tenants, apps and tokens of one emulator, plus the clock and token policy it applies.

    ``graph_resources`` lists the resource identifiers tokens may be issued for (the scope is
    ``{resource}/.default``); the first one is the emulator's own Graph origin.
    """

    def __init__(
        self,
        *,
        graph_resources: Sequence[str] = (PUBLIC_GRAPH_RESOURCE,),
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
        clock_skew_tolerance: float = DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS,
        clock_offset: float = 0.0,
        signing_key: SigningKey | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._graph_resources = tuple(resource.rstrip("/") for resource in graph_resources)
        self.token_lifetime = token_lifetime
        self.clock_skew_tolerance = clock_skew_tolerance
        self.clock_offset = clock_offset
        # Graph-side leeway when checking exp: 0 so tests with short lifetimes see expiry at once.
        self.access_token_leeway = 0.0
        self.signing_key = signing_key or process_signing_key()
        self.token_requests = TokenRequestLog()
        self._tenants: list[Tenant] = []
        self._issued: dict[str, _IssueRecord] = {}
        self._revocations = _Revocations()

    # -- clock -----------------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock: wall time plus ``clock_offset`` (to test client clock skew)."""
        return time.time() + self.clock_offset

    # -- directory -------------------------------------------------------------------------------

    @property
    def graph_resources(self) -> tuple[str, ...]:
        return self._graph_resources

    def add_tenant(
        self, tenant_id: str | None = None, domains: Sequence[str] | None = None, display_name: str | None = None
    ) -> Tenant:
        tenant_id = _require_guid(tenant_id, "tenant_id") if tenant_id else new_guid()
        tenant = Tenant(
            tenant_id=tenant_id,
            domains=domains or (),
            display_name=display_name or f"Emulated tenant {tenant_id[:8]}",
        )
        with self._lock:
            for name in (tenant.tenant_id, *tenant.domains):
                if self._find_tenant_locked(name) is not None:
                    raise ValueError(f"a tenant named {name!r} already exists")
            self._tenants.append(tenant)
        return tenant

    def find_tenant(self, segment: str) -> Tenant | None:
        with self._lock:
            return self._find_tenant_locked(segment)

    def _find_tenant_locked(self, segment: str) -> Tenant | None:
        return next((tenant for tenant in self._tenants if tenant.matches(segment)), None)

    def add_app(
        self,
        tenant: Tenant | str,
        certificate: CertificatesInput | None = None,
        *,
        roles: Sequence[str] = (),
        subject_name_issuer: bool = False,
        display_name: str | None = None,
        client_id: str | None = None,
    ) -> App:
        with self._lock:
            home = self._resolve_tenant(tenant)
            client_id = _require_guid(client_id, "client_id") if client_id else new_guid()
            if client_id in home.apps:
                raise ValueError(f"app {client_id} already exists in tenant {home.tenant_id}")
            app = App(
                client_id=client_id,
                tenant_id=home.tenant_id,
                display_name=display_name or f"graphcert emulator app {client_id[:8]}",
                roles=roles,
                subject_name_issuer=subject_name_issuer,
                lock=self._lock,
            )
            if certificate is not None:
                app.add_certificate(certificate)
            home.apps[client_id] = app
        return app

    def find_app(self, tenant: Tenant, client_id: str) -> App | None:
        with self._lock:
            return tenant.apps.get(client_id.strip().lower())

    def _resolve_tenant(self, tenant: Tenant | str) -> Tenant:
        if isinstance(tenant, Tenant):
            return tenant
        found = self._find_tenant_locked(tenant)
        if found is None:
            raise KeyError(f"no tenant {tenant!r}; create it with add_tenant() first")
        return found

    def reset(self) -> None:
        """Forget tenants, apps, tokens and the request log (for a shared session emulator)."""
        with self._lock:
            self._tenants.clear()
            self._issued.clear()
            self._revocations = _Revocations()
        self.token_requests.clear()

    # -- access tokens ---------------------------------------------------------------------------

    def issue_access_token(self, app: App, resource: str) -> IssuedAccessToken:
        now = self.now()
        lifetime = int(self.token_lifetime)
        claims = self._access_token_claims(app, resource, now, lifetime)
        token = jwt.encode(
            claims,
            self.signing_key.private_key,
            algorithm=ACCESS_TOKEN_ALGORITHM,
            headers={"kid": self.signing_key.kid, "x5t": self.signing_key.kid, "typ": "JWT"},
        )
        with self._lock:
            self._forget_expired_locked(now)
            self._issued[claims["uti"]] = _IssueRecord(app.client_id, now, now + lifetime)
        refresh_in = lifetime // 2 if lifetime >= REFRESH_IN_MIN_LIFETIME_SECONDS else None
        return IssuedAccessToken(token, lifetime, lifetime, refresh_in, claims)

    def _access_token_claims(self, app: App, resource: str, now: float, lifetime: int) -> dict[str, Any]:
        issuer = ACCESS_TOKEN_ISSUER.format(tenant_id=app.tenant_id)
        not_before = int(now) - ACCESS_TOKEN_BACKDATE_SECONDS
        return {
            "aud": resource,
            "iss": issuer,
            "iat": not_before,
            "nbf": not_before,
            "exp": int(now) + lifetime,
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": APP_AUTH_CERTIFICATE,
            "idp": issuer,
            "idtyp": "app",
            "oid": app.object_id,
            "roles": list(app.roles),
            "sub": app.object_id,
            "tid": app.tenant_id,
            "uti": b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }

    def _forget_expired_locked(self, now: float) -> None:
        expired = [uti for uti, record in self._issued.items() if record.expires_at < now - 3600]
        for uti in expired:
            del self._issued[uti]

    def revoke_tokens(self, app: App | None = None) -> None:
        """Make every token issued so far (to ``app``, or to anyone) fail validation."""
        now = self.now()
        with self._lock:
            if app is None:
                self._revocations.everything_before = now
            else:
                self._revocations.by_client[app.client_id.lower()] = now

    def validate_access_token(self, token: str, *, audiences: Sequence[str] | None = None) -> dict[str, Any]:
        """Check a bearer token as Graph would; return its claims or raise an AccessTokenError."""
        claims = self._verified_claims(token)
        now = self.now()
        if float(claims.get("exp", 0)) + self.access_token_leeway <= now:
            raise AccessTokenExpiredError("Lifetime validation failed, the token is expired.")
        if float(claims.get("nbf", 0)) - self.clock_skew_tolerance > now:
            raise AccessTokenMalformedError("Lifetime validation failed, the token is not yet valid.")
        accepted = tuple(audiences) if audiences is not None else self._graph_resources
        if str(claims.get("aud", "")).rstrip("/") not in accepted:
            raise AccessTokenAudienceError("Invalid audience.")
        if self.find_tenant(str(claims.get("tid", ""))) is None or claims.get("iss") != ACCESS_TOKEN_ISSUER.format(
            tenant_id=claims.get("tid")
        ):
            raise AccessTokenSignatureError("Invalid issuer.")
        if self._is_revoked(claims):
            raise AccessTokenRevokedError("The token has been revoked.")
        return claims

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AccessTokenMalformedError("CompactToken parsing failed with error code: 80049217") from None
        if header.get("kid") != self.signing_key.kid or header.get("alg") != ACCESS_TOKEN_ALGORITHM:
            raise AccessTokenSignatureError("Signing key not found.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.signing_key.private_key.public_key(),
                algorithms=[ACCESS_TOKEN_ALGORITHM],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise AccessTokenSignatureError("Signature validation failed.") from None
        except jwt.InvalidTokenError:
            raise AccessTokenMalformedError("CompactToken parsing failed with error code: 80049217") from None
        return claims

    def _is_revoked(self, claims: dict[str, Any]) -> bool:
        with self._lock:
            record = self._issued.get(str(claims.get("uti", "")))
            issued_at = record.issued_at if record else float(claims.get("iat", 0)) + ACCESS_TOKEN_BACKDATE_SECONDS
            return issued_at <= self._revocations.cutoff(str(claims.get("appid", "")))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.public_jwk()]}
