"""Every example DAG runs end to end in a real Airflow against the seeded emulator.

A whole DAG goes through `airflow dags test` (one process for all its tasks). A run without a
logical date, as the REST API and `airflow dags trigger` start one, goes through the reliability
suite's runner (tests/reliability/airflow_tasks_test.py), which triggers such a run and runs a task
in it. That runner pays Airflow's task start-up (mostly the in-process execution API, about 16 s
per task on a loaded 2-core machine) once per task, `airflow dags test` once per DAG, so for whole
DAGs `dags test` is the faster of the two.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.testing.emulator.graph.common import GraphError
from airflow_provider_graphcert.testing.emulator.seeds import DEMO_LIST_ITEMS, DEMO_REPORT_FILES, DEMO_USERS, seed_demo
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

pytestmark = [pytest.mark.airflow_e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
RUNNER = Path(__file__).resolve().parents[1] / "reliability" / "airflow_tasks_test.py"
LOGICAL_DATE = "2026-01-01"


class DemoWorld:
    def __init__(self, emulator: GraphEmulator, env: dict[str, str], data_dir: Path, home: Path) -> None:
        self.emulator = emulator
        self.env = env
        self.data_dir = data_dir
        self.home = home
        self.runs = 0

    def run(self, dag_id: str, logical_date: str = LOGICAL_DATE) -> str:
        """`airflow dags test`: every task of the DAG must succeed."""
        result = subprocess.run(
            [str(BIN / "airflow"), "dags", "test", dag_id, logical_date],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "state=failed" not in output, output[-4000:]
        return output

    def run_without_logical_date(self, dag_id: str, task: str) -> str:
        """Trigger a run with no logical date and run ``task`` in it; it must succeed."""
        self.runs += 1
        out_dir = self.home / "runs" / f"{self.runs}-{dag_id}"
        out_dir.mkdir(parents=True)
        result = subprocess.run(
            [sys.executable, str(RUNNER), str(out_dir), dag_id, "none", task],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        output = (out_dir / f"{task}.out").read_text(errors="replace")
        # `airflow tasks test` exits 0 even when the task fails (Airflow 3.3): read the final state.
        assert "new_state=success" in output, output[-4000:]
        return output


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, rsa_cert: SelfSignedCertificate) -> Iterator[DemoWorld]:
    home = tmp_path_factory.mktemp("airflow-home")
    data_dir = tmp_path_factory.mktemp("data")
    pem = tmp_path_factory.mktemp("keys") / "app.pem"
    pem.write_bytes(rsa_cert.key_pem() + rsa_cert.cert_pem())
    with GraphEmulator() as emulator:
        seed_demo(emulator.graph)
        tenant = emulator.add_tenant(domains=["contoso.onmicrosoft.com"])
        roles = ["Sites.ReadWrite.All", "User.Read.All", "Group.Read.All"]
        app = emulator.add_app(tenant, rsa_cert.certificate, roles=roles)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT": emulator.connection_json(app, certificate_path=str(pem)),
            "AIRFLOW_VAR_GRAPHCERT_DATA_DIR": str(data_dir),
        }
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        yield DemoWorld(emulator, env, data_dir, home)
        shutil.rmtree(home / "runs", ignore_errors=True)


def test_sharepoint_folder_to_local_pulls_everything_then_only_changes(world: DemoWorld) -> None:
    world.run("sharepoint_folder_to_local")
    reports = world.data_dir / "reports"
    csvs = list(reports.rglob("*.csv"))
    assert len(csvs) == DEMO_REPORT_FILES
    assert (reports / "README #1.txt").exists()
    assert (reports / "Zürich & Genève").is_dir()
    drive = world.emulator.graph.site_by_path("contoso.sharepoint.com", "/sites/Finance").default_drive
    drive.put_file("Reports/North/2026-01/report 000.csv", b"corrected\n")
    output = world.run("sharepoint_folder_to_local", logical_date="2026-01-02")
    assert "1 files pulled, 0 deleted" in output
    assert (reports / "North" / "2026-01" / "report 000.csv").read_bytes() == b"corrected\n"
    # A night with no change: the sync succeeds without an asset event, so nothing downstream runs.
    assert "0 files pulled, 0 deleted" in world.run("sharepoint_folder_to_local", logical_date="2026-01-03")
    events = _asset_events(world, f"file://{reports}")
    assert [event["downloaded"] for event in events] == [DEMO_REPORT_FILES + 1, 1]
    assert {event["source"] for event in events} == {
        "spo://contoso.sharepoint.com/sites/Finance/Shared%20Documents/Reports"
    }


def test_local_to_sharepoint_uploads_the_days_output(world: DemoWorld) -> None:
    world.run("local_to_sharepoint")
    drive = world.emulator.graph.site_by_path("contoso.sharepoint.com", "/sites/Finance").default_drive
    detail = drive.resolve(f"Outbox/{LOGICAL_DATE}/detail.bin")
    assert detail.size == 6 * 1024 * 1024
    local = world.data_dir / "outbox" / LOGICAL_DATE / "detail.bin"
    assert detail.blob.read_bytes() == local.read_bytes()
    summary = drive.resolve(f"Outbox/{LOGICAL_DATE}/summary.csv")
    assert summary.blob.read_bytes().startswith(b"region,amount")


def test_graph_users_export_writes_json_lines(world: DemoWorld) -> None:
    world.run("graph_users_export")
    out = world.data_dir / "directory" / LOGICAL_DATE
    users = (out / "users.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(users) == DEMO_USERS
    assert {"id", "displayName", "userPrincipalName"} <= set(json.loads(users[0]))
    assert len((out / "groups.jsonl").read_text(encoding="utf-8").splitlines()) == 40


def test_sharepoint_list_to_csv_exports_every_item(world: DemoWorld) -> None:
    world.run("sharepoint_list_to_csv")
    with (world.data_dir / "lists" / f"invoices-{LOGICAL_DATE}.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == DEMO_LIST_ITEMS
    assert rows[0]["Title"] == "INV-00001" and rows[0]["Status"] == "Paid"


def test_wait_for_sharepoint_file_then_process_it(world: DemoWorld) -> None:
    output = world.run("wait_for_sharepoint_file")
    assert (world.data_dir / "inbox" / f"daily-{LOGICAL_DATE}.csv").exists()
    assert "total amount: 30.0" in output


def test_a_run_without_a_logical_date_exports_under_the_day_it_ran(world: DemoWorld) -> None:
    # As the REST API and `airflow dags trigger` start a run in Airflow 3: no logical date, no `ds`.
    before = datetime.now(UTC).date()
    world.run_without_logical_date("graph_users_export", "export_users")
    days = {before.isoformat(), datetime.now(UTC).date().isoformat()}
    written = [world.data_dir / "directory" / day / "users.jsonl" for day in days]
    assert any(path.exists() for path in written), list((world.data_dir / "directory").iterdir())


def _asset_events(world: DemoWorld, uri: str) -> list[dict[str, object]]:
    """The extras of the asset events Airflow recorded for ``uri``, read from its metadata database."""
    query = (
        "import json, sys\n"
        "from sqlalchemy import select\n"
        "from airflow.models.asset import AssetEvent, AssetModel\n"
        "from airflow.utils.session import create_session\n"
        "with create_session() as session:\n"
        "    rows = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)"
        ".where(AssetModel.uri == sys.argv[1]).order_by(AssetEvent.id))\n"
        "    print(json.dumps([row.extra for row in rows]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", query, uri], env=world.env, capture_output=True, text=True, timeout=300, check=True
    )
    events: list[dict[str, object]] = json.loads(result.stdout.strip().splitlines()[-1])
    return events


def test_sharepoint_to_object_storage_lands_the_reports_and_archives_the_sources(world: DemoWorld) -> None:
    drive = world.emulator.graph.site_by_path("contoso.sharepoint.com", "/sites/Finance").default_drive
    reports = [
        path.lstrip("/")
        for path in (drive.path_of(item) for item in drive.descendants(drive.resolve("Reports")))
        if path.endswith(".csv")
    ]
    assert len(reports) == DEMO_REPORT_FILES
    sample = reports[0]
    expected = drive.resolve(sample).blob.read_bytes()
    output = world.run("sharepoint_to_object_storage")
    assert f"{DEMO_REPORT_FILES} files landed" in output
    store = world.data_dir / "object-store" / "finance-reports"
    assert len([p for p in store.rglob("*.csv") if p.is_file()]) == DEMO_REPORT_FILES
    relative = sample.removeprefix("Reports/")
    assert (store / relative).read_bytes() == expected
    archived = drive.resolve(f"Archive/20260101/{relative}")
    assert archived.blob.read_bytes() == expected
    with pytest.raises(GraphError, match="could not be found"):
        drive.resolve(sample)
    assert drive.resolve("Reports/README #1.txt")  # not matched by include: neither landed nor moved
    # A second night finds nothing new: the task succeeds and emits no asset event for the store.
    output = world.run("sharepoint_to_object_storage", logical_date="2026-01-02")
    assert "0 files landed" in output
    events = _asset_events(world, f"file://{store}")
    assert [event["downloaded"] for event in events] == [DEMO_REPORT_FILES]


def test_make_demo_runs_every_example_dag() -> None:
    from airflow_provider_graphcert.demo import example_dag_ids

    assert sorted(example_dag_ids()) == sorted(p.stem for p in EXAMPLE_DAGS.glob("*.py"))
    assert sorted(example_dag_ids()) == sorted(set(example_dag_ids()))
