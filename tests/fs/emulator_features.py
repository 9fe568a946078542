"""Which Graph routes the emulator in this checkout has, for tests written ahead of them.

Graph's driveItem copy (POST …/copy + monitor URL) and move (PATCH) routes arrive with the
emulator's graph/item_moves module. Until then the tests that need them are expected to fail,
strictly: the moment the routes exist, they must pass.
"""

from __future__ import annotations

import importlib.util

import pytest

from airflow_provider_graphcert.errors import GraphRequestError


def _emulator_moves_items() -> bool:
    try:
        return importlib.util.find_spec("airflow_provider_graphcert.testing.emulator.graph.item_moves") is not None
    except ModuleNotFoundError:
        return False


NEEDS_EMULATOR_COPY_AND_MOVE = pytest.mark.xfail(
    not _emulator_moves_items(),
    strict=True,
    raises=GraphRequestError,
    reason="this checkout's emulator has no driveItem copy / PATCH (move) routes",
)
