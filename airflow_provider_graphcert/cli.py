"""The `graphcert` command: certificates, assertions, connection checks and the local emulator."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.errors import GraphCertError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# Airflow loggers that print a traceback for a non-JSON extra, or a warning for our conn_type's "_".
_NOISY_CONNECTION_LOGGERS = (
    "airflow.sdk.definitions.connection",
    "airflow.models.connection",
    "airflow.models.connection.Connection",
)


def _password_from_env(name: str | None) -> str | None:
    # Passwords never go on the command line, where `ps` and shell history would keep them.
    if not name:
        return None
    value = os.environ.get(name)
    if value is None:
        raise GraphCertError(f"--password-env names {name}, but that environment variable is not set.")
    return value


def cmd_cert_new(args: argparse.Namespace) -> int:
    from airflow_provider_graphcert.auth.selfsigned import create_self_signed, write_private

    out = Path(args.out_dir)
    created = create_self_signed(args.subject, days=args.days, key_size=args.key_size)
    cer, pem = out / f"{args.name}.cer", out / f"{args.name}.pem"
    out.mkdir(parents=True, exist_ok=True)
    cer.write_bytes(created.cert_pem())
    password = _password_from_env(args.password_env)
    write_private(pem, created.key_pem(password) + created.cert_pem())
    written = [
        f"{cer}  (upload this to the app registration: Certificates & secrets)",
        f"{pem}  (key + cert)",
    ]
    if args.pfx:
        pfx = out / f"{args.name}.pfx"
        write_private(pfx, created.pfx(password))
        written.append(f"{pfx}  (PKCS#12)")
    print("\n".join(written))
    return _show_certificate(cer.read_bytes(), key_size=args.key_size)


def _show_certificate(data: bytes, key_size: int | None = None) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    public = cert.public_key()
    size = public.key_size if isinstance(public, rsa.RSAPublicKey) else key_size
    now = datetime.now(UTC)
    status = "valid" if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc else "NOT VALID NOW"
    print(f"Subject:            {cert.subject.rfc4514_string()}")
    print(f"Issuer:             {cert.issuer.rfc4514_string()}")
    print(f"Valid from:         {cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z")
    print(f"Valid until:        {cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z ({status})")
    print(f"Key:                {type(public).__name__.lstrip('_').replace('PublicKey', '')} {size} bits")
    print(f"SHA-1 thumbprint:   {cert.fingerprint(hashes.SHA1()).hex().upper()}")  # noqa: S303 - Azure's x5t
    print(f"SHA-256 thumbprint: {cert.fingerprint(hashes.SHA256()).hex().upper()}")
    return EXIT_OK


def cmd_cert_show(args: argparse.Namespace) -> int:
    from cryptography import x509

    from airflow_provider_graphcert.auth.certificates import load_client_certificate
    from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate

    data = Path(args.path).read_bytes()
    if b"-----BEGIN" in data and b"PRIVATE KEY-----" not in data:
        return _show_certificate(data)
    try:
        x509.load_der_x509_certificate(data)
        return _show_certificate(data)
    except ValueError:
        pass  # not a bare DER certificate: a PFX or PEM with its key
    loaded = load_client_certificate(data, password=_password_from_env(args.password_env), source=f"'{args.path}'")
    pem = SelfSignedCertificate(loaded.private_key, loaded.certificate).cert_pem()
    print(f"Private key:        RSA {loaded.key_size} bits, matches the certificate")
    return _show_certificate(pem)


def _connection_settings(conn_id: str) -> object:
    """The settings of an Airflow connection wherever it is stored: environment, secrets backend or metadata DB."""
    from airflow_provider_graphcert.settings import ConnectionSettings

    conn = _airflow_connection(conn_id)
    return ConnectionSettings.from_fields(login=conn.login, password=conn.password, extra=conn.extra, conn_id=conn_id)


def _airflow_connection(conn_id: str) -> Any:
    """Look a connection up as a task would, then in the metadata database as `airflow connections get` does.

    The Task SDK's lookup (what a hook uses) reads the metadata database only inside a task or an
    Airflow server; a command run on a worker or a laptop is neither. Airflow's own complaints
    about an extra that is not JSON (a traceback) are silenced: ConnectionSettings names the field.
    """
    from airflow.models.connection import Connection as MetadataConnection
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    quiet = [logging.getLogger(name) for name in _NOISY_CONNECTION_LOGGERS]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        try:
            return Connection.get(conn_id)
        except AirflowNotFoundException:
            pass
        try:
            return MetadataConnection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            home = os.environ.get("AIRFLOW_HOME", "~/airflow")
            raise GraphCertError(
                f"No Airflow connection '{conn_id}': not in the environment (AIRFLOW_CONN_{conn_id.upper()}), "
                f"the secrets backend or the metadata database of AIRFLOW_HOME={home}. Check the id with "
                "`airflow connections list`."
            ) from None
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _settings_from_args(args: argparse.Namespace) -> object:
    from airflow_provider_graphcert.settings import ConnectionSettings

    if args.conn_id:
        return _connection_settings(args.conn_id)
    if not (args.tenant_id and args.client_id and args.certificate):
        raise GraphCertError(
            "Give --conn-id CONN_ID, or all of --tenant-id, --client-id and --certificate (a .pem or .pfx)."
        )
    extra = {
        "tenant_id": args.tenant_id,
        "certificate_path": args.certificate,
        "key_path": args.key,
        "cloud": args.cloud,
        "authority_host": args.authority_host,
        "signing_algorithm": args.algorithm,
        "send_certificate_chain": args.x5c,
    }
    return ConnectionSettings.from_fields(
        login=args.client_id, password=_password_from_env(args.password_env), extra=extra
    )


def cmd_assertion(args: argparse.Namespace) -> int:
    from airflow_provider_graphcert.auth.assertion import inspect_assertion, mint_assertion
    from airflow_provider_graphcert.auth.credentials import CertificateCredential
    from airflow_provider_graphcert.settings import ConnectionSettings

    settings = _settings_from_args(args)
    assert isinstance(settings, ConnectionSettings)
    credential = settings.credential
    if not isinstance(credential, CertificateCredential):
        raise GraphCertError("graphcert assertion signs with a certificate; the connection has none.")
    provider = settings.token_provider()
    assertion = mint_assertion(
        credential.certificate(),
        client_id=settings.client_id,
        audience=provider.token_endpoint,
        algorithm=args.algorithm or credential.algorithm,
        include_chain=args.x5c or credential.include_chain,
        lifetime=args.lifetime,
    )
    expires = inspect_assertion(assertion).expires_at
    print(assertion)
    print(
        f"Assertion for app {settings.client_id}, audience {provider.token_endpoint}, "
        f"expires {expires:%Y-%m-%d %H:%M:%S}Z. Tools that take a pasted JWT must be given a new one "
        "before then.",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from airflow_provider_graphcert.diagnostics import describe_success
    from airflow_provider_graphcert.settings import ConnectionSettings

    try:
        settings = _connection_settings(args.conn_id)
    except GraphCertError as exc:
        print(f"Connection '{args.conn_id}' is not usable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    assert isinstance(settings, ConnectionSettings)
    print(f"Connection:     {args.conn_id}")
    print(f"Tenant:         {settings.tenant_id}")
    print(f"Client ID:      {settings.client_id}")
    print(f"Authority:      {settings.authority_host}")
    print(f"Graph:          {settings.graph_url}")
    print(f"Scope:          {settings.scope}")
    default_trust = "default (REQUESTS_CA_BUNDLE if set, else certifi's bundle)"
    print(f"TLS trust:      {settings.verify if isinstance(settings.verify, str) else default_trust}")
    try:
        token = settings.token_provider().request_token()
    except GraphCertError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print("OK: " + describe_success(settings, token.token))
    return EXIT_OK


def cmd_emulator(args: argparse.Namespace) -> int:
    from airflow_provider_graphcert.testing.emulator.standalone import main as emulator_main

    return int(emulator_main(args.emulator_args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphcert", description="Microsoft Graph with Entra ID certificate authentication."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    cert = sub.add_parser("cert", help="create or inspect certificates").add_subparsers(
        dest="cert_command", required=True
    )
    new = cert.add_parser("new", help="create a self-signed RSA certificate (.cer to upload, key as .pem/.pfx)")
    new.add_argument("--subject", default="CN=graphcert", help="certificate subject common name")
    new.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    new.add_argument("--key-size", type=int, default=2048, choices=(2048, 3072, 4096))
    new.add_argument("--out-dir", default=".", help="where to write the files (default .)")
    new.add_argument("--name", default="graphcert", help="file name stem (default graphcert)")
    new.add_argument("--pfx", action="store_true", help="also write a PKCS#12 .pfx")
    new.add_argument("--password-env", help="encrypt the key/pfx with the password in this environment variable")
    new.set_defaults(func=cmd_cert_new)
    show = cert.add_parser("show", help="subject, validity, key size and thumbprints of a certificate")
    show.add_argument("path", help=".cer/.pem/.pfx file")
    show.add_argument("--password-env", help="environment variable holding the pfx/key password")
    show.set_defaults(func=cmd_cert_show)

    assertion = sub.add_parser(
        "assertion", help="print a signed client assertion (for tools that only take a pasted JWT)"
    )
    assertion.add_argument("--conn-id", help="take everything from this Airflow connection")
    assertion.add_argument("--tenant-id")
    assertion.add_argument("--client-id")
    assertion.add_argument("--certificate", help=".pem or .pfx file")
    assertion.add_argument("--key", help="separate PEM key file")
    assertion.add_argument("--password-env", help="environment variable holding the pfx/key password")
    assertion.add_argument("--cloud")
    assertion.add_argument("--authority-host")
    assertion.add_argument("--algorithm", choices=("PS256", "RS256"))
    assertion.add_argument("--x5c", action="store_true", help="include the certificate chain")
    assertion.add_argument("--lifetime", type=int, default=600, help="seconds until it expires (default 600)")
    assertion.set_defaults(func=cmd_assertion)

    check = sub.add_parser("check", help="test an Airflow connection: get a token and explain it")
    check.add_argument("conn_id")
    check.set_defaults(func=cmd_check)

    emulator = sub.add_parser(
        "emulator", help="run the local Entra ID + Graph emulator (see `graphcert emulator -- --help`)"
    )
    emulator.add_argument("emulator_args", nargs=argparse.REMAINDER)
    emulator.set_defaults(func=cmd_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GraphCertError as exc:
        print(f"graphcert: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"graphcert: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
