"""Start the benchmark's emulator process, wait until it is seeded and serving, ask it for counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.settings import Scale

READY_TIMEOUT_SECONDS = 180.0


class BenchEmulator:
    """``with BenchEmulator(scale, workdir) as emulator: emulator.info, emulator.stats()``."""

    def __init__(self, scale: Scale, workdir: Path, log: Path) -> None:
        self.scale = scale
        self.workdir = workdir
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.seed_seconds = 0.0

    @property
    def state_dir(self) -> Path:
        return self.workdir / "emulator"

    def __enter__(self) -> BenchEmulator:
        ready = self.workdir / "emulator-ready.json"
        ready.unlink(missing_ok=True)
        # File bodies live in the state directory: start from nothing, and leave nothing (__exit__).
        shutil.rmtree(self.state_dir, ignore_errors=True)
        command = [
            sys.executable,
            "-m",
            "bench.emulator_process",
            "--state-dir",
            str(self.state_dir),
            "--ready-file",
            str(ready),
            "--small-files",
            str(self.scale.small_files),
            "--small-file-bytes",
            str(self.scale.small_file_bytes),
            "--large-file-bytes",
            str(self.scale.large_file_bytes),
            "--users",
            str(self.scale.users),
        ]
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the benchmark emulator did not start; see {self.log}")
            time.sleep(0.1)
        self.seed_seconds = time.perf_counter() - started
        self.info = json.loads(ready.read_text(encoding="utf-8"))
        return self

    def cpu_seconds(self) -> float:
        """CPU (user + system, all threads) the emulator process has used so far; 0 where /proc is missing."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_latency(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` (a network between client and service); 0 for none."""
        self._command(f"latency {seconds}")

    def stats(self) -> dict[str, Any]:
        """Token requests so far, and the requests per origin since the last call."""
        return self._command("stats")

    def _command(self, command: str) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process is None:
            return
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        shutil.rmtree(self.state_dir, ignore_errors=True)
