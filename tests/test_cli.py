"""The graphcert command as a user types it."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from airflow_provider_graphcert.auth.certificates import load_client_certificate
from airflow_provider_graphcert.cli import main

GRAPHCERT = str(Path(sys.executable).parent / "graphcert")
TENANT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT = "11111111-2222-3333-4444-555555555555"


def test_cert_new_writes_the_cer_to_upload_and_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    result = subprocess.run(
        [GRAPHCERT, "cert", "new", "--out-dir", str(tmp_path), "--name", "etl", "--pfx", "--subject", "CN=etl"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    cer, pem, pfx = tmp_path / "etl.cer", tmp_path / "etl.pem", tmp_path / "etl.pfx"
    assert b"PRIVATE KEY" not in cer.read_bytes()
    for secret in (pem, pfx):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    loaded = load_client_certificate(pem.read_bytes())
    assert loaded.certificate == x509.load_pem_x509_certificate(cer.read_bytes())
    assert loaded.subject == "CN=etl"
    assert loaded.sha1_thumbprint in result.stdout
    assert "PRIVATE" not in result.stdout


def test_cert_new_encrypts_with_a_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ETL_KEY_PASSWORD", "correct-horse-battery")
    assert main(["cert", "new", "--out-dir", str(tmp_path), "--pfx", "--password-env", "ETL_KEY_PASSWORD"]) == 0
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "graphcert.pem").read_bytes()
    assert main(["cert", "show", str(tmp_path / "graphcert.pfx"), "--password-env", "ETL_KEY_PASSWORD"]) == 0
    shown = capsys.readouterr().out
    assert "matches the certificate" in shown and "SHA-256 thumbprint" in shown
    assert "correct-horse-battery" not in shown


def test_cert_show_of_a_missing_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cert", "show", str(tmp_path / "nope.cer")]) == 1
    err = capsys.readouterr().err
    assert "No such file" in err and "nope.cer" in err


def test_assertion_for_tools_that_take_a_pasted_jwt(pem_file: Path) -> None:
    result = subprocess.run(
        [
            GRAPHCERT,
            "assertion",
            "--tenant-id",
            TENANT,
            "--client-id",
            CLIENT,
            "--certificate",
            str(pem_file),
            "--lifetime",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = result.stdout.strip()
    cert = load_client_certificate(pem_file.read_bytes())
    audience = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    claims = jwt.decode(token, cert.certificate.public_key(), algorithms=["PS256"], audience=audience)  # type: ignore[arg-type]
    assert claims["iss"] == CLIENT
    assert claims["exp"] - claims["iat"] == 120
    assert "expires" in result.stderr and token not in result.stderr


def test_assertion_with_a_bad_client_id_names_the_field(pem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["assertion", "--tenant-id", TENANT, "--client-id", "my-app", "--certificate", str(pem_file)])
    assert code == 1
    assert "Client ID (login) 'my-app' is not a GUID" in capsys.readouterr().err
