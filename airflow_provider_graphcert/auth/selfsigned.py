"""Self-signed RSA certificates for trying things out (`graphcert cert new`, tests, the demo).

Production certificates may come from a CA; Entra ID only needs the public .cer uploaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class SelfSignedCertificate:
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def key_pem(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def pfx(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(b"graphcert", self.private_key, self.certificate, None, encryption)


def create_self_signed(
    common_name: str = "graphcert",
    *,
    days: int = 365,
    key_size: int = 2048,
    not_before: datetime | None = None,
) -> SelfSignedCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    # Accept "CN=name" as well as "name": users copy subjects in either form.
    common_name = common_name.removeprefix("CN=").removeprefix("cn=")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return SelfSignedCertificate(private_key=key, certificate=certificate)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, from the first byte (no chmod race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    # An existing file keeps its old mode on open: tighten it before the first secret byte lands.
    os.fchmod(fd, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
