"""Lineage of SharePoint transfers: Airflow Assets with stable URIs, OpenLineage datasets.

A SharePoint location is the Asset ``spo://<host>/<site path>/<library>/<folder>`` (the browser
address with ``https`` replaced by ``spo``, as the ``spo://`` file system takes it, without the
connection id: the data, not the credentials, names the asset). A target is ``file:///abs/path``
for a local folder and the store's own URL (``s3://bucket/key``) otherwise. The ``asset-uris``
entry of the provider info registers :func:`sanitize_spo_uri` for ``spo`` so Airflow normalises
every spelling to one URI (https://airflow.apache.org/docs/apache-airflow/stable/authoring-and-scheduling/assets.html).

A download or sync emits its target's asset event only when files changed: the operator's outlet
is an ``AssetAlias`` that receives the event at run time (Airflow emits an event for a plain Asset
outlet on every successful run; through an alias nothing is emitted unless added,
https://airflow.apache.org/docs/apache-airflow/stable/authoring-and-scheduling/asset-scheduling.html).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from airflow.sdk import Asset, AssetAlias

from airflow_provider_graphcert.sharepoint.locations import SharePointLocation

SPO_SCHEME = "spo"
ALIAS_PREFIX = "graphcert-changes"


def sharepoint_asset_uri(location: SharePointLocation) -> str:
    segments = [p for p in location.site_path.split("/") if p] + list(location.segments)
    path = "/".join(quote(unquote(s), safe="") for s in segments)
    return f"{SPO_SCHEME}://{location.hostname.lower()}/{path}".rstrip("/")


def target_asset_uri(target: Any) -> str:
    """The URI of where files land: a local path, a URL with a scheme, or an ObjectStoragePath."""
    protocol = getattr(target, "protocol", None)
    if protocol is not None and hasattr(target, "path"):  # an ObjectStoragePath
        scheme = protocol[0] if isinstance(protocol, list | tuple) else protocol
        if scheme in ("file", "local"):
            return _file_uri(str(target.path))
        return _without_credentials(f"{scheme}://{str(target.path).lstrip('/')}")
    text = os.fspath(target) if isinstance(target, str | os.PathLike) else str(target)
    if "://" not in text:
        return _file_uri(text)
    if urlsplit(text).scheme == "file":
        return _file_uri(urlsplit(text).path)
    return _without_credentials(text)


def _file_uri(path: str) -> str:
    absolute = os.path.abspath(os.path.expanduser(path))
    return "file://" + quote(absolute.replace(os.sep, "/"), safe="/")


def _without_credentials(url: str) -> str:
    """A connection id or user in ``scheme://conn@bucket`` does not belong in the data's name."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def sanitize_spo_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normaliser for ``spo`` asset URIs (provider info ``asset-uris``)."""
    host = (uri.hostname or "").lower()
    if not host or uri.path in ("", "/"):
        raise ValueError("An spo:// asset URI names a host and a library, e.g. spo://contoso.sharepoint.com/sites/X/Y")
    return uri._replace(netloc=host, query="")


def changes_alias(dag_id: str, task_id: str) -> AssetAlias:
    """The alias through which a transfer task emits its target's event, only when files changed."""
    return AssetAlias(name=f"{ALIAS_PREFIX}:{dag_id}.{task_id}")


def emit_changed_target(
    context: Mapping[str, Any], alias: AssetAlias, target: Asset, source: Asset, summary: Mapping[str, Any]
) -> bool:
    """Add the target's asset event when the run changed files; True when one was added."""
    changed = int(summary.get("downloaded", 0) or 0) + int(summary.get("deleted", 0) or 0)
    events = context.get("outlet_events")
    if not changed or events is None:
        return False
    extra = {
        "source": source.uri,
        "downloaded": int(summary.get("downloaded", 0) or 0),
        "deleted": int(summary.get("deleted", 0) or 0),
        "bytes": int(summary.get("bytes", 0) or 0),
    }
    events[alias].add(target, extra=extra)
    return True


def openlineage_dataset(uri: str) -> Any:
    """An OpenLineage Dataset for an asset URI (namespace ``scheme://authority``, name the path)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Dataset(namespace="file", name=unquote(parts.path))
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=unquote(parts.path).lstrip("/"))


def convert_spo_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """The ``to_openlineage_converter`` of the ``spo`` asset scheme."""
    return openlineage_dataset(asset.uri)
