"""The spo:// file system is plain Python below its Airflow entry point (fs/spo.py)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import airflow_provider_graphcert.fs.filesystem
import airflow_provider_graphcert.fs.upath
loaded = sorted(name for name in sys.modules if name == "airflow" or name.startswith("airflow."))
print(",".join(loaded))
"""


def test_the_file_system_and_its_path_class_load_without_airflow() -> None:
    finished = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120)
    assert finished.stdout.strip() == ""
