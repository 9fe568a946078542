"""SharePoint to S3 against SharePoint to the local disk: ``python -m bench.object_storage``.

One large file (1 GiB by default) goes through the download operator's engine
(``SharePoint.download``) into a local folder and into an ``ObjectStoragePath`` on an
S3-compatible server (moto in server mode on 127.0.0.1), alternately, each in a fresh process
whose wall time and peak RSS GNU time reports (bench/measure.py); medians of ``--runs``. For
context, the same size is also written straight into moto with s3fs and with boto3's transfer
manager: moto keeps objects in Python and is the ceiling of any client here, not S3's speed.

Writes bench/results/object_storage.json. The emulator and moto run in processes of their own,
so their CPU and memory are not the client's. The machine is shared: the numbers are comparable
within one run, not across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.emulator import BenchEmulator
from bench.measure import RESULT_PREFIX, ChildResult, median, run_child
from bench.settings import QUICK, RESULTS_DIR, ROOT, SCRATCH_DIR

RESULT_PATH = RESULTS_DIR / "object_storage.json"
BUCKET = "bench"
MIB = 1024 * 1024
# moto accepts any credentials; these only keep s3fs and boto3 from looking for real ones.
MOTO_KEY = MOTO_SECRET = "bench"  # noqa: S105
WRITE_BLOCK_BYTES = 8 * MIB  # as sharepoint/landing.py writes to a store
CHILD_TIMEOUT_SECONDS = 900.0
# Proxies set on user machines must not capture the loopback S3 endpoint.
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")

# -- the measured children ----------------------------------------------------------------------


def _child_download(config: dict[str, Any], target: str) -> dict[str, Any]:
    from airflow_provider_graphcert.graph.client import GraphClient
    from airflow_provider_graphcert.settings import ConnectionSettings
    from airflow_provider_graphcert.sharepoint.service import SharePoint

    connection = config["connection"]
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
    client = GraphClient(tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify)
    destination: Any
    if target == "s3":
        import s3fs  # type: ignore[import-untyped]
        from airflow.sdk import ObjectStoragePath
        from airflow.sdk.io import attach

        fs = s3fs.S3FileSystem(key=MOTO_KEY, secret=MOTO_SECRET, endpoint_url=config["s3_endpoint"])
        attach(protocol="s3", conn_id="bench_s3", fs=fs)
        destination = ObjectStoragePath(f"s3://bench_s3@{BUCKET}/{config['prefix']}")
    else:
        destination = config["local_dir"]
    rss_before = _reset_peak_rss()
    started = time.perf_counter()
    summary = SharePoint(client).download(
        destination,
        site_url=config["site_url"],
        library=config["library"],
        path=config["large_path"],
        incremental=False,
    )
    seconds = time.perf_counter() - started
    client.close()
    return {"seconds": seconds, "bytes": summary["bytes"], "transfer_rss_growth": _peak_rss() - rss_before}


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return 0


def _reset_peak_rss() -> int:
    """Restart the peak from the current RSS (Linux: clear_refs 5): what the transfer adds, not the imports."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _peak_rss() -> int:
    return _status_bytes("VmHWM")


def _child_moto_raw(config: dict[str, Any], how: str) -> dict[str, Any]:
    size = int(config["bytes"])
    key = f"{config['prefix']}/raw-{how}.bin"
    block = os.urandom(WRITE_BLOCK_BYTES)
    if how == "s3fs":
        import s3fs

        fs = s3fs.S3FileSystem(key=MOTO_KEY, secret=MOTO_SECRET, endpoint_url=config["s3_endpoint"])
        started = time.perf_counter()
        with fs.open(f"{BUCKET}/{key}", "wb", block_size=WRITE_BLOCK_BYTES) as remote:
            for offset in range(0, size, WRITE_BLOCK_BYTES):
                remote.write(block[: min(WRITE_BLOCK_BYTES, size - offset)])
        return {"seconds": time.perf_counter() - started, "bytes": size}
    import boto3  # type: ignore[import-untyped]
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

    client = boto3.client(
        "s3",
        endpoint_url=config["s3_endpoint"],
        aws_access_key_id=MOTO_KEY,
        aws_secret_access_key=MOTO_SECRET,
        region_name="us-east-1",
    )
    source = Path(config["local_file"])
    started = time.perf_counter()
    client.upload_file(str(source), BUCKET, key, Config=TransferConfig(multipart_chunksize=WRITE_BLOCK_BYTES))
    return {"seconds": time.perf_counter() - started, "bytes": source.stat().st_size}


def _child(argv: Sequence[str]) -> int:
    kind, variant, config_path = argv
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    result = _child_download(config, variant) if kind == "download" else _child_moto_raw(config, variant)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def _moto_server() -> int:
    """Serve S3 on 127.0.0.1 (a free port, printed) until stdin closes."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(json.dumps({"endpoint": f"http://{host}:{port}"}), flush=True)
    sys.stdin.read()
    server.stop()
    return 0


# -- the harness ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _moto(log: Path, env: dict[str, str]) -> Iterator[str]:
    with log.open("ab") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.object_storage", "moto-server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
            cwd=ROOT,
        )
    try:
        assert process.stdout is not None
        yield str(json.loads(process.stdout.readline())["endpoint"])
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _empty_bucket(endpoint: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(key=MOTO_KEY, secret=MOTO_SECRET, endpoint_url=endpoint, skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    for key in fs.find(BUCKET):
        fs.rm_file(key)


def _run_row(run: ChildResult) -> dict[str, float]:
    row = {
        "transfer_seconds": round(run.output["seconds"], 3),
        "process_seconds": round(run.wall_seconds, 3),
        "peak_rss_mib": round(run.peak_rss_bytes / MIB, 1),
    }
    if "transfer_rss_growth" in run.output:
        row["transfer_peak_rss_growth_mib"] = round(run.output["transfer_rss_growth"] / MIB, 1)
    return row


def _summary(runs: list[ChildResult]) -> dict[str, Any]:
    size = runs[0].output["bytes"]
    seconds = median([run.output["seconds"] for run in runs])
    return {
        "bytes": size,
        "runs": [_run_row(r) for r in runs],
        "median_transfer_seconds": round(seconds, 3),
        "median_mib_per_second": round(size / MIB / seconds, 1),
        "median_peak_rss_mib": round(median([r.peak_rss_bytes for r in runs]) / MIB, 1),
        **(
            {
                "median_transfer_peak_rss_growth_mib": round(
                    median([r.output["transfer_rss_growth"] for r in runs]) / MIB, 1
                )
            }
            if "transfer_rss_growth" in runs[0].output
            else {}
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["child"]:
        return _child(arguments[1:])
    if arguments[:1] == ["moto-server"]:
        return _moto_server()
    parser = argparse.ArgumentParser(prog="python -m bench.object_storage")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args(arguments)
    size = options.size_mib * MIB
    work = SCRATCH_DIR / "object_storage"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "bench.log"
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    scale = replace(QUICK, name="object_storage", small_files=1, small_file_bytes=1024, large_file_bytes=size, users=1)
    started = time.time()
    results: dict[str, Any] = {}
    with BenchEmulator(scale, work, log) as emulator, _moto(log, env) as endpoint:
        info = emulator.info
        local_dir = work / "local"
        config = {
            "connection": info["connection"],
            "site_url": info["site_url"],
            "library": info["library"],
            "large_path": info["large_path"],
            "s3_endpoint": endpoint,
            "local_dir": str(local_dir),
            "local_file": str(local_dir / Path(info["large_path"]).name),
            "bytes": size,
        }
        config_path = work / "config.json"

        def measure(kind: str, variant: str, prefix: str) -> ChildResult:
            config_path.write_text(json.dumps({**config, "prefix": prefix}), encoding="utf-8")
            command = [sys.executable, "-m", "bench.object_storage", "child", kind, variant, str(config_path)]
            result = run_child(command, env=env, cwd=ROOT, log=log, timeout=CHILD_TIMEOUT_SECONDS)
            _say(f"{kind} {variant}: {result.output} peak RSS {result.peak_rss_bytes / MIB:.0f} MiB")
            return result

        _empty_bucket(endpoint)
        local_runs: list[ChildResult] = []
        s3_runs: list[ChildResult] = []
        for run in range(options.runs):  # alternated, so that a busy moment of the machine hits both
            shutil.rmtree(local_dir, ignore_errors=True)
            local_runs.append(measure("download", "local", f"run{run}"))
            s3_runs.append(measure("download", "s3", f"run{run}"))
            _empty_bucket(endpoint)
        raw: dict[str, list[ChildResult]] = {"s3fs": [], "boto3": []}
        for run in range(options.runs):
            for how, runs in raw.items():
                runs.append(measure("moto-raw", how, f"raw{run}"))
                _empty_bucket(endpoint)
        results = {
            "sharepoint_to_local_disk": _summary(local_runs),
            "sharepoint_to_s3_moto": _summary(s3_runs),
            "moto_raw_put_s3fs": _summary(raw["s3fs"]),
            "moto_raw_put_boto3": _summary(raw["boto3"]),
        }
    shutil.rmtree(work / "local", ignore_errors=True)
    document = {
        "meta": {
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_seconds": round(time.time() - started, 1),
            "file_bytes": size,
            "runs": options.runs,
            "cores": os.cpu_count(),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0],
            "s3_server": "moto (ThreadedMotoServer) on 127.0.0.1, in its own process",
        },
        **results,
    }
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    _say(f"wrote {RESULT_PATH}")
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
