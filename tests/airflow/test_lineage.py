"""What a SharePoint transfer tells Airflow and OpenLineage about the data it read and wrote.

Runs the operators over real HTTPS against the emulator with Airflow's own outlet-event accessors,
and checks the spo:// asset URIs through Airflow's Asset normalisation (the provider's
``asset-uris`` entry, loaded by Airflow's ProvidersManager).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_graphcert.operators.lineage import sharepoint_asset_uri, target_asset_uri
from airflow_provider_graphcert.operators.sharepoint import (
    SharePointDownloadOperator,
    SharePointSyncOperator,
    SharePointUploadOperator,
)
from airflow_provider_graphcert.sharepoint.locations import location_from
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import Tenant

ConnectionFactory = Callable[..., str]
REPORTS = "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Reports"
REPORTS_ASSET = "spo://contoso.sharepoint.com/sites/Finance/Shared%20Documents/Reports"


@pytest.fixture
def reader(
    graph_emulator: GraphEmulator, tenant: Tenant, rsa_cert: Any, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    app = graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.Read.All"])
    airflow_connection(app, certificate_path=str(pem_file))


def _events(accessors: OutletEventAccessors) -> list[tuple[str, str, dict[str, Any]]]:
    """(alias, asset URI, extra) of every asset event the task recorded."""
    return [
        (event.source_alias_name, event.dest_asset_key.uri, event.extra)
        for accessor in accessors._dict.values()
        for event in accessor.asset_alias_events
    ]


def test_a_download_emits_its_target_asset_only_on_runs_that_landed_files(
    reader: None, documents: Drive, tmp_path: Path
) -> None:
    documents.put_file("Reports/q1.csv", b"1,2\n")
    pull = SharePointDownloadOperator(task_id="pull", url=REPORTS, destination=f"file://{tmp_path}/reports")
    alias = AssetAlias(name="graphcert-changes:adhoc_airflow.pull")
    assert alias in pull.outlets
    first = OutletEventAccessors()
    pull.execute({"outlet_events": first})  # type: ignore[typeddict-item]
    target = f"file://{tmp_path}/reports"
    assert _events(first) == [
        (alias.name, target, {"source": REPORTS_ASSET, "downloaded": 1, "deleted": 0, "bytes": 4}),
    ]
    unchanged = OutletEventAccessors()
    assert pull.execute({"outlet_events": unchanged})["skipped"] == 1  # type: ignore[typeddict-item]
    assert _events(unchanged) == []
    documents.put_file("Reports/q1.csv", b"1,2,3\n")
    changed = OutletEventAccessors()
    pull.execute({"outlet_events": changed})  # type: ignore[typeddict-item]
    assert [uri for _, uri, _ in _events(changed)] == [target]


def test_openlineage_facets_name_sharepoint_as_input_and_the_store_as_output(
    reader: None, documents: Drive, tmp_path: Path
) -> None:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    documents.put_file("Reports/q1.csv", b"1,2\n")
    pull = SharePointDownloadOperator(task_id="pull", url=REPORTS, local_dir=str(tmp_path / "reports"))
    pull.execute({})  # type: ignore[arg-type]
    lineage = pull.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [
        Dataset(namespace="spo://contoso.sharepoint.com", name="sites/Finance/Shared Documents/Reports")
    ]
    assert lineage.outputs == [Dataset(namespace="file", name=str(tmp_path / "reports"))]


def test_an_object_store_target_is_named_by_its_url_without_the_connection() -> None:
    from airflow.sdk import ObjectStoragePath

    sync = SharePointSyncOperator(
        task_id="sync", url=REPORTS, destination=ObjectStoragePath("s3://aws_default@lake/raw/reports/")
    )
    assert target_asset_uri(sync.destination) == "s3://lake/raw/reports"
    lineage = sync.get_openlineage_facets_on_complete(None)
    assert (lineage.outputs[0].namespace, lineage.outputs[0].name) == ("s3://lake", "raw/reports")


def test_every_spelling_of_a_sharepoint_folder_is_one_asset() -> None:
    from_url = sharepoint_asset_uri(location_from(url=REPORTS + "/"))
    from_parts = sharepoint_asset_uri(
        location_from(
            site_url="https://CONTOSO.sharepoint.com/sites/Finance", library="Shared Documents", path="Reports"
        )
    )
    assert from_url == from_parts == REPORTS_ASSET
    # Airflow's own normalisation, through the provider's asset-uris handler for spo://.
    assert Asset("spo://CONTOSO.sharepoint.com/sites/Finance/Shared%20Documents/Reports/").uri == REPORTS_ASSET
    with pytest.raises(ValueError, match="names a host and a library"):
        Asset("spo://contoso.sharepoint.com/")


def test_asset_events_can_be_turned_off(tmp_path: Path) -> None:
    quiet = SharePointDownloadOperator(task_id="pull", url=REPORTS, local_dir=str(tmp_path), emit_asset_events=False)
    assert quiet.outlets == []


def test_an_upload_reports_the_local_folder_as_input_and_sharepoint_as_output(tmp_path: Path) -> None:
    push = SharePointUploadOperator(task_id="push", url=REPORTS + "/Outbox", local_path=str(tmp_path / "out"))
    lineage = push.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(tmp_path / "out"))]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("spo://contoso.sharepoint.com", "sites/Finance/Shared Documents/Reports/Outbox")
    ]
