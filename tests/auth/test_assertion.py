"""Assertions are minted the way Entra ID documents them, and pasted ones fail early and clearly."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from airflow_provider_graphcert.auth.assertion import mint_assertion
from airflow_provider_graphcert.auth.certificates import load_client_certificate
from airflow_provider_graphcert.auth.credentials import (
    AssertionFileCredential,
    CertificateCredential,
    CertificateMaterial,
    StaticAssertionCredential,
)
from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.errors import CertificateError, ClientAssertionError

CLIENT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "https://login.microsoftonline.com/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/oauth2/v2.0/token"


def _verify(token: str, cert: SelfSignedCertificate, algorithm: str) -> dict[str, object]:
    return jwt.decode(token, cert.certificate.public_key(), algorithms=[algorithm], audience=AUDIENCE)  # type: ignore[arg-type]


def test_default_is_ps256_with_sha256_thumbprint(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.key_pem() + rsa_cert.cert_pem())
    token = mint_assertion(loaded, client_id=CLIENT, audience=AUDIENCE)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "PS256", "typ": "JWT", "x5t#S256": loaded.x5t_s256}
    claims = _verify(token, rsa_cert, "PS256")
    assert claims["iss"] == claims["sub"] == CLIENT
    assert claims["aud"] == AUDIENCE
    now = time.time()
    assert claims["nbf"] == claims["iat"]
    assert abs(float(claims["iat"]) - now) < 5  # type: ignore[arg-type]
    assert float(claims["exp"]) - float(claims["iat"]) == 300  # type: ignore[arg-type]


def test_rs256_with_sha1_thumbprint_and_chain(rsa_cert: SelfSignedCertificate) -> None:
    loaded = load_client_certificate(rsa_cert.key_pem() + rsa_cert.cert_pem())
    token = mint_assertion(loaded, client_id=CLIENT, audience=AUDIENCE, algorithm="RS256", include_chain=True)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["x5t"] == loaded.x5t
    assert "x5t#S256" not in header
    assert header["x5c"] == loaded.x5c
    _verify(token, rsa_cert, "RS256")


def test_every_assertion_is_fresh(pem_file: Path) -> None:
    credential = CertificateCredential(CertificateMaterial(path=pem_file))
    first = credential.client_assertion(client_id=CLIENT, audience=AUDIENCE)
    second = credential.client_assertion(client_id=CLIENT, audience=AUDIENCE)
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


def test_rotated_certificate_file_is_picked_up(
    tmp_path: Path, rsa_cert: SelfSignedCertificate, other_rsa_cert: SelfSignedCertificate
) -> None:
    path = tmp_path / "rotating.pem"
    path.write_bytes(rsa_cert.key_pem() + rsa_cert.cert_pem())
    credential = CertificateCredential(CertificateMaterial(path=path))
    assert credential.certificate().certificate == rsa_cert.certificate
    path.write_bytes(other_rsa_cert.key_pem() + other_rsa_cert.cert_pem())
    assert credential.certificate().certificate == other_rsa_cert.certificate


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda d: d / "missing.pem", "does not exist"),
        (lambda d: d, "is a directory"),
    ],
)
def test_bad_certificate_paths(tmp_path: Path, make_path: object, message: str) -> None:
    credential = CertificateCredential(CertificateMaterial(path=make_path(tmp_path)))  # type: ignore[operator]
    with pytest.raises(CertificateError, match=message) as info:
        credential.client_assertion(client_id=CLIENT, audience=AUDIENCE)
    assert info.value.field == "certificate_path"


def _presigned(rsa_cert: SelfSignedCertificate, exp: float) -> str:
    return jwt.encode({"iss": CLIENT, "sub": CLIENT, "aud": AUDIENCE, "exp": exp}, rsa_cert.private_key, "RS256")


def test_valid_pasted_assertion_is_sent_as_is(rsa_cert: SelfSignedCertificate) -> None:
    token = _presigned(rsa_cert, time.time() + 600)
    assert StaticAssertionCredential(token + "\n").client_assertion(client_id=CLIENT, audience=AUDIENCE) == token


def test_expired_pasted_assertion_says_when_and_what_to_do(rsa_cert: SelfSignedCertificate) -> None:
    token = _presigned(rsa_cert, time.time() - 3 * 3600)
    with pytest.raises(ClientAssertionError) as info:
        StaticAssertionCredential(token).client_assertion(client_id=CLIENT, audience=AUDIENCE)
    message = str(info.value)
    assert "expired at" in message
    assert "3 h ago" in message
    assert "certificate_path" in message
    assert token not in message
    assert info.value.field == "client_assertion"


def test_garbage_pasted_assertion(rsa_cert: SelfSignedCertificate) -> None:
    with pytest.raises(ClientAssertionError, match="not a JWT"):
        StaticAssertionCredential("not-a-jwt").client_assertion(client_id=CLIENT, audience=AUDIENCE)


def test_assertion_file_is_re_read_for_every_request(tmp_path: Path, rsa_cert: SelfSignedCertificate) -> None:
    path = tmp_path / "token"
    credential = AssertionFileCredential(path)
    with pytest.raises(ClientAssertionError, match="does not exist"):
        credential.client_assertion(client_id=CLIENT, audience=AUDIENCE)
    first = _presigned(rsa_cert, time.time() + 600)
    path.write_text(first)
    assert credential.client_assertion(client_id=CLIENT, audience=AUDIENCE) == first
    second = _presigned(rsa_cert, time.time() + 900)
    path.write_text(second)
    assert credential.client_assertion(client_id=CLIENT, audience=AUDIENCE) == second
    path.write_text(_presigned(rsa_cert, time.time() - 60))
    with pytest.raises(ClientAssertionError, match="expired") as info:
        credential.client_assertion(client_id=CLIENT, audience=AUDIENCE)
    assert info.value.field == "client_assertion_file"
    path.write_text("  \n")
    with pytest.raises(ClientAssertionError, match="is empty"):
        credential.client_assertion(client_id=CLIENT, audience=AUDIENCE)
