"""A production-shaped Airflow on this machine: PostgreSQL, Redis, api-server, scheduler,
dag-processor, triggerer and two Celery workers, every one a separate process on loopback.

Servers come from Debian (scripts/install-distributed.sh installs what is missing). Every wait is
bounded and a failure message carries the tail of each component's log.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from cryptography.fernet import Fernet

from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
T = TypeVar("T")

SITE_URL = "https://contoso.sharepoint.com/sites/Finance"
INBOX_URL = f"{SITE_URL}/Shared Documents/Inbox"
# Short-lived tokens make the per-process token rule visible within the suite: a token is
# renewed at half its lifetime, so the triggerer asks again every TOKEN_LIFETIME / 2 seconds.
TOKEN_LIFETIME_SECONDS = 120
WATCH_POLL_SECONDS = 2
DAGS = {
    REPO / "example_dags" / "on_sharepoint_upload.py",
    REPO / "example_dags" / "sharepoint_folder_to_local.py",
    Path(__file__).parent / "dags" / "deferred_wait.py",
}


@dataclass
class World:
    deployment: Deployment
    emulator: GraphEmulator
    app: App
    documents: Drive
    data_dir: Path
    started: float
    triggerer_starts: int = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install-distributed.sh")
    return Path(found[-1]).parent


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: CI runs as root, so drop to Debian's postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Deployment:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)
    api_url: str = ""
    _token: str | None = None

    # -- processes ------------------------------------------------------------------------------

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Component:
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                env=env or self.env or None,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,  # one process group per component: stopped as a whole
            )
        component = Component(name, process, log_path)
        self.components[name] = component
        return component

    def stop_component(self, name: str) -> Component:
        """SIGTERM one component (as a rolling deploy would) and wait for it to exit."""
        component = self.components.pop(name)
        os.killpg(component.process.pid, signal.SIGTERM)
        component.process.wait(timeout=60)
        return component

    def run(self, name: str, argv: list[str], bound: float = 300) -> None:
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            done = subprocess.run(
                argv, env=self.env or None, stdout=log, stderr=subprocess.STDOUT, timeout=bound, check=False
            )
        if done.returncode != 0:
            raise AssertionError(f"{name} failed ({done.returncode}):\n{log_path.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        for component in reversed(list(self.components.values())):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(component.process.pid, signal.SIGTERM)
        for component in reversed(list(self.components.values())):
            try:
                component.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(component.process.pid, signal.SIGKILL)
                component.process.wait(timeout=10)

    def report(self) -> str:
        """Each component's state and log tail: what a failing wait prints."""
        parts = []
        for component in self.components.values():
            state = "running" if component.process.poll() is None else f"exited {component.process.returncode}"
            parts.append(f"----- {component.name} ({state}, {component.log_path}) -----\n{component.tail()}")
        return "\n".join(parts)

    def wait_for(self, condition: Callable[[], T | None], what: str, bound: float = 120) -> T:
        """Poll ``condition`` until it returns something truthy; past the bound, fail with the logs."""
        deadline = time.monotonic() + bound
        while True:
            for component in self.components.values():
                if component.process.poll() is not None and component.name != "postgres-init":
                    raise AssertionError(f"{component.name} died while waiting for {what}\n{self.report()}")
            try:
                value = condition()
            except (httpx.TransportError, ConnectionError, TimeoutError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {bound:.0f} s waiting for {what}\n{self.report()}")
            time.sleep(0.5)

    # -- the REST API ---------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        headers: dict[str, str] = {}
        if self._token is None and not path.startswith("/auth/"):
            self._token = str(self.api("GET", "/auth/token")["access_token"])
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        response = httpx.request(method, self.api_url + path, json=body, headers=headers, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A run without a logical date, as an external system would start one."""
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, bound: float = 180) -> str:
        state = self.wait_for(
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            f"run {run_id} of {dag_id} to finish",
            bound,
        )
        if state != "success":
            raise AssertionError(
                f"run {run_id} of {dag_id} ended {state}\n{self.task_logs(dag_id, run_id)}\n{self.report()}"
            )
        return state

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        ti = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}")
        return ti.get("state")

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        entry = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"
            "/xcomEntries/return_value?deserialize=true",
        )
        return entry["value"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=start_date")["dag_runs"])

    def task_logs(self, dag_id: str, run_id: str) -> str:
        found = sorted((self.root / "home" / "logs").rglob(f"dag_id={dag_id}/run_id={run_id}/**/*.log"))
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in found)


@contextlib.contextmanager
def database_and_broker(deployment: Deployment) -> Iterator[tuple[str, str]]:
    """PostgreSQL and Redis on free loopback ports, data in a throwaway directory."""
    pg_bin = postgres_bin()
    data = deployment.root / "pg"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    pg_port = free_port()
    deployment.run(
        "postgres-initdb",
        _as_postgres_user([str(pg_bin / "initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8"]),
    )
    deployment.start(
        "postgres",
        _as_postgres_user(
            [
                str(pg_bin / "postgres"),
                "-D",
                str(data),
                "-p",
                str(pg_port),
                "-k",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                # A test database: durability buys nothing here and costs the shared disk.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ]
        ),
    )
    deployment.wait_for(
        lambda: (
            subprocess.run(
                [str(pg_bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(pg_port)], capture_output=True, check=False
            ).returncode
            == 0
        ),
        "PostgreSQL to accept connections",
        60,
    )
    deployment.run(
        "postgres-createdb",
        [str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "airflow", "airflow"],
    )
    redis_port = free_port()
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    deployment.start(
        "redis",
        [
            redis,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(deployment.root),
        ],
    )
    yield f"airflow@127.0.0.1:{pg_port}/airflow", f"redis://127.0.0.1:{redis_port}/0"


def airflow_env(root: Path, database: str, broker: str, api_port: int, extra: dict[str, str]) -> dict[str, str]:
    home = root / "home"
    (home / "dags").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": str(REPO),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            # Every component signs and checks the same task tokens.
            "AIRFLOW__API_AUTH__JWT_SECRET": Fernet.generate_key().decode(),
            "AIRFLOW__API__SECRET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "15",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            **extra,
        }
    )
    return env


def fresh_root() -> Path:
    """World-traversable, so PostgreSQL (dropped to its own user) can reach its data directory."""
    root = Path(tempfile.mkdtemp(prefix="graphcert-distributed-"))
    root.chmod(0o755)
    return root
