"""What every measured client script shares (stdlib only: it also runs in the Azure provider's venv)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Workload = Callable[[dict[str, Any]], dict[str, Any]]
# Libraries log to stdout too; the harness looks for the line that starts with this.
RESULT_PREFIX = "BENCH-RESULT "


def main(workloads: Mapping[str, Workload]) -> int:
    """``script.py WORKLOAD CONFIG_JSON``: run one workload, print its result on a BENCH-RESULT line."""
    name, config_path = sys.argv[1], Path(sys.argv[2])
    config = json.loads(config_path.read_text(encoding="utf-8"))
    result = workloads[name](config)
    if _last_cpu_seconds is not None:
        result.setdefault("cpu_seconds", round(_last_cpu_seconds, 3))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


_last_cpu_seconds: float | None = None


def timed(operation: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of ``operation`` (and its value); its CPU seconds (all threads) go into the result."""
    global _last_cpu_seconds
    started, cpu = time.perf_counter(), time.process_time()
    value = operation()
    _last_cpu_seconds = time.process_time() - cpu
    return time.perf_counter() - started, value


def peak_rss_bytes() -> int:
    """This process's peak resident set so far (Linux reports kibibytes); 0 where unknown."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def files_under(directory: Path) -> tuple[int, int]:
    """(count, bytes) of the regular files below ``directory``, hidden bookkeeping files excluded."""
    count = size = 0
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            count += 1
            size += path.stat().st_size
    return count, size
