"""The Graph client is plain Python: importing it loads neither Airflow nor the connection-settings layer."""

from __future__ import annotations

import subprocess
import sys

GRAPH_MODULES = ("client", "batch", "retry", "errors", "paging", "throttle", "redaction")
FORBIDDEN_PREFIXES = ("airflow.", "airflow_provider_graphcert.settings", "airflow_provider_graphcert.diagnostics")


def test_importing_the_graph_client_pulls_in_nothing_above_it() -> None:
    imports = "; ".join(f"import airflow_provider_graphcert.graph.{name}" for name in GRAPH_MODULES)
    probe = (
        f"import sys; {imports}; "
        "print('\\n'.join(sorted(m for m in sys.modules if m == 'airflow' or m.startswith("
        f"{FORBIDDEN_PREFIXES!r}))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
