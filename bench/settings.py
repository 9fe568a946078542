"""What the benchmark measures, and where it keeps things."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airflow_provider_graphcert.testing.emulator.seeds import (
    BENCH_LARGE_FILE_BYTES,
    BENCH_SMALL_FILE_BYTES,
    BENCH_SMALL_FILES,
    BENCH_USERS,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
# Downloads, uploads, the emulator's state and logs: large, never committed (.gitignore).
SCRATCH_DIR = RESULTS_DIR / "tmp"
VENVS_DIR = BENCH_DIR / ".venvs"
CLIENTS_DIR = BENCH_DIR / "clients"
DOC_PATH = ROOT / "docs" / "benchmarks.md"

AIRFLOW_VERSION = "3.3.2"
AZURE_PROVIDER = "apache-airflow-providers-microsoft-azure"


@dataclass(frozen=True)
class Scale:
    """Sizes and repetitions; ``full`` is what the issue asks for, ``quick`` a smoke test of the harness."""

    name: str
    small_files: int
    small_file_bytes: int
    large_file_bytes: int
    users: int
    graph_calls: int  # calls in one process for "token requests per 1,000 calls"
    tasks: int  # task runs in one worker for "token requests per task"
    cold_runs: int  # cold starts per client (after one unmeasured warm-up)
    transfer_runs: int  # repetitions of the bulk, large-file and listing workloads
    curl_parallelism: int = 8  # xargs -P for the parallel curl limit (and our default max_workers)
    # The bulk workload again with this delay before every answer (a network, as to a nearby region).
    latency_seconds: float = 0.010
    latency_runs: int = 1


FULL = Scale(
    name="full",
    small_files=BENCH_SMALL_FILES,
    small_file_bytes=BENCH_SMALL_FILE_BYTES,
    large_file_bytes=BENCH_LARGE_FILE_BYTES,
    users=BENCH_USERS,
    graph_calls=1000,
    tasks=100,
    cold_runs=5,
    transfer_runs=3,
)

QUICK = Scale(
    name="quick",
    small_files=200,
    small_file_bytes=BENCH_SMALL_FILE_BYTES,
    large_file_bytes=64 * 1024 * 1024,
    users=10_000,
    graph_calls=100,
    tasks=10,
    cold_runs=2,
    transfer_runs=1,
)

SCALES = {scale.name: scale for scale in (FULL, QUICK)}
