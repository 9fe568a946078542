"""What a test needs to talk to the emulator like a client would: certificates, assertions, POSTs.

Assertions are built here with PyJWT on purpose: the provider's own client is tested elsewhere,
and these tests must be able to build assertions that the client would never send.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from airflow_provider_graphcert.testing import GraphEmulator

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DROP = object()  # marks a claim or header to leave out


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Signer:
    """An RSA key and its certificate, as an app owner would create with `graphcert cert new`."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def sha1_hex(self) -> str:
        return hashlib.sha1(self.der).hexdigest()

    @property
    def x5t(self) -> str:
        return base64.urlsafe_b64encode(hashlib.sha1(self.der).digest()).decode().rstrip("=")

    @property
    def x5t_s256(self) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(self.der).digest()).decode().rstrip("=")

    @property
    def x5c(self) -> list[str]:
        return [base64.b64encode(self.der).decode()]


def make_signer(
    *,
    bits: int = 2048,
    subject: str = "graphcert-test",
    issuer: Signer | None = None,
    valid_from: dt.datetime | None = None,
    valid_days: int = 30,
    key: rsa.RSAPrivateKey | None = None,
) -> Signer:
    """A certificate, self-signed unless ``issuer`` (a CA signer) is given."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=bits)
    start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.certificate.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    certificate = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Signer(key, certificate)


def make_assertion(
    signer: Signer,
    *,
    client_id: str,
    audience: Any,
    algorithm: str = "PS256",
    signing_key: Any = None,
    claims: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """A client assertion as Microsoft documents it (docs/microsoft-rules.md §A3/§A4); override any part of it.

    The default header carries x5t#S256 for PS256 and x5t for RS256; pass ``DROP`` as a value
    to leave a claim or header out.
    """
    issued = time.time() if now is None else now
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + 600,
    }
    header: dict[str, Any] = {"x5t#S256": signer.x5t_s256} if algorithm == "PS256" else {"x5t": signer.x5t}
    payload = _merge(payload, claims or {})
    header = _merge(header, headers or {})
    key = signer.key if signing_key is None else signing_key
    return jwt.encode(payload, key, algorithm=algorithm, headers=header)


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **changes}
    return {name: value for name, value in merged.items() if value is not DROP}


def token_form(client_id: str, assertion: str, scope: str, /, **overrides: Any) -> dict[str, str]:
    """The form msal posts; ``overrides`` replace fields (``DROP`` removes one)."""
    form = {
        "client_id": client_id,
        "scope": scope,
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "client_info": "1",  # msal sends it; unknown fields must be accepted (A2)
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not DROP}


def post_token(emulator: GraphEmulator, tenant: str, form: Mapping[str, str], **kwargs: Any) -> requests.Response:
    """POST to the token endpoint, trusting the emulator's CA explicitly (REQUESTS_CA_BUNDLE is set here)."""
    url = f"{emulator.authority_host}/{tenant}/oauth2/v2.0/token"
    return requests.post(url, data=form, verify=emulator.ca_bundle, timeout=10, **kwargs)


def aadsts_codes(response: requests.Response) -> list[int]:
    return list(response.json().get("error_codes", []))


def decode_with_published_keys(emulator: GraphEmulator, tenant_id: str, token: str) -> dict[str, Any]:
    """Verify an access token the way a resource server would: with the JWKS from discovery."""
    discovery = requests.get(
        f"{emulator.authority_host}/{tenant_id}/v2.0/.well-known/openid-configuration",
        verify=emulator.ca_bundle,
        timeout=10,
    ).json()
    keys = requests.get(discovery["jwks_uri"], verify=emulator.ca_bundle, timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(item for item in keys if item["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=emulator.graph_resource, leeway=0)


def statuses(responses: Iterable[requests.Response]) -> list[int]:
    return [response.status_code for response in responses]
