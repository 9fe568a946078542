"""The Azure provider's own venv (bench/.venvs/azure) and what each provider adds to plain Airflow.

The venv is built once with pip from the package index: apache-airflow==AIRFLOW_VERSION first (a
snapshot of its distributions and size is taken), then a dry-run install of this project into it
(what our provider would add), then apache-airflow-providers-microsoft-azure (what it adds).
The record lands beside the venv; a later run reuses both while the Airflow version matches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.settings import AIRFLOW_VERSION, AZURE_PROVIDER, ROOT, SCRATCH_DIR, VENVS_DIR

AZURE_VENV = VENVS_DIR / "azure"
AZURE_RECORD = VENVS_DIR / "azure.json"
PIP_TIMEOUT_SECONDS = 900


def azure_python() -> Path:
    return AZURE_VENV / "bin" / "python"


def ensure_azure_venv(log: Path) -> dict[str, Any]:
    """The footprint record; builds the venv first when it is missing or for another Airflow."""
    if AZURE_RECORD.exists() and azure_python().exists():
        record: dict[str, Any] = json.loads(AZURE_RECORD.read_text(encoding="utf-8"))
        if record.get("airflow") == AIRFLOW_VERSION:
            record["reused"] = True
            return record
    started = time.perf_counter()
    shutil.rmtree(AZURE_VENV, ignore_errors=True)
    AZURE_VENV.parent.mkdir(parents=True, exist_ok=True)
    _run([_base_python(), "-m", "venv", str(AZURE_VENV)], log)
    _pip(["install", "--quiet", f"apache-airflow=={AIRFLOW_VERSION}"], log)
    base = _snapshot()
    ours = _our_addition(log)
    _pip(["install", "--quiet", AZURE_PROVIDER], log)
    after = _snapshot()
    added = sorted(set(after["distributions"]) - set(base["distributions"]))
    record = {
        "airflow": AIRFLOW_VERSION,
        "built_in_seconds": round(time.perf_counter() - started, 1),
        "plain_airflow": {"distributions": len(base["distributions"]), "bytes": base["bytes"]},
        "azure": {
            "version": after["distributions"].get(AZURE_PROVIDER),
            "added_distributions": len(added),
            "added_bytes": after["bytes"] - base["bytes"],
            "added": {name: after["distributions"][name] for name in added},
        },
        "ours": ours,
        "reused": False,
    }
    AZURE_RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _our_addition(log: Path) -> dict[str, Any]:
    """What installing this project into plain Airflow would add (pip's dry-run report) and its size."""
    report = SCRATCH_DIR / "ours-dry-run.json"
    _pip(["install", "--quiet", "--dry-run", "--report", str(report), str(ROOT)], log)
    installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    added = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installs}
    target = SCRATCH_DIR / "ours-installed"
    shutil.rmtree(target, ignore_errors=True)
    _pip(["install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)], log)
    size = _tree_bytes(target)
    shutil.rmtree(target, ignore_errors=True)
    return {"added_distributions": len(added), "added_bytes": size, "added": added}


def _snapshot() -> dict[str, Any]:
    listing = subprocess.run(
        [str(azure_python()), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=PIP_TIMEOUT_SECONDS,
    )
    distributions = {item["name"].lower(): item["version"] for item in json.loads(listing.stdout)}
    distributions.pop("pip", None)
    return {"distributions": distributions, "bytes": _tree_bytes(_site_packages())}


def _site_packages() -> Path:
    return next((AZURE_VENV / "lib").glob("python3*/site-packages"))


def _tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def _base_python() -> str:
    # The interpreter behind this venv, so the Azure venv runs the same Python version.
    return str(getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable)


def _pip(arguments: list[str], log: Path) -> None:
    _run([str(azure_python()), "-m", "pip", *arguments], log)


def _run(command: list[str], log: Path) -> None:
    with log.open("ab") as sink:
        sink.write(("$ " + " ".join(command) + "\n").encode())
        sink.flush()
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=True, timeout=PIP_TIMEOUT_SECONDS, env=env)
