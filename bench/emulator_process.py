"""The benchmark's emulator, in a process of its own: ``python -m bench.emulator_process``.

Seeds Graph with the ``bench`` seed (airflow_provider_graphcert.testing.emulator.seeds), registers
one tenant and one app, writes a ready file with everything the clients need, then answers one
command per stdin line so the harness can count what the clients really sent:

    stats        ->  {"token_requests": N, "requests": {"authority": N, "graph": N, "files": N}}
    latency 0.01 ->  every request waits 10 ms before its answer (the fault switchboard); 0 clears it

It stops at end of input (the harness closing the pipe) or on ``quit``. Clients, not the emulator,
are what is measured: running it apart keeps its CPU, GIL and memory out of their numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.auth.selfsigned import create_self_signed
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.seeds import (
    BENCH_LARGE_PATH,
    BENCH_SITE_PATH,
    BENCH_SMALL_FOLDER,
    BENCH_UPLOAD_FOLDER,
    DEMO_HOSTNAME,
    seed_bench,
)
from airflow_provider_graphcert.testing.emulator.server import LOOPBACK, GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

ROLES = ("Sites.ReadWrite.All", "User.Read.All")
# Long enough that no token expires during a run: "one token per process per token lifetime".
TOKEN_LIFETIME_SECONDS = 3600


class BenchGraphEmulator(GraphEmulator):
    """The emulator with its download/upload origin named ``localhost`` instead of 127.0.0.1.

    In Azure that origin is another host (contoso.sharepoint.com) than Graph's, so a client that
    attaches the token by host name (Kiota's ``allowed_hosts``) leaves it off pre-authenticated
    URLs; here all three origins share one address, and only a second name keeps that true.
    """

    @property
    def files_url(self) -> str:
        return super().files_url.replace(LOOPBACK, "localhost", 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_process")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--small-files", type=int, required=True)
    parser.add_argument("--small-file-bytes", type=int, required=True)
    parser.add_argument("--large-file-bytes", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    certificate = create_self_signed("graphcert-bench")
    pem = args.state_dir / "bench-app.pem"
    pem.write_bytes(certificate.key_pem() + certificate.cert_pem())
    pem.chmod(0o600)
    with BenchGraphEmulator(state_dir=args.state_dir, token_lifetime=TOKEN_LIFETIME_SECONDS) as emulator:
        seed_bench(
            emulator.graph,
            small_files=args.small_files,
            small_file_bytes=args.small_file_bytes,
            large_file_bytes=args.large_file_bytes,
            users=args.users,
        )
        tenant = emulator.add_tenant(domains=["contoso.onmicrosoft.com"])
        app = emulator.add_app(tenant, certificate.certificate, roles=ROLES, display_name="graphcert-bench")
        ready = _describe(emulator, app, pem)
        partial = args.ready_file.with_name(args.ready_file.name + ".partial")
        partial.write_text(json.dumps(ready, indent=2), encoding="utf-8")
        partial.replace(args.ready_file)
        _answer_commands(emulator, app)
    return 0


def _describe(emulator: GraphEmulator, app: App, pem: Path) -> dict[str, Any]:
    site = emulator.graph.site_by_path(DEMO_HOSTNAME, BENCH_SITE_PATH)
    drive: Drive = next(d for d in site.drives.values() if d.name == "Documents")
    small = drive.resolve(BENCH_SMALL_FOLDER)
    large = drive.resolve(BENCH_LARGE_PATH)
    return {
        "authority_host": emulator.authority_host,
        "graph_url": emulator.graph_url,
        "files_url": emulator.files_url,
        "ca_bundle": emulator.ca_bundle,
        "tenant_id": app.tenant_id,
        "client_id": app.client_id,
        "token_endpoint": emulator.token_endpoint(app.tenant_id),
        "scope": f"{emulator.graph_resource}/.default",
        "certificate_pem": str(pem),
        "certificate_sha1": app.certificates[0].thumbprint,
        "site_url": f"https://{DEMO_HOSTNAME}{BENCH_SITE_PATH}",
        "site_id": site.id,
        "library": "Documents",
        "drive_id": drive.id,
        "small_folder": BENCH_SMALL_FOLDER,
        "small_folder_id": small.id,
        "small_files": small.child_count,
        "large_path": BENCH_LARGE_PATH,
        "large_item_id": large.id,
        "large_size": large.size,
        "upload_folder": BENCH_UPLOAD_FOLDER,
        "users": emulator.graph.users.count,
        "connection": emulator.connection(app, certificate_path=str(pem)),
    }


def _answer_commands(emulator: GraphEmulator, app: App) -> None:
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            return
        if command.startswith("latency "):
            # Every request on every origin waits this long before it is answered (0: none).
            seconds = float(command.split()[1])
            emulator.faults.clear()
            if seconds > 0:
                emulator.faults.add(None, latency=seconds)
            print(json.dumps({"latency": seconds}), flush=True)
        elif command == "stats":
            stats = {
                "token_requests": emulator.state.token_requests.count(app),
                "requests": {
                    origin: len(emulator.requests.records(origin)) for origin in ("authority", "graph", "files")
                },
            }
            emulator.requests.clear()
            print(json.dumps(stats), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
