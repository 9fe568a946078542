"""How universal_pathlib (under Airflow's ObjectStoragePath) parses ``spo://`` paths.

The flavour mirrors SharePointFileSystem's path rules without importing it, so that parsing a
path loads neither the Graph client nor Airflow. universal_pathlib finds both classes through the
entry points declared in pyproject.toml.
"""

from __future__ import annotations

from typing import Any

from upath._flavour_sources import FileSystemFlavourBase
from upath.implementations.cloud import CloudPath

from airflow_provider_graphcert.fs import addressing


class SharePointPath(CloudPath):
    """The host is the anchor of the path, as a bucket is for S3."""

    __slots__ = ()


class SharePointFlavour(FileSystemFlavourBase):
    protocol = (addressing.PROTOCOL,)
    root_marker = ""
    sep = "/"

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return addressing.strip_protocol(str(path))

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    @classmethod
    def _parent(cls, path: str) -> str:
        return addressing.strip_protocol(str(path)).rpartition("/")[0]
