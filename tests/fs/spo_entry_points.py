"""Register the spo:// entry points that pyproject.toml declares (for this process).

The shared development install may predate them; registering exactly what pyproject.toml says
keeps a typo there from passing unnoticed. Used by conftest.py and by the subprocesses tests start.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import fsspec
import upath.registry

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared(group: str) -> dict[str, str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return dict(project["entry-points"][group])


def register_declared_entry_points() -> None:
    for name, target in declared("fsspec.specs").items():
        fsspec.register_implementation(name, target.replace(":", "."), clobber=True)
    for name, target in declared("universal_pathlib.implementations").items():
        upath.registry.register_implementation(name, target.replace(":", "."), clobber=True)
