"""Real Airflow processes: a masked task log, `airflow connections test` and `graphcert check`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

pytestmark = pytest.mark.airflow_e2e

BIN = Path(sys.executable).parent
DAGS = Path(__file__).parent / "dags"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated Airflow home (SQLite) shared by this module's subprocesses."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env


def _env(base: dict[str, str], connection: dict[str, object], **more: str) -> dict[str, str]:
    return {**base, "AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT": json.dumps(connection), **more}


def test_secrets_never_reach_a_masked_task_log(
    airflow_home: dict[str, str], graph_emulator: GraphEmulator, app: App, rsa_cert: SelfSignedCertificate
) -> None:
    password = "pfx-password-that-must-not-leak"
    pem_text = (rsa_cert.key_pem(password) + rsa_cert.cert_pem()).decode()
    connection = graph_emulator.connection(app, certificate_data=pem_text)
    connection["password"] = password
    result = subprocess.run(
        [str(BIN / "airflow"), "tasks", "test", "secret_probe", "leak_everything", "2026-01-01"],
        env=_env(airflow_home, connection),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    logs = "".join(p.read_text(errors="replace") for p in Path(airflow_home["AIRFLOW_HOME"]).rglob("*.log"))
    everything = output + logs
    assert result.returncode == 0, output[-3000:]
    assert "test_connection: True" in everything  # the task really ran and authenticated
    assert graph_emulator.state.token_requests.count(app) >= 1
    key_lines = [line for line in pem_text.splitlines() if line and not line.startswith("-----")]
    assert not JWT.findall(everything), "a JWT (token or assertion) reached the log"
    assert password not in everything
    assert not [line for line in key_lines if line in everything], "private key material reached the log"
    assert "***" in everything


def test_airflow_connections_test_succeeds_against_the_emulator(
    airflow_home: dict[str, str], graph_emulator: GraphEmulator, app: App, pem_file: Path
) -> None:
    connection = graph_emulator.connection(app, certificate_path=str(pem_file))
    result = subprocess.run(
        [str(BIN / "airflow"), "connections", "test", "msgraph_cert_default"],
        env=_env(airflow_home, connection, AIRFLOW__CORE__TEST_CONNECTION="Enabled"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout
    # The CLI prints no detail; the emulator proves our hook really asked for a token.
    assert graph_emulator.state.token_requests.count(app, succeeded=True) == 1


def test_graphcert_check_reports_success_and_failure(
    airflow_home: dict[str, str], graph_emulator: GraphEmulator, app: App, pem_file: Path, tmp_path: Path
) -> None:
    connection = graph_emulator.connection(app, certificate_path=str(pem_file))
    ok = subprocess.run(
        [str(BIN / "graphcert"), "check", "msgraph_cert_default"],
        env=_env(airflow_home, connection),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: Authenticated as app" in ok.stdout
    assert not JWT.findall(ok.stdout + ok.stderr)
    broken = graph_emulator.connection(app, certificate_path=str(tmp_path / "nope.pem"))
    bad = subprocess.run(
        [str(BIN / "graphcert"), "check", "msgraph_cert_default"],
        env=_env(airflow_home, broken),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "certificate_path" in bad.stderr and "does not exist" in bad.stderr
    assert "Traceback" not in bad.stderr
