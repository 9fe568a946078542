"""Run one measured child process: wall time, peak RSS (GNU time's %M) and the result it prints."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GNU_TIME = "/usr/bin/time"
RESULT_PREFIX = "BENCH-RESULT "  # the line a client prints its result on (clients/_child.py)
# No single measured process may run longer than this (the whole run must stay under 15 minutes).
CHILD_TIMEOUT_SECONDS = 240.0


class ChildFailed(RuntimeError):
    """A measured process exited non-zero, timed out or printed no result."""


@dataclass(frozen=True)
class ChildResult:
    started: float  # time.time() just before the process was created
    wall_seconds: float
    peak_rss_bytes: int  # the command's (and its waited-for descendants') maximum resident set
    output: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # user + system CPU of the whole process (GNU time's %U + %S)


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    log: Path | None = None,
    timeout: float = CHILD_TIMEOUT_SECONDS,
) -> ChildResult:
    """Start ``argv`` under GNU time, wait for it and parse its BENCH-RESULT line (if any)."""
    stderr_target = log.open("ab") if log is not None else subprocess.DEVNULL
    # GNU time forks the command from its own small process: a fork of this (large) Python would
    # count our resident pages in the child's maximum until it execs.
    with tempfile.NamedTemporaryFile(prefix="bench-rss-", suffix=".txt", delete=False) as report:
        rss_report = Path(report.name)
    try:
        started = time.time()
        clock = time.perf_counter()
        process = subprocess.Popen(
            [GNU_TIME, "--format", "%M %U %S", "--output", str(rss_report), *argv],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=stderr_target,
            start_new_session=True,
        )
        stdout, status = _wait(process, timeout)
        wall = time.perf_counter() - clock
        peak_kib, cpu = _reported(rss_report)
    finally:
        rss_report.unlink(missing_ok=True)
        if log is not None and not isinstance(stderr_target, int):
            stderr_target.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise ChildFailed(f"{' '.join(argv[:4])} ... exited {code}; see {log}")
    output: dict[str, Any] = {}
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.startswith(RESULT_PREFIX):
            output = json.loads(line[len(RESULT_PREFIX) :])
    return ChildResult(
        started=started, wall_seconds=wall, peak_rss_bytes=peak_kib * 1024, output=output, cpu_seconds=cpu
    )


def _reported(report: Path) -> tuple[int, float]:
    """GNU time's %M (maximum resident set in KiB) and %U + %S (CPU seconds), the last line of its report."""
    lines = [line for line in report.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    fields = lines[-1].split() if lines else []
    try:
        return int(fields[0]), float(fields[1]) + float(fields[2])
    except (IndexError, ValueError):
        return 0, 0.0


def _wait(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, int]:
    """Block (no polling, which would steal CPU from the measured process) until the child exits."""
    assert process.stdout is not None
    stream = process.stdout
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(stream.read()), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status = os.waitpid(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    if timed_out.is_set():
        raise ChildFailed(f"{process.args!r} did not finish within {timeout:.0f} s")
    return b"".join(chunks), status


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")
