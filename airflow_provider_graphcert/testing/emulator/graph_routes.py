"""Kept for imports written before the split: the Graph routes live in the ``graph`` package."""

from airflow_provider_graphcert.testing.emulator.graph.addressing import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.calls import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.files_host import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.render import *  # noqa: F403
from airflow_provider_graphcert.testing.emulator.graph.routes import *  # noqa: F403
