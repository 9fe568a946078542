"""The key the emulated Entra ID signs access tokens with: one per process, or kept in a state dir
so tokens stay valid across a restart of a standalone emulator."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SIGNING_KEY_BITS = 2048
SIGNING_KEY_FILE = "token-signing-key.pem"


def b64url(data: bytes) -> str:
    """Base64url without padding, the JOSE form of a thumbprint (docs/microsoft-rules.md §A3)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """The emulator's token-signing key, published (like Entra's) with a kid equal to its x5t."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        self.certificate = _self_signed_signing_certificate(private_key)
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        self.kid = b64url(hashlib.sha1(der).digest())  # noqa: S324
        self._der = der

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=SIGNING_KEY_BITS))

    @classmethod
    def load_or_create(cls, directory: Path) -> SigningKey:
        """Keep the key in ``directory`` so tokens survive a restart of a standalone emulator."""
        path = directory / SIGNING_KEY_FILE
        if path.is_file():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                return cls(key)
        signing_key = cls.generate()
        directory.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(
            signing_key.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return signing_key

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "x5c": [base64.b64encode(self._der).decode("ascii")],
        }


def _self_signed_signing_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphcert emulator token signing")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


_process_signing_key: SigningKey | None = None
_process_signing_lock = threading.Lock()


def process_signing_key() -> SigningKey:
    """One RSA key per process: generating it is the slowest part of starting an emulator."""
    global _process_signing_key
    with _process_signing_lock:
        if _process_signing_key is None:
            _process_signing_key = SigningKey.generate()
        return _process_signing_key
