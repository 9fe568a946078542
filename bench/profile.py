"""``python -m bench.profile``: one emulator, a few workloads, interleaved runs, optional py-spy profiles.

For tuning, not for the record (``python -m bench`` is that): it prints the median seconds and peak
RSS of each client, and with ``--py-spy`` writes a speedscope profile of each run of ours
(``bench/results/tmp/profiles/``; open it at https://www.speedscope.app). py-spy is a bench-only
tool: ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import harness
from bench.emulator import BenchEmulator
from bench.harness import Run, _prepare, _upload_file
from bench.measure import ChildResult, median
from bench.settings import SCALES, SCRATCH_DIR

PROFILES_DIR = SCRATCH_DIR / "profiles"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("workloads", help="comma-separated client workloads: small, large-down, large-up, listing")
    parser.add_argument(
        "--clients",
        default="provider,handwritten",
        help="comma-separated: provider, provider-base (with --baseline), handwritten, curl, curl-parallel, "
        "curl-durable",
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer (the 10 ms variant)")
    parser.add_argument("--py-spy", action="store_true", help="profile each run of ours (native frames off)")
    parser.add_argument(
        "--cpu", action="store_true", help="profile the CPU of each run of ours, all threads (yappi), to a text file"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run ours from another checkout (e.g. `git archive` of the commit before), as client provider-base",
    )
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    logs = SCRATCH_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    PROFILES_DIR.mkdir(parents=True, exist_ok=True)
    with BenchEmulator(scale, SCRATCH_DIR, logs / "emulator.log") as emulator:
        run = _prepare(scale, emulator, logs, _upload_file(scale), with_azure=False)
        if args.baseline is not None:
            ours = run.clients["provider"]
            env = dict(ours.env, PYTHONPATH=str(args.baseline.resolve()))
            run.clients["provider-base"] = dataclasses.replace(ours, key="provider-base", env=env)
        emulator.set_latency(args.latency)
        for workload in args.workloads.split(","):
            _measure(run, workload, args.clients.split(","), args.runs, profile="cpu" if args.cpu else args.py_spy)
    shutil.rmtree(SCRATCH_DIR / "out", ignore_errors=True)
    return 0


def _curl(run: Run, workload: str, client: str) -> ChildResult:
    """curl's forms of a workload (what curl needs is prepared before its clock, as in the harness)."""
    if workload == "small":
        target = SCRATCH_DIR / "out" / "curl" / "small"
        parallel = run.scale.curl_parallelism if client == "curl-parallel" else 1
        return run.curl.download_many(harness._download_urls(run), target, parallel)
    if workload == "listing":
        return run.curl.fetch_pages(harness._page_links(run))
    if workload == "large-down":
        info = run.info
        item = harness._item(run, f"drives/{info['drive_id']}/items/{info['large_item_id']}")
        target = SCRATCH_DIR / "out" / "curl" / "large" / "big.bin"
        return run.curl.download_one(item["@microsoft.graph.downloadUrl"], target, durable=client == "curl-durable")
    if workload == "large-up":
        remote = f"{run.info['upload_folder']}/curl/{run.upload_file.name}"
        fragments = SCRATCH_DIR / "upload" / f"fragments-{run.upload_file.stat().st_size}"
        return run.curl.upload(run.upload_file, fragments, remote)
    raise SystemExit(f"no curl form of {workload} here; use python -m bench --only")


def _measure(run: Run, workload: str, clients: list[str], runs: int, *, profile: bool | str) -> None:
    seconds: dict[str, list[float]] = {client: [] for client in clients}
    rss: dict[str, int] = dict.fromkeys(clients, 0)
    for number in range(runs):
        shift = number % len(clients)
        for client in clients[shift:] + clients[:shift]:
            harness._settle()
            if client.startswith("curl"):
                result = _curl(run, workload, client)
                seconds[client].append(result.wall_seconds)
                rss[client] = max(rss[client], result.peak_rss_bytes)
                continue
            if profile == "cpu" and client == "provider":
                result = _cpu_profiled(run, client, workload, PROFILES_DIR / f"{workload}-{number}.cpu.txt")
            elif profile and client == "provider":
                output = PROFILES_DIR / f"{workload}-{number}.speedscope.json"
                result = _profiled(run, client, workload, output)
            else:
                result = run.run(client, workload)
            seconds[client].append(result.output["seconds"])
            extra = {k: v for k, v in result.output.items() if k != "seconds"}
            print(f"  {workload} {client} run {number}: {result.output['seconds']:.2f} s {extra}")
            rss[client] = max(rss[client], result.peak_rss_bytes)
    for client in clients:
        runs_text = ", ".join(f"{s:.2f}" for s in seconds[client])
        middle = median(seconds[client])
        print(f"{workload:10} {client:12} median {middle:.3f} s [{runs_text}] {rss[client] / 1e6:.0f} MB")
    sys.stdout.flush()


def _profiled(run: Run, client: str, workload: str, output: Path) -> ChildResult:
    """The harness's own run of a client, with py-spy in front of its command line."""
    real_run_child = harness.run_child
    py_spy = str(Path(sys.executable).with_name("py-spy"))

    def under_py_spy(argv: Sequence[str], **kwargs: Any) -> ChildResult:
        recorder = [py_spy, "record", "--rate", "250", "--format", "speedscope", "-o", str(output), "--"]
        return real_run_child([*recorder, *argv], **kwargs)

    harness.run_child = under_py_spy
    try:
        return run.run(client, workload)
    finally:
        harness.run_child = real_run_child


def _cpu_profiled(run: Run, client: str, workload: str, output: Path) -> ChildResult:
    """The harness's own run of a client under yappi's CPU clock (slower: compare functions, not totals)."""
    real_run_child = harness.run_child
    wrapper = str(Path(__file__).with_name("cpu_profile_child.py"))

    def under_yappi(argv: Sequence[str], **kwargs: Any) -> ChildResult:
        python, *rest = argv
        return real_run_child([python, wrapper, str(output), *rest], **kwargs)

    harness.run_child = under_yappi
    try:
        return run.run(client, workload)
    finally:
        harness.run_child = real_run_child


if __name__ == "__main__":
    sys.exit(main())
