"""Microsoft's rules for a client-credentials token request with a certificate assertion.

Every rule cites the section of ``docs/microsoft-rules.md`` it comes from (each section links
Microsoft's pages). Where a code or status is not confirmed by Microsoft's documentation, the
constant here says UNCONFIRMED. Nothing
here knows HTTP: a broken rule raises :class:`EntraError`, which ``routes.py`` renders.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_graphcert.testing.emulator.entra.state import (
    PUBLIC_GRAPH_RESOURCE,
    App,
    EmulatorState,
    RegisteredCertificate,
    Tenant,
)

# -- request shape (A2) ------------------------------------------------------------------------
CLIENT_CREDENTIALS_GRANT = "client_credentials"
JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_SCOPE_SUFFIX = "/.default"
# Graph's well-known application id; "{id}/.default" names the same resource as the URL form.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# App-only tokens need a real tenant; these aliases only work for user sign-in.
MULTI_TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})

# -- assertion (A3, A4, A7) --------------------------------------------------------------------
# A3: the 2024 docs say RS256 + x5t (SHA-1), the 2025 docs PS256 + x5t#S256; accept both.
SUPPORTED_ASSERTION_ALGORITHMS = ("RS256", "PS256")
MIN_RSA_KEY_BITS = 2048  # A7
MAX_AUDIENCE_VALUES = 1  # A4 (AADSTS5002741)
REQUIRED_ASSERTION_CLAIMS = ("aud", "iss", "sub", "jti")  # A4; exp is checked by the time rule
CERTIFICATE_DOCS = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"

# -- AADSTS codes (A6 unless noted) -------------------------------------------------------------
AADSTS_MISSING_PARAMETER = 900144
# Not in the reference; the AADSTS table calls 70003 UnsupportedGrantType. UNCONFIRMED here.
AADSTS_UNSUPPORTED_GRANT_TYPE = 70003
AADSTS_BAD_ASSERTION_TYPE = 90011  # A6: observed in 2016, status UNCONFIRMED
AADSTS_NO_CLIENT_CREDENTIAL = 7000216
# Not in the reference: the documented code for a wrong client secret. The emulator has none.
AADSTS_BAD_CLIENT_SECRET = 7000215
AADSTS_TENANT_NOT_FOUND = 90002
# Not in the reference: MissingTenantRealmAndNoUserInformationProvided. UNCONFIRMED.
AADSTS_NO_TENANT_IN_REQUEST = 50059
AADSTS_APP_NOT_IN_TENANT = 700016
AADSTS_SCOPE_WITHOUT_DEFAULT = 1002012
AADSTS_INVALID_SCOPE = 70011
AADSTS_MULTIPLE_RESOURCES = 700022
AADSTS_RESOURCE_NOT_FOUND = 500011
AADSTS_UNSUPPORTED_ALGORITHM = 5002738
AADSTS_KEY_UNSUITABLE_FOR_ALGORITHM = 5002730
AADSTS_INVALID_SIGNATURE = 700027
AADSTS_OUTSIDE_TIME_RANGE = 700024
# A6 only has the old 70002+50012 pair. Microsoft's Azure SDK troubleshooting docs
# (MicrosoftDocs/azure-dev-docs, articles/java/sdk/troubleshooting-authentication-service-principal.md)
# list 700023 "Client assertion audience claim does not match Realm issuer", and docs win.
AADSTS_AUDIENCE_MISMATCH = 700023
AADSTS_TOO_MANY_AUDIENCES = 5002741
# Same docs page: 700021 "Client assertion application identifier doesn't match 'client_id'
# parameter". Its error/status (invalid_client, 401) are UNCONFIRMED.
AADSTS_CLIENT_ID_MISMATCH = 700021
AADSTS_MALFORMED_JWT = 50027  # same docs page; error/status UNCONFIRMED
# Not in the reference: MissingRequiredField, "an expected field is not present in the
# credential". Used for a missing jti/iss/sub; whether Entra rejects those at all is UNCONFIRMED.
AADSTS_MISSING_CLAIM = 90014

INVALID_REQUEST = "invalid_request"
INVALID_CLIENT = "invalid_client"


class EntraError(Exception):
    """A token request broke one of Microsoft's rules; rendered as Entra's error JSON."""

    def __init__(self, aadsts: int, error: str, http_status: int, description: str) -> None:
        super().__init__(f"AADSTS{aadsts}: {description}")
        self.aadsts = aadsts
        self.error = error
        self.http_status = http_status
        self.description = description

    @property
    def message(self) -> str:
        return f"AADSTS{self.aadsts}: {self.description}"


@dataclass(frozen=True)
class AuthenticatedClient:
    app: App
    resource: str
    algorithm: str


# -- tenant and request checks -------------------------------------------------------------------


def resolve_tenant(state: EmulatorState, segment: str) -> Tenant:
    """A6: unknown tenant is 90002 for the token POST and for discovery alike."""
    tenant = state.find_tenant(segment)
    if tenant is not None:
        return tenant
    if segment.lower() in MULTI_TENANT_ALIASES:
        raise EntraError(
            AADSTS_NO_TENANT_IN_REQUEST,
            INVALID_REQUEST,
            400,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        )
    raise EntraError(
        AADSTS_TENANT_NOT_FOUND,
        "invalid_tenant",
        400,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there are "
        "no active subscriptions for the tenant.",
    )


def authenticate_token_request(
    state: EmulatorState, tenant: Tenant, form: Mapping[str, str], *, token_endpoints: Sequence[str]
) -> AuthenticatedClient:
    """Apply every rule of A2-A7 to a token POST; return who asked and for which resource.

    ``token_endpoints`` are the URLs this request may legitimately name in the assertion's aud.
    Unknown form fields are ignored (msal sends client_info=1, A2).
    """
    _check_grant_type(form)
    client_id = _required(form, "client_id").lower()
    resource = _resource_from_scope(_required(form, "scope"))
    assertion = _client_assertion(form, client_id)
    app = state.find_app(tenant, client_id)
    if app is None:
        raise EntraError(
            AADSTS_APP_NOT_IN_TENANT,
            "unauthorized_client",
            400,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant.display_name}'. "
            "This can happen if the application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You may have sent your authentication request to the "
            "wrong tenant.",
        )
    algorithm = validate_client_assertion(
        assertion,
        app,
        token_endpoints=token_endpoints,
        now=state.now(),
        clock_skew_tolerance=state.clock_skew_tolerance,
    )
    return AuthenticatedClient(app, _known_resource(state, resource, tenant), algorithm)


def _required(form: Mapping[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise EntraError(
            AADSTS_MISSING_PARAMETER,
            INVALID_REQUEST,
            400,
            f"The request body must contain the following parameter: '{name}'.",
        )
    return value


def _check_grant_type(form: Mapping[str, str]) -> None:
    grant_type = _required(form, "grant_type")
    if grant_type != CLIENT_CREDENTIALS_GRANT:
        raise EntraError(
            AADSTS_UNSUPPORTED_GRANT_TYPE,
            "unsupported_grant_type",
            400,
            f"The app requested an unsupported grant type '{grant_type}'. This emulator only implements "
            f"'{CLIENT_CREDENTIALS_GRANT}'.",
        )


def _client_assertion(form: Mapping[str, str], client_id: str) -> str:
    assertion = (form.get("client_assertion") or "").strip()
    if not assertion:
        if (form.get("client_secret") or "").strip():
            raise EntraError(
                AADSTS_BAD_CLIENT_SECRET,
                INVALID_CLIENT,
                401,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        raise EntraError(
            AADSTS_NO_CLIENT_CREDENTIAL,
            INVALID_CLIENT,
            401,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
    assertion_type = _required(form, "client_assertion_type")
    if assertion_type != JWT_BEARER_ASSERTION_TYPE:
        raise EntraError(
            AADSTS_BAD_ASSERTION_TYPE, INVALID_REQUEST, 400, f"Unexpected client assertion type '{assertion_type}'."
        )
    return assertion


# -- scope (A2, A6) ------------------------------------------------------------------------------


def _resource_from_scope(scope: str) -> str:
    """One resource, every scope ending in /.default (A2); returns the resource identifier."""
    scopes = scope.split()
    if not all(item.endswith(DEFAULT_SCOPE_SUFFIX) for item in scopes):
        raise EntraError(
            AADSTS_SCOPE_WITHOUT_DEFAULT,
            "invalid_scope",
            400,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
            "value with /.default suffixed to the resource identifier (application ID URI).",
        )
    resources = {_normalise_resource(item[: -len(DEFAULT_SCOPE_SUFFIX)]) for item in scopes}
    if len(resources) > 1:
        raise EntraError(
            AADSTS_MULTIPLE_RESOURCES,
            "invalid_scope",
            400,
            f"The provided value for the input parameter scope is not valid because it contains more than one "
            f"resource. Scope {scope} is not valid.",
        )
    resource = resources.pop()
    if not resource:
        raise EntraError(
            AADSTS_INVALID_SCOPE,
            "invalid_scope",
            400,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
        )
    return resource


def _normalise_resource(resource: str) -> str:
    resource = resource.rstrip("/")
    if "://" in resource:
        scheme, _, rest = resource.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}{slash}{path}"
    return resource.lower()


def _known_resource(state: EmulatorState, resource: str, tenant: Tenant) -> str:
    """Return the token audience for the requested resource (500011 if Entra has no such resource)."""
    if resource == GRAPH_APP_ID:
        return PUBLIC_GRAPH_RESOURCE
    accepted = {_normalise_resource(known): known for known in (*state.graph_resources, PUBLIC_GRAPH_RESOURCE)}
    if resource in accepted:
        return accepted[resource]
    raise EntraError(
        AADSTS_RESOURCE_NOT_FOUND,
        "invalid_resource",
        400,
        f"The resource principal named {resource} was not found in the tenant named {tenant.display_name}. "
        "This can happen if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You might have sent your authentication request to the wrong "
        "tenant.",
    )


# -- the assertion itself (A3, A4, A7) -----------------------------------------------------------


def validate_client_assertion(
    assertion: str,
    app: App,
    *,
    token_endpoints: Sequence[str],
    now: float,
    clock_skew_tolerance: float,
) -> str:
    """Verify the JWT as Entra does; return its algorithm or raise :class:`EntraError`."""
    header, claims = _parse_jwt(assertion)
    algorithm = _check_algorithm(header)
    certificate = _signing_certificate(app, header)
    _check_key(certificate, now)
    _check_signature(assertion, certificate, algorithm)
    _check_required_claims(claims)
    _check_audience(claims.get("aud"), token_endpoints)
    _check_client_id(claims, app.client_id)
    _check_time_range(claims, now, clock_skew_tolerance)
    return algorithm


def _malformed() -> EntraError:
    return EntraError(AADSTS_MALFORMED_JWT, INVALID_REQUEST, 400, "JWT token is invalid or malformed.")


def _parse_jwt(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(assertion)
        claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _malformed() from None
    return header, claims


def _check_algorithm(header: Mapping[str, Any]) -> str:
    algorithm = header.get("alg")
    if algorithm not in SUPPORTED_ASSERTION_ALGORITHMS:
        raise EntraError(
            AADSTS_UNSUPPORTED_ALGORITHM,
            INVALID_REQUEST,
            400,
            f"'{algorithm}' is not a supported signature algorithm. Supported signing algorithms are: "
            f"'{', '.join(SUPPORTED_ASSERTION_ALGORITHMS)}'",
        )
    return str(algorithm)


def _header_digest(header: Mapping[str, Any], name: str) -> bytes | None:
    value = header.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _malformed()
    # A3: msal keeps the '=' padding of base64url; strip it, then re-pad for the decoder.
    stripped = value.strip().rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise _malformed() from None


def _x5c_chain(header: Mapping[str, Any]) -> list[x509.Certificate] | None:
    """A3: x5c is standard base64 DER, leaf first; msal embeds newlines, so drop whitespace."""
    entries = header.get("x5c")
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries or not all(isinstance(item, str) for item in entries):
        raise _malformed()
    try:
        return [x509.load_der_x509_certificate(base64.b64decode("".join(item.split()))) for item in entries]
    except (binascii.Error, ValueError):
        raise _malformed() from None


def _thumbprint_hint(header: Mapping[str, Any], chain: list[x509.Certificate] | None) -> str:
    digest = _header_digest(header, "x5t") or _header_digest(header, "x5t#S256")
    if digest is None and chain:
        digest = RegisteredCertificate.from_certificate(chain[0]).sha1
    return digest.hex().upper() if digest else ""


def _key_not_found(app: App, thumbprint: str, *, sni_hint: bool = False) -> EntraError:
    hint = (
        " SNI may be configured on the app. Please ensure that client assertion is being sent with the x5c "
        "claim in the JWT header using MSAL's WithSendX5C() method so that Azure Active Directory can "
        "validate the certificate being used."
        if sni_hint
        else ""
    )
    return EntraError(
        AADSTS_INVALID_SIGNATURE,
        INVALID_CLIENT,
        401,
        "The certificate with identifier used to sign the client assertion is not registered on application. "
        f"[Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the "
        "Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id "
        f"'{app.client_id}'.{hint}]",
    )


def _invalid_signature(reason: str, certificate: x509.Certificate) -> EntraError:
    registered = RegisteredCertificate.from_certificate(certificate)
    start = certificate.not_valid_before_utc.strftime("%m/%d/%Y %H:%M:%S")
    end = certificate.not_valid_after_utc.strftime("%m/%d/%Y %H:%M:%S")
    return EntraError(
        AADSTS_INVALID_SIGNATURE,
        INVALID_CLIENT,
        401,
        f"Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: "
        f"'{registered.thumbprint}', Found key 'Start={start}, End={end}']",
    )


def _signing_certificate(app: App, header: Mapping[str, Any]) -> x509.Certificate:
    """Find the certificate the assertion claims to be signed with (A3).

    Thumbprint apps look up x5t#S256 or x5t among registered certificates. SN+I apps need x5c,
    whose leaf must carry a registered subject and issuer.
    """
    chain = _x5c_chain(header)
    sha1 = _header_digest(header, "x5t")
    sha256 = _header_digest(header, "x5t#S256")
    if app.subject_name_issuer:
        return _subject_name_issuer_leaf(app, header, chain, sha1, sha256)
    registered = app.find_certificate(sha1=sha1, sha256=sha256) if (sha1 or sha256) else None
    if registered is None or (sha1 is not None and registered.sha1 != sha1):
        raise _key_not_found(app, _thumbprint_hint(header, chain))
    if sha256 is not None and registered.sha256 != sha256:
        raise _key_not_found(app, _thumbprint_hint(header, chain))
    return registered.certificate


def _subject_name_issuer_leaf(
    app: App,
    header: Mapping[str, Any],
    chain: list[x509.Certificate] | None,
    sha1: bytes | None,
    sha256: bytes | None,
) -> x509.Certificate:
    if not chain:
        raise _key_not_found(app, _thumbprint_hint(header, chain), sni_hint=True)
    leaf = chain[0]
    if not app.trusts_subject_and_issuer(leaf):
        raise _key_not_found(app, _thumbprint_hint(header, chain))
    # UNCONFIRMED: a header thumbprint that names another certificate than the x5c leaf is refused.
    presented = RegisteredCertificate.from_certificate(leaf)
    if (sha1 is not None and sha1 != presented.sha1) or (sha256 is not None and sha256 != presented.sha256):
        raise _key_not_found(app, _thumbprint_hint(header, chain))
    if len(chain) > 1:
        try:
            leaf.verify_directly_issued_by(chain[1])
        except (ValueError, TypeError, InvalidSignature):
            raise _invalid_signature("The certificate chain in x5c is broken.", leaf) from None
    return leaf


def _check_key(certificate: x509.Certificate, now: float) -> None:
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        # A6: 5002730 "Unsupported key for the signing algorithm"; status UNCONFIRMED.
        raise EntraError(
            AADSTS_KEY_UNSUITABLE_FOR_ALGORITHM, INVALID_REQUEST, 400, "Unsupported key for the signing algorithm."
        )
    if public_key.key_size < MIN_RSA_KEY_BITS:
        raise _invalid_signature(
            f"RSA key size {public_key.key_size} is less than the minimum required {MIN_RSA_KEY_BITS} bits.",
            certificate,
        )
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        # The registered key credential carries the certificate's dates; outside them it is unusable.
        raise _invalid_signature("The key used is expired.", certificate)


def _check_signature(assertion: str, certificate: x509.Certificate, algorithm: str) -> None:
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey), "_check_key admits RSA keys only"
    try:
        jwt.PyJWS().decode(assertion, key=public_key, algorithms=[algorithm])
    except jwt.InvalidSignatureError:
        raise _invalid_signature(
            "The provided signature value did not match the expected signature value.", certificate
        ) from None
    except jwt.InvalidTokenError:
        raise _malformed() from None


def _check_required_claims(claims: Mapping[str, Any]) -> None:
    for name in REQUIRED_ASSERTION_CLAIMS:
        value = claims.get(name)
        if value is None or value == "" or value == []:
            raise EntraError(
                AADSTS_MISSING_CLAIM,
                INVALID_REQUEST,
                400,
                f"The required field '{name}' is missing from the credential. Ensure that you have all the "
                "necessary parameters for the login request.",
            )


def _check_audience(audience: Any, token_endpoints: Sequence[str]) -> None:
    """A4: aud is exactly the token endpoint this request was sent to, and only one value."""
    values = audience if isinstance(audience, list) else [audience]
    if len(values) > MAX_AUDIENCE_VALUES:
        raise EntraError(
            AADSTS_TOO_MANY_AUDIENCES,
            INVALID_CLIENT,
            401,
            f"Number of audience values in the provided client credential exceed maximum allowed. {len(values)} "
            f"audience values provided, maximum allowed is {MAX_AUDIENCE_VALUES}.",
        )
    accepted = {endpoint.lower() for endpoint in token_endpoints}
    if not isinstance(values[0], str) or values[0].strip().lower() not in accepted:
        raise EntraError(
            AADSTS_AUDIENCE_MISMATCH,
            INVALID_CLIENT,
            401,
            f"Client assertion audience claim does not match Realm issuer. Review the documentation at "
            f"{CERTIFICATE_DOCS} .",
        )


def _check_client_id(claims: Mapping[str, Any], client_id: str) -> None:
    """A4: iss and sub are both the client id of the request."""
    for name in ("iss", "sub"):
        if str(claims.get(name, "")).strip().lower() != client_id:
            raise EntraError(
                AADSTS_CLIENT_ID_MISMATCH,
                INVALID_CLIENT,
                401,
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
                f"documentation at {CERTIFICATE_DOCS} .",
            )


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """A4: NumericDates may be floats (msal sends them); anything else is malformed."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _malformed()
    return float(value)


def format_entra_time(seconds: float) -> str:
    """Entra's 7-digit fractional ISO form, e.g. 2024-10-02T22:05:03.6755165Z (A6 samples)."""
    moment = dt.datetime.fromtimestamp(max(seconds, 0.0), dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _check_time_range(claims: Mapping[str, Any], now: float, tolerance: float) -> None:
    """A4: exp must be in the future and nbf (optional; absent reads as 1970) in the past."""
    expires = _numeric_date(claims, "exp")
    not_before = _numeric_date(claims, "nbf")
    expired = expires is None or expires + tolerance <= now
    premature = not_before is not None and not_before - tolerance > now
    if expired or premature:
        raise EntraError(
            AADSTS_OUTSIDE_TIME_RANGE,
            INVALID_CLIENT,
            401,
            f"Client assertion is not within its valid time range. Current time: {format_entra_time(now)}, "
            f"assertion valid from {format_entra_time(not_before or 0.0)}, expiry time of assertion "
            f"{format_entra_time(expires or 0.0)}. Review the documentation at {CERTIFICATE_DOCS} .",
        )
