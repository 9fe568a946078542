"""No key, password, certificate data, assertion or token ever shows up where people look.

Every operator and the sensor run with ``airflow tasks test`` (which masks) against the emulator,
with the credentials inline (an encrypted PEM with its password, a password-protected PFX). Then
the task logs, the command output, and the whole metadata database (XCom values, rendered
template fields, task instances) are searched for every secret, including every assertion the
emulator received and every access token it issued. ``graphcert`` is held to the same rule.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import airflow_env, fresh_airflow_home
from reliability_kit import content_for, tally

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.cli import main
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

pytestmark = [pytest.mark.airflow_e2e, pytest.mark.slow]

PASSWORD = "Pfx-and-key-password-7c1d"
LOGICAL_DATE = "2026-01-01"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
# (task, succeeds?, what its log must say) for every task of dags/reliability_every_operator.py.
TASKS = [
    ("graph_users", True, "Pushing xcom"),
    ("download", True, "Download to"),
    ("upload", True, "Upload to"),
    ("sync", True, "Sync to"),
    ("list_export", True, "Pushing xcom"),
    ("wait_for_report", True, "Found 1 matching file"),
    ("upload_conflict", False, "already exists and conflict_behavior is 'fail'"),
]
RUNNER = Path(__file__).parent / "airflow_tasks_test.py"


@dataclass
class Secrets:
    """Everything that must never appear, by kind."""

    values: dict[str, list[str]]

    def found_in(self, text: str) -> list[str]:
        hits = [f"{kind}: {value[:12]}..." for kind, values in self.values.items() for value in values if value in text]
        hits += [f"JWT: {match[:12]}..." for match in JWT.findall(text)]
        return hits


@dataclass
class World:
    emulator: GraphEmulator
    data: Path
    env: dict[str, str]
    pem_text: str
    pfx_text: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, rsa_cert: SelfSignedCertificate) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    outbox = data / "outbox"
    outbox.mkdir()
    for i in range(3):
        (outbox / f"out {i}.csv").write_bytes(content_for(f"out {i}", 2000))
    (outbox / "existing.csv").write_bytes(b"would overwrite\n")
    pem_text = (rsa_cert.key_pem(PASSWORD) + rsa_cert.cert_pem()).decode()
    pfx_text = base64.b64encode(rsa_cert.pfx(PASSWORD)).decode()
    with GraphEmulator() as emulator:
        site = emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")
        documents = site.add_library("Documents")
        for i in range(4):
            documents.put_file(f"Exports/part {i}.csv", content_for(f"part {i}", 3000))
        documents.put_file("Exports/report.csv", b"a,b\n1,2\n")
        documents.put_file("Inbox/existing.csv", b"already here\n")
        site.add_list(
            "Invoices", columns=["Title", "Amount"], items=[{"Title": f"INV-{i}", "Amount": i} for i in range(7)]
        )
        emulator.graph.add_users(25)
        tenant = emulator.add_tenant(domains=["contoso.onmicrosoft.com"])
        roles = ["Sites.ReadWrite.All", "User.Read.All"]
        app = emulator.add_app(tenant, rsa_cert.certificate, roles=roles, display_name="nightly-etl")
        connections = {
            "MSGRAPH_CERT_DEFAULT": {**emulator.connection(app, certificate_data=pem_text), "password": PASSWORD},
            "MSGRAPH_CERT_PFX": {**emulator.connection(app, certificate_data=pfx_text), "password": PASSWORD},
        }
        env = {
            **os.environ,
            "RELIABILITY_DATA_DIR": str(data),
            **{f"AIRFLOW_CONN_{name}": json.dumps(value) for name, value in connections.items()},
        }
        yield World(emulator, data, env, pem_text, pfx_text)


def _secrets(world: World) -> Secrets:
    records = world.emulator.state.token_requests.records()
    assertions = [r.client_assertion for r in records if r.client_assertion]
    tokens = {r.access_token for r in records if r.access_token}
    tokens |= {r.headers["authorization"].split()[-1] for r in world.emulator.requests.records("graph")}
    jwts = [*assertions, *tokens]
    return Secrets(
        {
            "password": [PASSWORD],
            "PEM line": [line for line in world.pem_text.splitlines() if line and not line.startswith("-----")],
            "PFX": [world.pfx_text, world.pfx_text[:40], world.pfx_text[-40:]],
            "assertion or token": jwts,
            "JWT signature": [jwt.rsplit(".", 1)[-1] for jwt in jwts],
        }
    )


def _database_text(home: Path) -> tuple[str, dict[str, int]]:
    """Every row of every table (XCom, rendered fields, task instances ...) as text, and row counts."""
    with sqlite3.connect(home / "airflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}  # noqa: S608
        return "\n".join(db.iterdump()), counts


def _run_tasks(world: World, template: Path, where: Path, tasks: list[str]) -> tuple[dict[str, int], Path]:
    """``airflow tasks test`` for each task (see airflow_tasks_test.py), in a private Airflow home."""
    home = fresh_airflow_home(template, where)
    result = subprocess.run(
        [sys.executable, str(RUNNER), str(home), "reliability_every_operator", LOGICAL_DATE, *tasks],
        env={**world.env, **airflow_env(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), home


def test_no_secret_in_logs_xcom_rendered_fields_or_errors_of_any_operator(
    world: World, migrated_airflow_home: Path, tmp_path: Path
) -> None:
    names = [task for task, _, _ in TASKS]
    # Two Airflow homes side by side (two cores); within each, one fresh process per task.
    with ThreadPoolExecutor(max_workers=2) as pool:
        groups = [
            pool.submit(_run_tasks, world, migrated_airflow_home, tmp_path / f"home-{i}", names[i::2]) for i in (0, 1)
        ]
        runs = [group.result() for group in groups]
    codes = {task: code for group_codes, _ in runs for task, code in group_codes.items()}
    secrets = _secrets(world)
    assert len(secrets.values["assertion or token"]) >= len(TASKS)  # every task fetched its own token
    found: dict[str, list[str]] = {}
    for task, succeeds, says in TASKS:
        home = next(home for group_codes, home in runs if task in group_codes)
        output = (home / f"{task}.out").read_text(errors="replace")
        # `airflow tasks test` exits 0 either way (Airflow 3.3); the task's final state says how it went.
        state = "new_state=success" if succeeds else "new_state=failed"
        assert codes[task] == 0 and state in output, f"{task} exited {codes[task]}:\n{output[-3000:]}"
        assert says in output, f"{task}:\n{output[-3000:]}"
        if hits := secrets.found_in(output):
            found[task] = hits
    scanned = {"xcom": 0, "rendered_task_instance_fields": 0}
    for _, home in runs:
        logs = "\n".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file())
        database, counts = _database_text(home)
        for table in scanned:
            scanned[table] += counts.get(table, 0)
        if hits := secrets.found_in(logs) + secrets.found_in(database):
            found[str(home.name)] = hits
    tally("secrets found", sum(len(hits) for hits in found.values()))
    assert not found
    # The scan really covered XCom values and rendered template fields.
    assert scanned["xcom"] >= 4 and scanned["rendered_task_instance_fields"] >= len(TASKS)
    # And the tasks really worked against the emulator.
    with (world.data / LOGICAL_DATE / "invoices.csv").open(encoding="utf-8") as handle:
        assert [row["Title"] for row in csv.DictReader(handle)] == [f"INV-{i}" for i in range(7)]
    assert (world.data / LOGICAL_DATE / "landing" / "report.csv").read_bytes() == b"a,b\n1,2\n"
    assert (world.data / "mirror" / "part 0.csv").exists()
    drive = world.emulator.graph.site_by_path("contoso.sharepoint.com", "/sites/Finance").default_drive
    assert drive.resolve("Inbound/out 0.csv").size == 2000
    assert drive.resolve("Inbox/existing.csv").blob.read_bytes() == b"already here\n"  # type: ignore[union-attr]


# -- the graphcert command ------------------------------------------------------------------------

GRAPHCERT = [sys.executable, "-m", "airflow_provider_graphcert.cli"]


def _graphcert(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRAPHCERT, *args], env=env or dict(os.environ), capture_output=True, text=True, timeout=120, check=False
    )


def test_graphcert_prints_no_key_or_token_unless_asked_and_writes_keys_0600(
    world: World, tmp_path: Path, rsa_cert: SelfSignedCertificate
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    # A key file left world-readable by someone else is still rewritten as owner-only.
    (keys / "etl.pem").write_text("old")
    (keys / "etl.pem").chmod(0o644)
    env = {**world.env, "ETL_PASSWORD": PASSWORD}
    made = _graphcert(
        "cert", "new", "--out-dir", str(keys), "--name", "etl", "--pfx", "--password-env", "ETL_PASSWORD", env=env
    )
    assert made.returncode == 0, made.stderr
    for secret in ("etl.pem", "etl.pfx"):
        assert stat.S_IMODE((keys / secret).stat().st_mode) == 0o600, secret
    written_key = (keys / "etl.pem").read_text()
    key_lines = [line for line in written_key.splitlines() if line and not line.startswith("-----")]
    shown = _graphcert("cert", "show", str(keys / "etl.pfx"), "--password-env", "ETL_PASSWORD", env=env)
    shown_pem = _graphcert("cert", "show", str(keys / "etl.pem"), "--password-env", "ETL_PASSWORD", env=env)
    checked = _graphcert("check", "msgraph_cert_default", env=env)
    refused = _graphcert("check", "msgraph_cert_empty", env={**env, "AIRFLOW_CONN_MSGRAPH_CERT_EMPTY": "{}"})
    asked = _graphcert("assertion", "--conn-id", "msgraph_cert_default", env=env)
    assert shown.returncode == shown_pem.returncode == checked.returncode == asked.returncode == 0
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "OK: Authenticated as app" in checked.stdout
    secrets = _secrets(world)
    secrets.values["new key line"] = key_lines
    quiet = [made, shown, shown_pem, checked, refused]
    hits = [hit for run in quiet for hit in secrets.found_in(run.stdout + run.stderr)]
    # Explicitly asked: the assertion on stdout, alone; nothing secret on stderr.
    assert len(JWT.findall(asked.stdout)) == 1 and asked.stdout.strip().count("\n") == 0
    hits += secrets.found_in(asked.stderr)
    tally("secrets found", len(hits))
    assert not hits


def test_error_messages_carry_no_secret(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failing with a secret in hand (wrong password, garbage inline data) says what is wrong, not the secret."""
    broken = {
        "wrong_password": {
            **json.loads(world.env["AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT"]),
            "password": "Wrong-" + PASSWORD,
        },
        "garbage_inline": {
            **json.loads(world.env["AIRFLOW_CONN_MSGRAPH_CERT_PFX"]),
            "extra": {
                **json.loads(world.env["AIRFLOW_CONN_MSGRAPH_CERT_PFX"])["extra"],
                "certificate_data": "%%" + world.pfx_text,
            },
        },
    }
    secrets = _secrets(world)
    secrets.values["wrong password"] = ["Wrong-" + PASSWORD]
    hits: list[str] = []
    for name, connection in broken.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(connection))
        assert main(["check", name]) == 1
        out, err = capsys.readouterr()
        assert err.strip()
        hits += secrets.found_in(out + err)
    tally("secrets found", len(hits))
    assert not hits
