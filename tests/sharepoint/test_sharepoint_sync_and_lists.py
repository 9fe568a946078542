"""Delta sync of a folder between runs, list exports, and finding files for the sensor."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sharepoint_kit import SITE_URL, content_for

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

INBOX_URL = f"{SITE_URL}/Shared Documents/Inbox"


class MemoryStore:
    """Where the delta link lives between runs (an Airflow Variable in production)."""

    def __init__(self) -> None:
        self.link: str | None = None
        self.saves = 0

    def load(self) -> str | None:
        return self.link

    def save(self, link: str) -> None:
        self.link = link
        self.saves += 1


def test_sync_moves_only_changes_and_mirrors_deletions(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    for name in ("a.csv", "b.csv", "sub/c.csv"):
        documents.put_file(f"Inbox/{name}", content_for(name))
    documents.put_file("Elsewhere/not-ours.csv", b"outside the synced folder")
    store = MemoryStore()
    first = sharepoint.sync(tmp_path, store, url=INBOX_URL, mirror_deletions=True)
    assert (first["downloaded"], first["full_pass"]) == (3, True)
    assert (tmp_path / "sub" / "c.csv").read_bytes() == content_for("sub/c.csv")
    assert not (tmp_path / "not-ours.csv").exists()

    graph_emulator.requests.clear()
    quiet = sharepoint.sync(tmp_path, store, url=INBOX_URL, mirror_deletions=True)
    assert (quiet["downloaded"], quiet["deleted"], quiet["full_pass"]) == (0, 0, False)
    assert graph_emulator.requests.records("files") == []

    documents.put_file("Inbox/b.csv", b"b changed")
    documents.put_file("Inbox/new.csv", b"new")
    documents.delete("Inbox/a.csv")
    changed = sharepoint.sync(tmp_path, store, url=INBOX_URL, mirror_deletions=True)
    assert (changed["downloaded"], changed["deleted"]) == (2, 1)
    assert (tmp_path / "b.csv").read_bytes() == b"b changed"
    assert not (tmp_path / "a.csv").exists()
    assert store.saves == 3


def test_an_expired_delta_link_falls_back_to_a_full_pass(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    store = MemoryStore()
    sharepoint.sync(tmp_path, store, url=INBOX_URL)
    graph_emulator.graph.expire_delta_tokens()
    documents.put_file("Inbox/b.csv", b"b")
    result = sharepoint.sync(tmp_path, store, url=INBOX_URL)
    assert result["full_pass"] is True
    assert result["downloaded"] == 1  # a.csv is unchanged on disk, only b.csv moves
    assert (tmp_path / "b.csv").read_bytes() == b"b"


def test_a_failed_run_does_not_advance_the_delta_link(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    store = MemoryStore()
    (tmp_path / "a.csv").mkdir()  # the target name is taken by a directory: that file fails
    with pytest.raises(Exception, match="not advanced"):
        sharepoint.sync(tmp_path, store, url=INBOX_URL)
    assert store.link is None
    (tmp_path / "a.csv").rmdir()
    assert sharepoint.sync(tmp_path, store, url=INBOX_URL)["downloaded"] == 1


def _seed_list(site: Site) -> None:
    site.add_list(
        "Invoices",
        columns=["Title", "Amount", "Customer"],
        items=[{"Title": f"INV-{i:04d}", "Amount": i * 10, "Customer": f"Customer {i % 7}"} for i in range(1, 2501)],
    )


def test_list_export_to_csv_with_chosen_fields(sharepoint: SharePoint, site: Site, tmp_path: Path) -> None:
    _seed_list(site)
    output = tmp_path / "out" / "invoices.csv"
    result = sharepoint.export_list(SITE_URL, "Invoices", output, fields=["Title", "Amount"])
    assert result == {"path": str(output), "count": 2500, "format": "csv"}
    rows = list(csv.DictReader(output.open(encoding="utf-8")))
    assert len(rows) == 2500
    assert list(rows[0]) == ["id", "Title", "Amount"]
    assert rows[41]["Title"] == "INV-0042" and rows[41]["Amount"] == "420"


def test_list_export_to_json_lines_with_all_fields(sharepoint: SharePoint, site: Site, tmp_path: Path) -> None:
    _seed_list(site)
    output = tmp_path / "invoices.jsonl"
    sharepoint.export_list(SITE_URL, "Invoices", output, output_format="jsonl")
    first = json.loads(output.read_text(encoding="utf-8").splitlines()[0])
    assert {"id", "Title", "Amount", "Customer"} <= set(first)


def test_list_export_of_an_unknown_list(sharepoint: SharePoint, site: Site, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="'Nope' does not exist") as info:
        sharepoint.export_list(SITE_URL, "Nope", tmp_path / "x.csv")
    assert info.value.field == "list_name"
    assert not (tmp_path / "x.csv").exists()


def test_find_files_for_the_sensor(sharepoint: SharePoint, documents: Drive) -> None:
    assert sharepoint.find_files(url=f"{INBOX_URL}/daily.csv") == []
    assert sharepoint.find_files(url=INBOX_URL, pattern="*.csv") == []
    before = datetime.now(UTC) - timedelta(seconds=5)
    documents.put_file("Inbox/daily.csv", b"x")
    documents.put_file("Inbox/readme.txt", b"y")
    assert [m["path"] for m in sharepoint.find_files(url=f"{INBOX_URL}/daily.csv")] == ["daily.csv"]
    assert [m["path"] for m in sharepoint.find_files(url=INBOX_URL, pattern="*.csv")] == ["daily.csv"]
    assert sharepoint.find_files(url=INBOX_URL, pattern="*.csv", modified_after=datetime.now(UTC) + timedelta(1)) == []
    assert len(sharepoint.find_files(url=INBOX_URL, modified_after=before)) == 2
