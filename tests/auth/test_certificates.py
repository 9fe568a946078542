"""A data engineer points the connection at whatever form their certificate came in."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from airflow_provider_graphcert.auth import certificates
from airflow_provider_graphcert.auth.certificates import (
    check_validity,
    decode_inline_material,
    load_client_certificate,
)
from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate, create_self_signed
from airflow_provider_graphcert.errors import CertificateError


def test_pem_with_key_and_certificate_together(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.key_pem() + rsa_cert.cert_pem())
    assert loaded.certificate == rsa_cert.certificate
    assert loaded.key_size == 2048


def test_pem_certificate_first_then_key_works_too(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.cert_pem() + rsa_cert.key_pem())
    assert loaded.certificate == rsa_cert.certificate


def test_pem_key_in_separate_file(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.cert_pem(), key_data=rsa_cert.key_pem())
    assert loaded.certificate == rsa_cert.certificate


def test_encrypted_pem_key_with_password(rsa_cert: SelfSignedCertificate) -> None:
    data = rsa_cert.key_pem("s3cret-pass") + rsa_cert.cert_pem()
    loaded = load_client_certificate(data, password="s3cret-pass")
    assert loaded.certificate == rsa_cert.certificate


def test_encrypted_pem_key_without_password_names_the_password_field(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(CertificateError, match="encrypted") as info:
        load_client_certificate(rsa_cert.key_pem("s3cret-pass") + rsa_cert.cert_pem())
    assert info.value.field == "password"


def test_encrypted_pem_key_with_wrong_password(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(CertificateError, match="does not decrypt") as info:
        load_client_certificate(rsa_cert.key_pem("s3cret-pass") + rsa_cert.cert_pem(), password="nope-nope")
    assert info.value.field == "password"
    assert "nope-nope" not in str(info.value)


def test_pfx_with_password(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.pfx("pfx-pass-123"), password="pfx-pass-123")
    assert loaded.certificate == rsa_cert.certificate


def test_pfx_without_password(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.pfx())
    assert loaded.certificate == rsa_cert.certificate


def test_pfx_wrong_password(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(CertificateError, match="password") as info:
        load_client_certificate(rsa_cert.pfx("pfx-pass-123"), password="wrong-pass")
    assert info.value.field == "password"
    assert "wrong-pass" not in str(info.value)


def test_pfx_needs_a_password_that_was_not_given(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(CertificateError, match="put the password in the connection's password field"):
        load_client_certificate(rsa_cert.pfx("pfx-pass-123"))


def test_inline_pem_with_escaped_newlines_from_a_secrets_backend(rsa_cert: SelfSignedCertificate) -> None:
    text = (rsa_cert.key_pem() + rsa_cert.cert_pem()).decode().replace("\n", "\\n")
    loaded = load_client_certificate(decode_inline_material(text, source="certificate_data"))
    assert loaded.certificate == rsa_cert.certificate


def test_inline_base64_pfx(rsa_cert: SelfSignedCertificate) -> None:
    text = base64.b64encode(rsa_cert.pfx()).decode()
    loaded = load_client_certificate(decode_inline_material(text, source="certificate_data"))
    assert loaded.certificate == rsa_cert.certificate


def test_inline_garbage_is_refused() -> None:
    with pytest.raises(CertificateError, match="neither PEM text") as info:
        decode_inline_material("this is not a certificate!", source="certificate_data")
    assert info.value.field == "certificate_data"


def test_thumbprints_match_what_the_portal_and_jose_expect(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.key_pem() + rsa_cert.cert_pem())
    der = rsa_cert.certificate.public_bytes(serialization.Encoding.DER)
    assert loaded.sha1_thumbprint == rsa_cert.certificate.fingerprint(hashes.SHA1()).hex().upper()
    assert loaded.sha256_thumbprint == hashlib.sha256(der).hexdigest().upper()
    assert base64.urlsafe_b64decode(loaded.x5t + "=") == hashlib.sha1(der).digest()
    assert base64.urlsafe_b64decode(loaded.x5t_s256 + "=") == hashlib.sha256(der).digest()
    assert "=" not in loaded.x5t + loaded.x5t_s256
    assert base64.b64decode(loaded.x5c[0]) == der


def test_pem_without_key(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(CertificateError, match="no private key") as info:
        load_client_certificate(rsa_cert.cert_pem())
    assert info.value.field == "key_path"


def test_a_der_cer_without_its_key_is_called_a_certificate_without_a_private_key(
    rsa_cert: SelfSignedCertificate,
) -> None:
    der = rsa_cert.certificate.public_bytes(serialization.Encoding.DER)
    for material in (der, decode_inline_material(base64.b64encode(der).decode(), source="certificate_data")):
        with pytest.raises(CertificateError) as info:
            load_client_certificate(material, source="certificate_path '/secrets/app.cer'")
        message = str(info.value)
        assert "is a certificate without a private key" in message
        assert ".pfx exported with the private key" in message and "key_path" in message
        assert "password" not in message
        assert info.value.field == "certificate_path"


def test_a_der_private_key_alone_is_called_a_key_without_its_certificate(rsa_cert: SelfSignedCertificate) -> None:
    der_key = rsa_cert.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertificateError, match="is a private key without its certificate") as info:
        load_client_certificate(der_key)
    assert "password" not in str(info.value)


def test_a_der_cer_with_its_pem_key_file_works(rsa_cert: SelfSignedCertificate) -> None:
    der = rsa_cert.certificate.public_bytes(serialization.Encoding.DER)
    loaded = load_client_certificate(der, key_data=rsa_cert.key_pem())
    assert loaded.certificate == rsa_cert.certificate


def test_pem_without_certificate(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(CertificateError, match="no certificate"):
        load_client_certificate(rsa_cert.key_pem())


def test_key_that_does_not_match_the_certificate(
    rsa_cert: SelfSignedCertificate, other_rsa_cert: SelfSignedCertificate
) -> None:
    with pytest.raises(CertificateError, match="does not belong to its certificate"):
        load_client_certificate(other_rsa_cert.key_pem() + rsa_cert.cert_pem())


def _pem_with(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """A PEM whose key is ``key``, with a certificate for that key (signed by a throwaway RSA CA)."""
    ca = create_self_signed("CN=throwaway-ca")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd-key")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(ca.private_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def test_ec_keys_are_refused_with_the_reason() -> None:
    with pytest.raises(CertificateError, match="only RSA keys"):
        load_client_certificate(_pem_with(ec.generate_private_key(ec.SECP256R1())))


def test_small_rsa_keys_are_refused() -> None:
    small = create_self_signed("CN=small", key_size=1024)
    with pytest.raises(CertificateError, match="1024 bits"):
        load_client_certificate(small.key_pem() + small.cert_pem())


def test_expired_certificate_is_refused() -> None:
    old = create_self_signed("CN=old", days=1, not_before=datetime.now(UTC) - timedelta(days=3))
    loaded = load_client_certificate(old.key_pem() + old.cert_pem())
    with pytest.raises(CertificateError, match="expired on"):
        check_validity(loaded)


def test_not_yet_valid_certificate_is_refused() -> None:
    future = create_self_signed("CN=future", not_before=datetime.now(UTC) + timedelta(days=2))
    loaded = load_client_certificate(future.key_pem() + future.cert_pem())
    with pytest.raises(CertificateError, match="not valid before"):
        check_validity(loaded)


def test_expiry_soon_is_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    soon = create_self_signed("CN=soon", days=10)
    loaded = load_client_certificate(soon.key_pem() + soon.cert_pem())
    with caplog.at_level(logging.WARNING, logger=certificates.__name__):
        check_validity(loaded)
        check_validity(loaded)
    warnings = [r for r in caplog.records if "expires in" in r.getMessage()]
    assert len(warnings) == 1
    assert loaded.sha1_thumbprint in warnings[0].getMessage()
    caplog.clear()
    check_validity(loaded, warning_days=5)
    assert not [r for r in caplog.records if "expires in" in r.getMessage()]


def test_parsing_happens_once_per_content(rsa_cert: SelfSignedCertificate, tmp_path: Path) -> None:
    data = rsa_cert.key_pem() + rsa_cert.cert_pem()
    first = load_client_certificate(data)
    again = load_client_certificate(bytes(data))
    assert again is first
    # Different password for the same bytes is a different cache entry, not a stale hit.
    encrypted = rsa_cert.key_pem("pw-number-1") + rsa_cert.cert_pem()
    assert load_client_certificate(encrypted, password="pw-number-1") is not first
