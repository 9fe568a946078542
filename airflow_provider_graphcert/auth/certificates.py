"""Load a client certificate and its RSA private key, and check they can authenticate to Entra ID.

Accepted material: PEM (key and certificate in one file or two, encrypted keys included) and
PKCS#12 (.pfx/.p12) with or without a password, from files or inline (PEM text or base64 of a PFX)
so the material can live in a secrets backend. Parsing happens once per distinct content per
process; validity (dates) is checked on every use because time moves on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from airflow_provider_graphcert.errors import CertificateError

log = logging.getLogger(__name__)

# Entra ID refuses smaller RSA keys with AADSTS700027 (docs/microsoft-rules.md §A7).
MIN_RSA_KEY_BITS = 2048
DEFAULT_EXPIRY_WARNING_DAYS = 30

_PEM_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED |DSA )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL
)


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE headers want it (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ClientCertificate:
    """An RSA private key with the certificate uploaded to the app registration (leaf first in chain)."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def sha1_thumbprint(self) -> str:
        """Upper-case hex, the form the Azure portal shows under Certificates & secrets."""
        return hashlib.sha1(self.der, usedforsecurity=False).hexdigest().upper()

    @property
    def sha256_thumbprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest().upper()

    @property
    def x5t(self) -> str:
        return b64url(hashlib.sha1(self.der, usedforsecurity=False).digest())

    @property
    def x5t_s256(self) -> str:
        return b64url(hashlib.sha256(self.der).digest())

    @property
    def x5c(self) -> list[str]:
        """Standard base64 DER certificates, leaf first (RFC 7515 §4.1.6)."""
        return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in self.chain]

    @property
    def key_size(self) -> int:
        return self.private_key.key_size

    @property
    def not_valid_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_valid_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.certificate.issuer.rfc4514_string()

    def describe(self) -> str:
        return (
            f"certificate {self.subject!r} (SHA-1 thumbprint {self.sha1_thumbprint}, "
            f"valid until {self.not_valid_after:%Y-%m-%d %H:%M}Z)"
        )


def decode_inline_material(text: str, *, source: str) -> bytes:
    """Inline material is PEM text, or base64 of a PFX/DER file (secrets backends hold text)."""
    stripped = text.strip()
    if "-----BEGIN" in stripped:
        # Secrets backends and env vars often turn newlines into literal "\n".
        return stripped.replace("\\n", "\n").encode("utf-8")
    try:
        return base64.b64decode("".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError(
            f"{source} is neither PEM text (-----BEGIN ...) nor base64 of a .pfx file. "
            "Paste the PEM file as it is, or the output of `base64 -w0 cert.pfx`.",
            field="certificate_data",
        ) from None


_cache: dict[bytes, ClientCertificate] = {}
_cache_lock = threading.Lock()


def load_client_certificate(
    data: bytes,
    *,
    key_data: bytes | None = None,
    password: str | None = None,
    source: str = "the certificate",
) -> ClientCertificate:
    """Parse PEM or PKCS#12 material into a checked ClientCertificate (cached by content).

    ``source`` names where the material came from (a connection field and path) so errors can
    point at it. Dates are not checked here: call :func:`check_validity`.
    """
    digest = hashlib.sha256()
    for part in (data, key_data or b"", (password or "").encode("utf-8")):
        digest.update(hashlib.sha256(part).digest())
    cache_key = digest.digest()
    with _cache_lock:
        cached = _cache.get(cache_key)
    if cached is not None:
        return cached
    loaded = _parse(data, key_data, password, source)
    with _cache_lock:
        _cache[cache_key] = loaded
    return loaded


def _parse(data: bytes, key_data: bytes | None, password: str | None, source: str) -> ClientCertificate:
    if b"-----BEGIN" in data:
        certificates = _pem_certificates(data, source)
        key_source = key_data if key_data is not None else data
        key = _pem_private_key(key_source, password, source)
    elif (der_certificate := _der_certificate(data)) is not None:
        # A bare .cer/.crt (DER): the public half, as uploaded to the app registration.
        if key_data is None:
            raise CertificateError(
                f"{source} is a certificate without a private key (a DER .cer/.crt file, the public half you "
                "upload to the app registration). Signing the client assertion needs the private key: give "
                "the .pem that holds the key and the certificate, a .pfx exported with the private key, or "
                "keep this .cer and set key_path to its PEM private key file.",
                field="certificate_path",
            )
        certificates = [der_certificate]
        key = _pem_private_key(key_data, password, source)
    elif _is_der_private_key(data):
        raise CertificateError(
            f"{source} is a private key without its certificate (a DER .key file). Give the .pem that holds "
            "the key and the certificate, or a .pfx exported with the private key.",
            field="certificate_path",
        )
    else:
        if key_data is not None:
            raise CertificateError(
                f"{source} is not PEM, so a separate key file makes no sense. Give a PEM certificate "
                "with the key file, or a .pfx that holds both and no key file.",
                field="key_path",
            )
        key, certificates = _pkcs12(data, password, source)
    rsa_key = _require_rsa(key, source)
    leaf = _matching_certificate(rsa_key, certificates, source)
    chain = (leaf, *[c for c in certificates if c is not leaf])
    return ClientCertificate(private_key=rsa_key, certificate=leaf, chain=chain)


def _der_certificate(data: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        return None


def _is_der_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError):  # TypeError: an encrypted DER key, which a .pfx is not either
        return False
    except Exception:  # UnsupportedAlgorithm: still a key, of a kind we cannot use
        return True
    return True


def _pem_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    if b"CERTIFICATE-----" not in data:
        raise CertificateError(
            f"{source} holds no certificate (no '-----BEGIN CERTIFICATE-----' block). Put the certificate "
            "you uploaded to the app registration in the same PEM file as the key, or use a .pfx.",
            field="certificate_path",
        )
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"{source}: the certificate block is not valid PEM ({exc}).") from None


def _pem_private_key(data: bytes, password: str | None, source: str) -> object:
    match = _PEM_KEY_BLOCK.search(data)
    if match is None:
        raise CertificateError(
            f"{source} holds a certificate but no private key. Entra ID needs the key to sign the "
            "client assertion: put the key in the same PEM file, set key_path to the key file, "
            "or use the .pfx exported with the private key.",
            field="key_path",
        )
    block = match.group(0)
    encrypted = b"ENCRYPTED" in match.group(1) or b"Proc-Type: 4,ENCRYPTED" in block
    if encrypted and not password:
        raise CertificateError(
            f"The private key in {source} is encrypted and the connection has no password. "
            "Put the key's passphrase in the connection's password field (Certificate password).",
            field="password",
        )
    try:
        return serialization.load_pem_private_key(block, password.encode("utf-8") if encrypted and password else None)
    except ValueError:
        if encrypted:
            raise CertificateError(
                f"The password does not decrypt the private key in {source}. Check the connection's "
                "password field (Certificate password).",
                field="password",
            ) from None
        raise CertificateError(f"The private key in {source} is not valid PEM.", field="key_path") from None
    except TypeError as exc:
        raise CertificateError(f"The private key in {source} cannot be read: {exc}.") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd key types
        raise CertificateError(f"The private key in {source} cannot be read: {exc}.") from None


def _pkcs12(data: bytes, password: str | None, source: str) -> tuple[object, list[x509.Certificate]]:
    # A PFX exported "without password" may be protected by an empty one; try both spellings.
    attempts: Sequence[bytes | None] = [password.encode("utf-8")] if password else [None, b""]
    for attempt in attempts:
        try:
            key, certificate, additional = pkcs12.load_key_and_certificates(data, attempt)
        except ValueError:
            continue
        if key is None:
            raise CertificateError(
                f"{source} is a PKCS#12 file without a private key. Export the .pfx again with "
                "'Yes, export the private key'.",
                field="certificate_path",
            )
        if certificate is None:
            raise CertificateError(f"{source} is a PKCS#12 file without a certificate.")
        return key, [certificate, *additional]
    if password:
        raise CertificateError(
            f"{source} could not be opened with the connection's password: either the password "
            "(Certificate password) is wrong or the file is not a PKCS#12 (.pfx/.p12) file.",
            field="password",
        )
    raise CertificateError(
        f"{source} is not PEM and could not be opened as a PKCS#12 (.pfx/.p12) file without a "
        "password. If it is a password-protected .pfx, put the password in the connection's "
        "password field (Certificate password).",
        field="password",
    )


def _require_rsa(key: object, source: str) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "")
        article = "an" if kind[:1] in "AEIOU" else "a"
        raise CertificateError(
            f"The private key in {source} is {article} {kind} key; Entra ID accepts only RSA keys of "
            f"{MIN_RSA_KEY_BITS} bits or more for client assertions. Create an RSA certificate "
            "(for example `graphcert cert new`) and upload its .cer.",
            field="certificate_path",
        )
    if key.key_size < MIN_RSA_KEY_BITS:
        raise CertificateError(
            f"The RSA key in {source} has {key.key_size} bits; Entra ID requires at least "
            f"{MIN_RSA_KEY_BITS} (AADSTS700027). Create a new certificate with a 2048-bit or larger key.",
            field="certificate_path",
        )
    return key


def _matching_certificate(
    key: rsa.RSAPrivateKey, certificates: Sequence[x509.Certificate], source: str
) -> x509.Certificate:
    wanted = key.public_key().public_numbers()
    for certificate in certificates:
        public = certificate.public_key()
        if isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == wanted:
            return certificate
    raise CertificateError(
        f"The private key in {source} does not belong to its certificate "
        f"(certificate subject {certificates[0].subject.rfc4514_string()!r}). Use the key that was "
        "created together with the certificate uploaded to the app registration.",
        field="certificate_path",
    )


_warned: set[str] = set()
_warned_lock = threading.Lock()


def check_validity(
    cert: ClientCertificate,
    *,
    now: datetime | None = None,
    warning_days: int = DEFAULT_EXPIRY_WARNING_DAYS,
    source: str = "the certificate",
) -> None:
    """Refuse certificates outside their validity window; warn once per process near expiry."""
    now = now or datetime.now(UTC)
    if now < cert.not_valid_before:
        raise CertificateError(
            f"{cert.describe()} from {source} is not valid before "
            f"{cert.not_valid_before:%Y-%m-%d %H:%M}Z. Check this machine's clock, or wait.",
            field="certificate_path",
        )
    if now > cert.not_valid_after:
        raise CertificateError(
            f"{cert.describe()} from {source} expired on {cert.not_valid_after:%Y-%m-%d %H:%M}Z. "
            "Create a new certificate, upload its .cer to the app registration and point the "
            "connection at the new key.",
            field="certificate_path",
        )
    remaining = cert.not_valid_after - now
    if remaining < timedelta(days=warning_days):
        with _warned_lock:
            first = cert.sha1_thumbprint not in _warned
            _warned.add(cert.sha1_thumbprint)
        if first:
            log.warning(
                "Certificate %s expires in %d days (%s). Upload a new certificate to the app "
                "registration before then, or token requests will fail.",
                cert.sha1_thumbprint,
                remaining.days,
                f"{cert.not_valid_after:%Y-%m-%d %H:%M}Z",
            )
