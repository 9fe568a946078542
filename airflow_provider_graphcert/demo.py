"""`make demo`: the whole story offline, against the embedded emulator.

1. make a certificate with `graphcert cert new` (what a user uploads to Azure),
2. start `graphcert emulator --seed demo` (a Finance site with reports, a list, users) with an app
   that trusts that certificate,
3. define the `msgraph_cert` connection the way a user would (AIRFLOW_CONN_... JSON),
4. run `graphcert check` through that Airflow connection,
5. run every example DAG with `airflow dags test` and show what was downloaded, exported and
   uploaded,
6. stop the emulator and leave nothing running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEMO_DIR = Path(".demo")
EMULATOR_START_TIMEOUT_SECONDS = 60
DEMO_ROLES = "Sites.ReadWrite.All,User.Read.All,Group.Read.All"
EXAMPLE_DAGS = Path(__file__).resolve().parent.parent / "example_dags"
LOGICAL_DATE = "2026-01-01"
DAG_ORDER = (
    "sharepoint_folder_to_local",
    "wait_for_sharepoint_file",
    "sharepoint_list_to_csv",
    "graph_users_export",
    "local_to_sharepoint",
    "sharepoint_to_object_storage",
)


def example_dag_ids() -> list[str]:
    """DAG_ORDER, then any example DAG it does not list yet (each file's DAG id is its name)."""
    found = sorted(p.stem for p in EXAMPLE_DAGS.glob("*.py") if not p.name.startswith("_"))
    return [*DAG_ORDER, *(dag_id for dag_id in found if dag_id not in DAG_ORDER)]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(
    command: Sequence[str], env: dict[str, str] | None = None, *, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a step; ``quiet`` keeps Airflow's long logs out of the way unless the step fails."""
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(list(command), env=env, text=True, capture_output=True, timeout=600)
    failed = result.returncode != 0 or "state=failed" in result.stdout + result.stderr
    if not quiet or failed:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    if failed:
        raise SystemExit(f"demo step failed (exit {result.returncode}): {' '.join(command)}")
    return result


def report(data: Path, env: dict[str, str]) -> None:
    reports = [p for p in (data / "reports").rglob("*") if p.is_file() and not p.name.startswith(".graphcert")]
    size = sum(p.stat().st_size for p in reports)
    print(f"   downloaded: {len(reports)} report files ({size / 1024:.0f} KiB) into {data / 'reports'}")
    for path in sorted((data / "inbox").glob("*.csv")):
        print(f"   downloaded: {path} (after the sensor saw it arrive)")
    for path in sorted((data / "directory").rglob("*.jsonl")):
        lines = sum(1 for _ in path.open(encoding="utf-8"))
        print(f"   exported:   {lines} records to {path}")
    store = data / "object-store" / "finance-reports"
    landed = [p for p in store.rglob("*.csv") if p.is_file()]
    if landed:
        print(f"   landed:     {len(landed)} report files in the object store file://{store} (sources archived)")
    for path in sorted((data / "lists").glob("*.csv")):
        rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
        print(f"   exported:   {rows} list items to {path}")
    # The uploads are on the emulated SharePoint: list them through the provider's own hook.
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_HOME"))})
    from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook

    outbox = f"https://contoso.sharepoint.com/sites/Finance/Shared Documents/Outbox/{LOGICAL_DATE}"
    for found in GraphCertHook().sharepoint.find_files(url=outbox):
        print(f"   uploaded:   Outbox/{LOGICAL_DATE}/{found['path']} ({found['size']} bytes)")


@contextmanager
def emulator(work: Path, certificate: Path) -> Iterator[dict[str, Any]]:
    ready = work / "emulator-ready.json"
    connection = work / "connection.json"
    command = [
        _bin("graphcert"),
        "emulator",
        "--",
        "--state-dir",
        str(work / "emulator"),
        "--app-certificate",
        str(certificate),
        "--roles",
        DEMO_ROLES,
        "--tenant-domain",
        "contoso.onmicrosoft.com",
        "--connection-file",
        str(connection),
        "--ready-file",
        str(ready),
        "--seed",
        "demo",
    ]
    print("$ " + " ".join(command) + " &", flush=True)
    log = (work / "emulator.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT_SECONDS
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the emulator did not start; see {work / 'emulator.log'}")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        info["connection"] = json.loads(connection.read_text())
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        print(f"\n==> emulator stopped (exit {process.returncode})", flush=True)


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    work = DEMO_DIR.resolve()
    work.mkdir(parents=True)
    step("1. A certificate for the app registration (the .cer goes to Azure, the .pem stays with you)")
    run(
        [
            _bin("graphcert"),
            "cert",
            "new",
            "--out-dir",
            str(work / "keys"),
            "--name",
            "demo",
            "--subject",
            "graphcert-demo",
        ]
    )
    pem = work / "keys" / "demo.pem"
    step("2. The emulated Entra ID + Graph, with an app that trusts demo.cer")
    with emulator(work, work / "keys" / "demo.cer") as info:
        print(f"   authority {info['authority_host']}, graph {info['graph_url']}, tenant {info['tenant_id']}")
        step("3. The Airflow connection, as a user defines it (certificate_path: no JWT pasted anywhere)")
        connection = info["connection"]
        connection["extra"]["certificate_path"] = str(pem)
        data = work / "data"
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(work / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT": json.dumps(connection),
            "AIRFLOW_VAR_GRAPHCERT_DATA_DIR": str(data),
        }
        print("AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT=" + json.dumps(connection, indent=2))
        step("4. graphcert check: a fresh assertion is signed, a token fetched and explained")
        run([_bin("graphcert"), "check", "msgraph_cert_default"], env=env)
        step("5. The example DAGs, run by Airflow itself (airflow dags test)")
        run([_bin("airflow"), "db", "migrate"], env=env, quiet=True)
        for dag_id in example_dag_ids():
            started_dag = time.monotonic()
            run([_bin("airflow"), "dags", "test", dag_id, LOGICAL_DATE], env=env, quiet=True)
            print(f"   {dag_id}: success in {time.monotonic() - started_dag:.1f} s", flush=True)
        step("6. What the DAGs produced")
        report(data, env)
    step(f"Demo finished in {time.monotonic() - started:.1f} s; files are in {DEMO_DIR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
