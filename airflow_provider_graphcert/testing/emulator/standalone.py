"""Run the emulator as a process: ``python -m airflow_provider_graphcert.testing.emulator.standalone``.

Also behind ``graphcert emulator``. It registers one tenant and one app (with the certificates
given), optionally writes an Airflow connection JSON and a ready file, and serves until SIGINT
or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from airflow_provider_graphcert.testing.emulator.entra.state import DEFAULT_TOKEN_LIFETIME_SECONDS, App, Tenant
from airflow_provider_graphcert.testing.emulator.seeds import SEEDS
from airflow_provider_graphcert.testing.emulator.server import LOOPBACK, GraphEmulator

DEFAULT_ROLES = "Sites.Read.All"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphcert emulator",
        description="Emulated Entra ID (+ Microsoft Graph) on 127.0.0.1 over HTTPS with a private test CA.",
    )
    parser.add_argument("--host", default=LOOPBACK, choices=(LOOPBACK,), help="always 127.0.0.1 (loopback only)")
    parser.add_argument("--port-authority", type=int, default=0, help="Entra ID port (0: any free port)")
    parser.add_argument("--port-graph", type=int, default=0, help="Graph port (0: any free port)")
    parser.add_argument("--port-files", type=int, default=0, help="download/upload host port (0: any free port)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="keep the test CA and token-signing key here (default: a temporary folder removed on exit)",
    )
    parser.add_argument(
        "--app-certificate",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a .cer/.pem certificate to register on the app (repeat for rotation)",
    )
    parser.add_argument("--roles", default=DEFAULT_ROLES, help=f"comma-separated app roles (default {DEFAULT_ROLES})")
    parser.add_argument("--tenant-id", help="fixed tenant GUID (default: a new one)")
    parser.add_argument("--tenant-domain", action="append", default=[], help="a domain name for the tenant")
    parser.add_argument("--client-id", help="fixed application (client) GUID (default: a new one)")
    parser.add_argument(
        "--subject-name-issuer", action="store_true", help="trust the certificates by subject name + issuer (SN+I)"
    )
    parser.add_argument("--token-lifetime", type=int, default=DEFAULT_TOKEN_LIFETIME_SECONDS, help="seconds")
    parser.add_argument(
        "--connection-file", type=Path, help="write the app's Airflow connection JSON here (add certificate_path)"
    )
    parser.add_argument("--ready-file", type=Path, help="written (JSON with the origins) once serving")
    parser.add_argument("--seed", choices=sorted(SEEDS), help="fill Graph with named content (e.g. demo)")
    parser.add_argument(
        "--persist",
        action="store_true",
        help="keep Graph content (sites, files, lists) in --state-dir: a restarted emulator serves the same "
        "content (and skips --seed); saved after seeding, every second while it changes, and at exit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # `graphcert emulator -- --flag` hands over the separator too.
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    return run_standalone(build_parser().parse_args(arguments))


def run_standalone(args: argparse.Namespace) -> int:
    if args.state_dir is None:
        with tempfile.TemporaryDirectory(prefix="graphcert-emulator-") as temporary:
            return _serve(args, Path(temporary))
    # Absolute: the ca_bundle written into the connection must work from any working directory.
    args.state_dir = args.state_dir.expanduser().resolve()
    return _serve(args, args.state_dir)


def _serve(args: argparse.Namespace, state_dir: Path) -> int:
    ports = (args.port_authority, args.port_graph, args.port_files)
    if args.persist and args.state_dir is None:
        print("graphcert emulator: --persist needs --state-dir (where the content is kept)", file=sys.stderr)
        return 2
    emulator = GraphEmulator(
        state_dir=state_dir, ports=ports, token_lifetime=args.token_lifetime, persist_graph=args.persist
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"graphcert emulator: cannot listen on 127.0.0.1 ports {ports}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # Handlers go in before the ready file exists: a script may signal as soon as it sees it.
    with _stop_signals() as stop:
        try:
            _announce(emulator, args)
            while not stop.wait(1.0):
                if args.persist:
                    emulator.save_graph_if_changed()
        finally:
            emulator.stop()
    return 0


def _announce(emulator: GraphEmulator, args: argparse.Namespace) -> None:
    """Register the tenant and app, then tell the caller (stdout, files) where everything is."""
    tenant = emulator.add_tenant(args.tenant_id, args.tenant_domain or None)
    if args.seed and not emulator.graph_restored:
        SEEDS[args.seed](emulator.graph)
    if args.persist:
        emulator.save_graph()
    app = _register_app(emulator, tenant, args)
    summary = _summary(emulator, tenant, app, args)
    if args.connection_file:
        _write_atomically(args.connection_file, emulator.connection_json(app))
    for name, value in summary.items():
        print(f"{name}: {value}")
    print("graphcert emulator is serving; stop it with Ctrl+C or SIGTERM.", flush=True)
    if args.ready_file:
        _write_atomically(args.ready_file, json.dumps(summary))


def _register_app(emulator: GraphEmulator, tenant: Tenant, args: argparse.Namespace) -> App:
    certificates = [Path(path).read_bytes() for path in args.app_certificate]
    roles = [role.strip() for role in str(args.roles).split(",") if role.strip()]
    return emulator.add_app(
        tenant,
        certificates or None,
        roles=roles,
        subject_name_issuer=args.subject_name_issuer,
        client_id=args.client_id,
    )


def _summary(emulator: GraphEmulator, tenant: Tenant, app: App, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "authority_host": emulator.authority_host,
        "graph_url": emulator.graph_url,
        "files_url": emulator.files_url,
        "ca_bundle": emulator.ca_bundle,
        "tenant_id": tenant.tenant_id,
        "client_id": app.client_id,
        "token_endpoint": emulator.token_endpoint(tenant),
        "scope": f"{emulator.graph_resource}/.default",
        "certificates": [item.thumbprint for item in app.certificates],
        "connection_file": str(args.connection_file) if args.connection_file else None,
        "pid": os.getpid(),
    }


def _write_atomically(path: Path, text: str) -> None:
    """Readers polling for the file must never see it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(path)


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM; the previous handlers come back afterwards."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
