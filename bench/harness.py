"""``python -m bench``: every workload, every client, one emulator, one run; JSON + docs/benchmarks.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from bench import report
from bench.curl_limit import CurlLimit
from bench.emulator import BenchEmulator
from bench.measure import ChildFailed, ChildResult, median, run_child
from bench.settings import CLIENTS_DIR, DOC_PATH, RESULTS_DIR, SCALES, SCRATCH_DIR, Scale
from bench.venvs import azure_python, ensure_azure_venv

OUR_CONN_ID = "msgraph_cert_bench"
AZURE_CONN_ID = "msgraph_bench"  # as in clients/azure_hook.py
# Variables that override a requests.Session's verify: msal-based clients need them unset.
CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class Client:
    key: str
    label: str
    python: str
    script: str
    env: dict[str, str]


@dataclass
class Run:
    """One benchmark run: the emulator, the clients and where their output goes."""

    scale: Scale
    emulator: BenchEmulator
    clients: dict[str, Client]
    curl: CurlLimit
    logs: Path
    upload_file: Path
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> dict[str, Any]:
        return self.emulator.info

    def out_dir(self, client: str, workload: str) -> Path:
        path = SCRATCH_DIR / "out" / client / workload
        shutil.rmtree(path, ignore_errors=True)
        return path

    def run(self, client_key: str, workload: str) -> ChildResult:
        client = self.clients[client_key]
        config = {
            **self.info,
            "conn_id": OUR_CONN_ID,
            "calls": self.scale.graph_calls,
            "tasks": self.scale.tasks,
            "client": client_key,
            "upload_file": str(self.upload_file),
            "out_dir": str(self.out_dir(client_key, workload)),
        }
        config_path = SCRATCH_DIR / f"config-{client_key}.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        argv = [client.python, str(CLIENTS_DIR / client.script), workload, str(config_path)]
        return run_child(argv, env=client.env, log=self.logs / f"{client_key}.log")

    def counted(self, measure: Callable[[], ChildResult]) -> tuple[ChildResult, dict[str, Any]]:
        """Run ``measure`` and return what the emulator saw meanwhile (token and other requests)."""
        before = self.emulator.stats()
        result = measure()
        after = self.emulator.stats()
        return result, {
            "token_requests": after["token_requests"] - before["token_requests"],
            "requests": after["requests"],
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full", help="full (the issue's sizes) or quick")
    parser.add_argument("--skip-azure", action="store_true", help="leave out the Azure provider (no venv build)")
    parser.add_argument(
        "--no-doc", action="store_true", help="write bench/results/<scale>.json only, not docs/benchmarks.md"
    )
    parser.add_argument(
        "--render", type=Path, metavar="RESULTS_JSON", help="only rewrite docs/benchmarks.md from a results file"
    )
    parser.add_argument(
        "--only",
        metavar="WORKLOADS",
        help=f"comma-separated subset to run ({', '.join(WORKLOAD_KEYS)}); implies --no-doc",
    )
    args = parser.parse_args(argv)
    selected = _selected_workloads(args.only)
    if args.only:
        args.no_doc = True
    if args.render:
        rendered = json.loads(args.render.read_text(encoding="utf-8"))
        rendered["goals"] = report.goals(rendered)
        report.update_doc(DOC_PATH, rendered)
        print(report.table(rendered))
        return 0
    scale = SCALES[args.scale]
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    logs = SCRATCH_DIR / "logs"
    shutil.rmtree(SCRATCH_DIR / "out", ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    _say(f"bench ({scale.name}): logs in {logs}")
    footprint = None
    if not args.skip_azure:
        _say("Azure provider venv (built once, then reused) ...")
        footprint = ensure_azure_venv(logs / "venv.log")
    upload_file = _upload_file(scale)
    load_before = os.getloadavg()
    with BenchEmulator(scale, SCRATCH_DIR, logs / "emulator.log") as emulator:
        _say(f"emulator seeded in {emulator.seed_seconds:.1f} s")
        run = _prepare(scale, emulator, logs, upload_file, with_azure=not args.skip_azure)
        for title, step in selected:
            _say(title)
            step_started = time.perf_counter()
            step(run)
            _say(f"  ({time.perf_counter() - step_started:.0f} s)")
    # Downloads are gigabytes; the logs stay for a look afterwards.
    shutil.rmtree(SCRATCH_DIR / "out", ignore_errors=True)
    results = {
        "meta": _meta(scale, stamp, started, load_before, emulator.seed_seconds),
        "footprint": footprint,
        **run.results,
    }
    results["goals"] = report.goals(results)
    # Only a whole full-scale record is worth keeping; a smoke test's or a subset's goes with the scratch files.
    kept = scale.name == "full" and not args.only
    out = (RESULTS_DIR if kept else SCRATCH_DIR) / f"{scale.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _say(f"results: {out}")
    if scale.name == "full" and not args.no_doc:
        report.update_doc(DOC_PATH, results)
        _say(f"table: {DOC_PATH}")
    print(report.table(results))
    _say(f"done in {time.perf_counter() - started:.0f} s")
    return 0


# -- setup -----------------------------------------------------------------------------------------


def _prepare(scale: Scale, emulator: BenchEmulator, logs: Path, upload_file: Path, *, with_azure: bool) -> Run:
    info = emulator.info
    machine_env = dict(os.environ)
    without_ca = {k: v for k, v in machine_env.items() if k not in CA_OVERRIDES}
    ours = dict(
        machine_env,  # REQUESTS_CA_BUNDLE stays set: our client passes verify on every request
        AIRFLOW_HOME=str(SCRATCH_DIR / "airflow-home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        **{f"AIRFLOW_CONN_{OUR_CONN_ID.upper()}": json.dumps(info["connection"])},
    )
    python = sys.executable
    clients = {
        "provider": Client("provider", "this provider", python, "provider.py", ours),
        "handwritten": Client("handwritten", "msal + requests", python, "handwritten.py", without_ca),
        "minimal": Client("minimal", "PyJWT + requests", python, "minimal_jwt.py", without_ca),
    }
    if with_azure:
        azure = dict(
            without_ca,
            AIRFLOW_HOME=str(SCRATCH_DIR / "airflow-home-azure"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            **{f"AIRFLOW_CONN_{AZURE_CONN_ID.upper()}": json.dumps(_azure_connection(info))},
        )
        clients["azure"] = Client("azure", "Azure provider", str(azure_python()), "azure_hook.py", azure)
    curl_dir = SCRATCH_DIR / "curl"
    shutil.rmtree(curl_dir, ignore_errors=True)
    curl_dir.mkdir(parents=True)
    curl = CurlLimit(info, _token(info), without_ca, curl_dir, logs / "curl.log")
    return Run(scale, emulator, clients, curl, logs, upload_file)


def _azure_connection(info: dict[str, Any]) -> dict[str, Any]:
    """The only extras with which KiotaRequestAdapterHook reaches a local authority and Graph."""
    return {
        "conn_type": "msgraph",
        "login": info["client_id"],
        "extra": {
            "tenant_id": info["tenant_id"],
            "certificate_path": info["certificate_pem"],
            "authority": info["authority_host"],
            "allowed_hosts": urlsplit(info["graph_url"]).hostname,
            "base_url": f"{info['graph_url']}/v1.0",
            "verify": info["ca_bundle"],
        },
    }


def _token(info: dict[str, Any]) -> str:
    """An access token for curl, fetched before any clock starts."""
    from airflow_provider_graphcert.settings import ConnectionSettings

    connection = info["connection"]
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
    return settings.token_provider().request_token().token


def _upload_file(scale: Scale) -> Path:
    """The local file every client uploads, made once per size (and read once so the cache is warm)."""
    from airflow_provider_graphcert.testing.emulator.seeds import PatternStream

    path = SCRATCH_DIR / "upload" / f"upload-{scale.large_file_bytes}.bin"
    if not path.exists() or path.stat().st_size != scale.large_file_bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            shutil.copyfileobj(PatternStream(scale.large_file_bytes, "upload"), handle, 1024 * 1024)
    with path.open("rb") as handle:
        while handle.read(16 * 1024 * 1024):
            pass
    return path


# -- workloads ---------------------------------------------------------------------------------------


def _try(run: Run, record: dict[str, Any], key: str, measure: Callable[[], dict[str, Any]]) -> None:
    """A client that cannot do a workload gets its error in the results instead of stopping the run."""
    try:
        record.setdefault(key, {}).update(measure())
    except ChildFailed as exc:
        record.setdefault(key, {})["error"] = _last_error(run.logs / f"{key}.log") or str(exc)


def _last_error(log: Path) -> str | None:
    if not log.exists():
        return None
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors or lines or [""])[-1].strip()[:300]


def cold_start(run: Run) -> None:
    """Process start to first Graph response; then, for the hooks, task start to first response."""
    cold: dict[str, Any] = {}
    workloads = [
        ("airflow-import", "provider", "airflow-import"),
        ("minimal", "minimal", "cold"),
        ("provider-core", "provider", "cold-core"),
        ("provider-hook", "provider", "cold-hook"),
        ("handwritten", "handwritten", "cold"),
        ("azure-hook", "azure", "cold"),
    ]
    workloads = [w for w in workloads if w[1] in run.clients]
    for repetition in range(run.scale.cold_runs + 1):  # the first round warms caches and AIRFLOW_HOME
        for key, client, workload in workloads:
            with contextlib.suppress(ChildFailed):
                result = run.run(client, workload)
                if repetition:
                    entry = cold.setdefault(key, {"runs": [], "peak_rss_bytes": 0})
                    entry["runs"].append(result.output["first_response_at"] - result.started)
                    entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], result.peak_rss_bytes)
        if repetition:
            curl = run.curl.cold()
            entry = cold.setdefault("curl", {"runs": [], "peak_rss_bytes": 0})
            entry["runs"].append(curl.wall_seconds)
            entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], curl.peak_rss_bytes)
    task: dict[str, Any] = {}
    hooks = [("provider-hook", "provider"), ("azure-hook", "azure")]
    for _ in range(run.scale.cold_runs):
        for key, client in hooks:
            if client in run.clients:
                with contextlib.suppress(ChildFailed):
                    task.setdefault(key, {"runs": []})["runs"].append(run.run(client, "task-start").output["seconds"])
    for group in (cold, task):
        for entry in group.values():
            entry["median_seconds"] = median(entry["runs"])
    run.results["cold_start"] = cold
    run.results["task_start"] = task


def tokens(run: Run) -> None:
    """Token requests per N Graph calls in one process, and per task over M tasks in one worker."""
    calls: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for client in ("provider", "handwritten", "azure"):
        if client not in run.clients:
            continue

        def count_calls(client: str = client) -> dict[str, Any]:
            result, seen = run.counted(lambda: run.run(client, "calls"))
            return {
                "calls": result.output["calls"],
                "seconds": result.output["seconds"],
                "token_requests": seen["token_requests"],
                "graph_requests": seen["requests"]["graph"],
            }

        def count_tasks(client: str = client) -> dict[str, Any]:
            result, seen = run.counted(lambda: run.run(client, "tasks"))
            return {
                "tasks": result.output["tasks"],
                "seconds": result.output["seconds"],
                "failed": result.output.get("failed", 0),
                "first_failure": result.output.get("first_failure") or None,
                "token_requests": seen["token_requests"],
                "token_requests_per_task": seen["token_requests"] / result.output["tasks"],
            }

        _try(run, calls, client, count_calls)
        _try(run, tasks, client, count_tasks)
    curl = run.curl.calls(run.scale.graph_calls)
    calls["curl"] = {"calls": run.scale.graph_calls, "seconds": curl.wall_seconds, "token_requests": 0}
    run.results["tokens"] = {"calls": calls, "tasks": tasks}


def _python_clients(run: Run) -> list[str]:
    return [c for c in ("provider", "handwritten", "azure") if c in run.clients]


def _transfer(
    run: Run,
    name: str,
    workload: str,
    curl_steps: dict[str, Callable[[], ChildResult]],
    *,
    runs: int | None = None,
) -> None:
    record: dict[str, Any] = {}
    for round_number in range(run.scale.transfer_runs if runs is None else runs):
        # Each round starts with another client: the first run after the previous round's writes
        # was often slower whoever it was, and ours always went first (issue 15's upload notes).
        clients = _python_clients(run)
        shift = round_number % len(clients)
        for client in clients[shift:] + clients[:shift]:
            if "error" in record.get(client, {}):
                continue
            _settle()
            emulator_cpu = run.emulator.cpu_seconds()
            try:
                result = run.run(client, workload)
            except ChildFailed as exc:
                record[client] = {"error": _last_error(run.logs / f"{client}.log") or str(exc)}
                continue
            entry = record.setdefault(client, _new_entry())
            entry["runs"].append(result.output["seconds"])
            entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], result.peak_rss_bytes)
            # The operation's own CPU (the child reports it), not the interpreter's start-up.
            entry["cpu_runs"].append(result.output.get("cpu_seconds", result.cpu_seconds))
            entry["emulator_cpu_runs"].append(run.emulator.cpu_seconds() - emulator_cpu)
            entry["check"] = {k: v for k, v in result.output.items() if k not in ("seconds", "cpu_seconds")}
        for key, step in curl_steps.items():
            _settle()
            emulator_cpu = run.emulator.cpu_seconds()
            result = step()
            entry = record.setdefault(key, _new_entry())
            entry["runs"].append(result.wall_seconds)
            entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], result.peak_rss_bytes)
            entry["cpu_runs"].append(result.cpu_seconds)
            entry["emulator_cpu_runs"].append(run.emulator.cpu_seconds() - emulator_cpu)
    for entry in record.values():
        if "runs" in entry:
            entry["median_seconds"] = median(entry["runs"])
            entry["median_cpu_seconds"] = median(entry["cpu_runs"])
            entry["median_emulator_cpu_seconds"] = median(entry["emulator_cpu_runs"])
    run.results[name] = record


def _settle() -> None:
    """Write back what earlier runs left dirty (GiBs after the large workloads), before the next clock starts."""
    os.sync()


def _new_entry() -> dict[str, Any]:
    return {"runs": [], "peak_rss_bytes": 0, "cpu_runs": [], "emulator_cpu_runs": []}


def small_files(run: Run) -> None:
    urls = _download_urls(run)
    target = SCRATCH_DIR / "out" / "curl" / "small"
    parallel = run.scale.curl_parallelism
    _transfer(
        run,
        "small_files",
        "small",
        {
            "curl": lambda: run.curl.download_many(urls, target, 1),
            "curl-parallel": lambda: run.curl.download_many(urls, target, parallel),
        },
    )
    run.results["small_files"]["meta"] = {
        "files": run.scale.small_files,
        "file_bytes": run.scale.small_file_bytes,
        "curl_parallelism": parallel,
    }


def small_files_latency(run: Run) -> None:
    """The bulk workload with a delay before every answer: where one-at-a-time clients really lose."""
    urls = _download_urls(run)
    target = SCRATCH_DIR / "out" / "curl" / "small"
    parallel = run.scale.curl_parallelism
    run.emulator.set_latency(run.scale.latency_seconds)
    try:
        _transfer(
            run,
            "small_files_latency",
            "small",
            {"curl-parallel": lambda: run.curl.download_many(urls, target, parallel)},
            runs=run.scale.latency_runs,
        )
    finally:
        run.emulator.set_latency(0)
    run.results["small_files_latency"]["meta"] = {
        "files": run.scale.small_files,
        "file_bytes": run.scale.small_file_bytes,
        "curl_parallelism": parallel,
        "latency_seconds": run.scale.latency_seconds,
        "runs": run.scale.latency_runs,
    }


def large_download(run: Run) -> None:
    info = run.info
    url = _item(run, f"drives/{info['drive_id']}/items/{info['large_item_id']}")["@microsoft.graph.downloadUrl"]
    target = SCRATCH_DIR / "out" / "curl" / "large" / "big.bin"
    _transfer(
        run,
        "large_download",
        "large-down",
        {
            "curl": lambda: run.curl.download_one(url, target, durable=False),
            "curl-durable": lambda: run.curl.download_one(url, target, durable=True),
        },
    )
    run.results["large_download"]["meta"] = {"bytes": info["large_size"]}
    target.unlink(missing_ok=True)


def large_upload(run: Run) -> None:
    remote = f"{run.info['upload_folder']}/curl/{run.upload_file.name}"
    fragments = SCRATCH_DIR / "upload" / f"fragments-{run.upload_file.stat().st_size}"
    _transfer(run, "large_upload", "large-up", {"curl": lambda: run.curl.upload(run.upload_file, fragments, remote)})
    run.results["large_upload"]["meta"] = {"bytes": run.upload_file.stat().st_size}


def listing(run: Run) -> None:
    pages = _page_links(run)
    _transfer(run, "listing", "listing", {"curl": lambda: run.curl.fetch_pages(pages)})
    run.results["listing"]["meta"] = {"items": run.info["users"], "pages": len(pages), "page_size": 999}


WORKLOADS: list[tuple[str, Callable[[Run], None]]] = [
    ("cold start: process start to first Graph response", cold_start),
    ("token requests: per 1,000 calls and per task", tokens),
    ("bulk: a folder of small files", small_files),
    ("bulk again, 10 ms before every answer", small_files_latency),
    ("one large file down", large_download),
    ("one large file up", large_upload),
    ("paged listing", listing),
]


# For --only: a short key per workload, in the order above.
WORKLOAD_KEYS = ("cold", "tokens", "small", "small-latency", "large-down", "large-up", "listing")


def _selected_workloads(only: str | None) -> list[tuple[str, Callable[[Run], None]]]:
    if not only:
        return WORKLOADS
    wanted = {key.strip() for key in only.split(",") if key.strip()}
    unknown = wanted - set(WORKLOAD_KEYS)
    if unknown:
        choices = ", ".join(WORKLOAD_KEYS)
        raise SystemExit(f"--only: unknown workload(s) {', '.join(sorted(unknown))}; choose from {choices}")
    return [step for key, step in zip(WORKLOAD_KEYS, WORKLOADS, strict=True) if key in wanted]


# -- what curl needs, fetched before its clock starts --------------------------------------------------


def _session(run: Run) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {run.curl.token}"
    session.verify = run.info["ca_bundle"]
    session.trust_env = False
    return session


def _item(run: Run, path: str) -> dict[str, Any]:
    with _session(run) as session:
        response = session.get(f"{run.info['graph_url']}/v1.0/{path}", timeout=60)
        response.raise_for_status()
        item: dict[str, Any] = response.json()
        return item


def _pages(run: Run, url: str) -> Iterator[dict[str, Any]]:
    with _session(run) as session:
        next_url: str | None = url
        while next_url:
            response = session.get(next_url, timeout=60)
            response.raise_for_status()
            page: dict[str, Any] = response.json()
            yield page
            next_url = page.get("@odata.nextLink")


def _download_urls(run: Run) -> list[tuple[str, str]]:
    info = run.info
    first = (
        f"{info['graph_url']}/v1.0/drives/{info['drive_id']}/items/{info['small_folder_id']}/children"
        "?$top=1000&$select=name,file,@microsoft.graph.downloadUrl"
    )
    return [
        (item["name"], item["@microsoft.graph.downloadUrl"])
        for page in _pages(run, first)
        for item in page["value"]
        if "file" in item
    ]


def _page_links(run: Run) -> list[str]:
    first = f"{run.info['graph_url']}/v1.0/users?$top=999"
    links = [first]
    for page in _pages(run, first):
        if page.get("@odata.nextLink"):
            links.append(page["@odata.nextLink"])
    return links


# -- the record ------------------------------------------------------------------------------------


def _meta(
    scale: Scale, stamp: str, started: float, load_before: tuple[float, ...], seed_seconds: float
) -> dict[str, Any]:
    return {
        "scale": scale.name,
        "started_utc": stamp,
        "duration_seconds": round(time.perf_counter() - started, 1),
        "emulator_seed_seconds": round(seed_seconds, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": _machine(),
        "versions": _versions(),
        "scale_detail": scale.__dict__,
    }


def _machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str] = {}
    for name in ("airflow-provider-graphcert", "apache-airflow", "requests", "PyJWT", "cryptography", "msal"):
        with contextlib.suppress(PackageNotFoundError):
            versions[name] = version(name)
    if azure_python().exists():
        probe = subprocess.run(
            [
                str(azure_python()),
                "-c",
                "import json; from importlib.metadata import version as v; print(json.dumps({n: v(n) for n in "
                "('apache-airflow-providers-microsoft-azure', 'msgraph-core', 'microsoft-kiota-http', "
                "'azure-identity', 'httpx')}))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0:
            versions.update(json.loads(probe.stdout))
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10)
    versions["curl"] = curl.stdout.split()[1] if curl.returncode == 0 else "?"
    return versions


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)
