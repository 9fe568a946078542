"""A private test CA and a server certificate for the emulator's HTTPS listeners.

msal only talks HTTPS (docs/microsoft-rules.md §D, "Pointing msal at a local emulator"), so the emulator needs a
certificate that clients can trust through a CA bundle file. EC P-256 keys are used because they
are generated in microseconds, unlike RSA; the material is still cached once per process (or kept
in a directory) so every emulator start is cheap.
"""

from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
LOOPBACK_DNS_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
# Long enough that a kept --state-dir does not go stale during a project's life.
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)
# Regenerate kept material this long before it would expire.
RENEW_MARGIN = dt.timedelta(days=30)


@dataclass(frozen=True)
class TLSMaterial:
    """Paths of the PEM files: the CA that clients trust, and the server's certificate and key."""

    ca_bundle: Path
    server_certificate: Path
    server_key: Path


_process_material: TLSMaterial | None = None
_process_lock = threading.Lock()


def tls_material(directory: Path | None = None) -> TLSMaterial:
    """Return CA and server files, generating them only when missing or about to expire.

    Without ``directory`` the files live in a temporary folder shared by every emulator in this
    process and removed at interpreter exit.
    """
    if directory is not None:
        return _ensure_material(Path(directory))
    global _process_material
    with _process_lock:
        if _process_material is None:
            folder = Path(tempfile.mkdtemp(prefix="graphcert-emulator-tls-"))
            atexit.register(shutil.rmtree, folder, True)
            _process_material = _ensure_material(folder)
        return _process_material


def _ensure_material(directory: Path) -> TLSMaterial:
    material = TLSMaterial(
        ca_bundle=directory / CA_FILE,
        server_certificate=directory / SERVER_CERT_FILE,
        server_key=directory / SERVER_KEY_FILE,
    )
    if not _is_usable(material):
        directory.mkdir(parents=True, exist_ok=True)
        _write_material(material)
    return material


def _is_usable(material: TLSMaterial) -> bool:
    paths = (material.ca_bundle, material.server_certificate, material.server_key)
    if not all(path.is_file() for path in paths):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(material.server_certificate.read_bytes())
    except ValueError:
        return False
    return certificate.not_valid_after_utc - RENEW_MARGIN > dt.datetime.now(dt.UTC)


def _write_material(material: TLSMaterial) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_certificate = _build_ca(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = _build_server_certificate(server_key, ca_key, ca_certificate)
    material.ca_bundle.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    material.server_certificate.write_bytes(server_certificate.public_bytes(serialization.Encoding.PEM))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    material.server_key.touch(mode=0o600)
    material.server_key.write_bytes(key_pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphcert emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity() -> tuple[dt.datetime, dt.datetime]:
    # Back-dated so a client whose clock is slightly behind still accepts the certificate.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return start, start + SERVER_VALIDITY


def _build_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    name = _name("graphcert emulator test CA")
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # Strict X.509 verification (default in newer Pythons) requires the key identifiers.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _build_server_certificate(
    key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey, ca_certificate: x509.Certificate
) -> x509.Certificate:
    start, end = _validity()
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in LOOPBACK_DNS_NAMES]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in LOOPBACK_ADDRESSES]
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
