"""`make demo`: the whole story offline, against the embedded emulator.

1. make a certificate with `graphcert cert new` (what a user uploads to Azure),
2. start `graphcert emulator` with an app that trusts that certificate,
3. define the `msgraph_cert` connection the way a user would (AIRFLOW_CONN_... JSON),
4. run `graphcert check` through that Airflow connection,
5. stop the emulator and leave nothing running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEMO_DIR = Path(".demo")
EMULATOR_START_TIMEOUT_SECONDS = 60
DEMO_ROLES = "Sites.ReadWrite.All,User.Read.All,Group.Read.All"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(command: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(list(command), env=env, text=True, capture_output=True, timeout=600)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"demo step failed (exit {result.returncode}): {' '.join(command)}")
    return result


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
        env = {
            **os.environ,
            "AIRFLOW_HOME": tempfile.mkdtemp(prefix="graphcert-demo-airflow-"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT": json.dumps(connection),
        }
        shown = {**connection, "extra": {k: v for k, v in connection["extra"].items()}}
        print("AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT=" + json.dumps(shown, indent=2))
        step("4. graphcert check: a fresh assertion is signed, a token fetched and explained")
        run([_bin("graphcert"), "check", "msgraph_cert_default"], env=env)
    step(f"Demo finished in {time.monotonic() - started:.1f} s; files are in {DEMO_DIR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
