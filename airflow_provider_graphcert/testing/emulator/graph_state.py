"""Kept for imports written before the split: the Graph models live in the ``graph`` package."""

from airflow_provider_graphcert.testing.emulator.graph.blobs import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.common import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.directory import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.drives import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.sites import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.state import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.uploads import *  # noqa: F403
