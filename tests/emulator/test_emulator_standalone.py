"""`python -m ...standalone` serves a reproducible tenant and app until it is told to stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from emulator_testkit import Signer, make_assertion

import airflow_provider_graphcert

TENANT_ID = "0c0ffee0-0000-4000-8000-000000000001"
CLIENT_ID = "0c0ffee0-0000-4000-8000-000000000002"
PROJECT_ROOT = Path(airflow_provider_graphcert.__file__).resolve().parent.parent


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return dict(json.loads(path.read_text()))
        if process.poll() is not None:
            raise AssertionError(f"emulator exited early ({process.returncode}): {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("emulator did not write its ready file in time")


def test_the_standalone_emulator_serves_a_token_and_stops_on_sigterm(tmp_path: Path, signer: Signer) -> None:
    certificate = tmp_path / "graphcert.cer"
    certificate.write_text(signer.certificate_pem)
    ready, connection = tmp_path / "ready.json", tmp_path / "conn.json"
    command = [
        sys.executable, "-m", "airflow_provider_graphcert.testing.emulator.standalone",
        "--state-dir", str(tmp_path / "state"), "--app-certificate", str(certificate),
        "--tenant-id", TENANT_ID, "--client-id", CLIENT_ID, "--roles", "Sites.Read.All,Files.Read.All",
        "--ready-file", str(ready), "--connection-file", str(connection),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = _wait_for(ready, process)
        endpoint = str(info["token_endpoint"])
        assertion = make_assertion(signer, client_id=CLIENT_ID, audience=endpoint)
        response = requests.post(
            endpoint,
            data={
                "client_id": CLIENT_ID,
                "scope": str(info["scope"]),
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
            verify=str(info["ca_bundle"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        saved = json.loads(connection.read_text())
        assert saved["login"] == CLIENT_ID and saved["extra"]["tenant_id"] == TENANT_ID
        assert saved["extra"]["authority_host"] == info["authority_host"]
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert f"client_id: {CLIENT_ID}" in stdout


def test_a_relative_state_dir_still_writes_an_absolute_ca_bundle_into_the_connection(tmp_path: Path) -> None:
    ready, connection = tmp_path / "ready.json", tmp_path / "conn.json"
    command = [
        sys.executable, "-m", "airflow_provider_graphcert.testing.emulator.standalone",
        "--state-dir", "state", "--ready-file", str(ready), "--connection-file", str(connection),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(ready, process)
        ca_bundle = Path(json.loads(connection.read_text())["extra"]["ca_bundle"])
        assert ca_bundle.is_absolute(), ca_bundle  # usable from any other directory (Airflow's, a worker's)
        assert ca_bundle == tmp_path / "state" / ca_bundle.name and ca_bundle.is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
