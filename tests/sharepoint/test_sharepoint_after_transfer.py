"""After a DAG has processed files it archives them (move, rename) or deletes them, and never a changed one."""

from __future__ import annotations

import importlib.util

import pytest
from sharepoint_kit import SITE_URL

from airflow_provider_graphcert.errors import ConfigurationError, GraphConflictError
from airflow_provider_graphcert.sharepoint.item_actions import ItemChangedError
from airflow_provider_graphcert.sharepoint.resolver import ItemNotFoundError
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.faults import set_header
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

LIBRARY_URL = f"{SITE_URL}/Shared Documents"


def _emulator_moves_items() -> bool:
    """Whether the emulator answers PATCH on a driveItem (issue 10's item moves)."""
    try:
        return importlib.util.find_spec("airflow_provider_graphcert.testing.emulator.graph.item_moves") is not None
    except ModuleNotFoundError:
        return False


needs_item_moves = pytest.mark.skipif(
    not _emulator_moves_items(), reason="the emulator does not implement PATCH on driveItems yet (issue 10)"
)


def _etag(sharepoint: SharePoint, path: str) -> str:
    return str(sharepoint.find_files(url=f"{LIBRARY_URL}/{path}")[0]["eTag"])


# -- delete ------------------------------------------------------------------------------------------


def test_a_processed_file_is_deleted_once_and_a_second_delete_says_it_is_gone(
    sharepoint: SharePoint, documents: Drive
) -> None:
    documents.put_file("Inbox/daily.csv", b"a,b\n")
    etag = _etag(sharepoint, "Inbox/daily.csv")
    result = sharepoint.delete(url=f"{LIBRARY_URL}/Inbox/daily.csv", if_match=etag)
    assert (result["deleted"], result["path"]) == (1, "Inbox/daily.csv")
    assert sharepoint.find_files(url=f"{LIBRARY_URL}/Inbox/daily.csv") == []
    assert sharepoint.delete(url=f"{LIBRARY_URL}/Inbox/daily.csv", missing_ok=True)["deleted"] == 0
    with pytest.raises(ItemNotFoundError):
        sharepoint.delete(url=f"{LIBRARY_URL}/Inbox/daily.csv")


def test_a_file_changed_since_it_was_read_is_not_deleted(sharepoint: SharePoint, documents: Drive) -> None:
    documents.put_file("Inbox/daily.csv", b"version 1\n")
    seen = _etag(sharepoint, "Inbox/daily.csv")
    documents.put_file("Inbox/daily.csv", b"version 2, not yet processed\n")
    with pytest.raises(ItemChangedError, match="changed since this job read it"):
        sharepoint.delete(site_url=SITE_URL, library="Documents", path="Inbox/daily.csv", if_match=seen)
    assert documents.resolve("Inbox/daily.csv").blob is not None


def test_a_delete_whose_reply_is_lost_is_not_reported_as_missing(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("Inbox/daily.csv", b"a,b\n")
    # Graph deletes the item, then the answer fails: the client's repeat meets a 404 of its own making.
    lost = graph_emulator.faults.tamper(r"/items/[^/]+$", set_header("retry-after", "0", status=503), method="DELETE")
    result = sharepoint.delete(url=f"{LIBRARY_URL}/Inbox/daily.csv")
    assert lost.fired == 1 and result["deleted"] == 1
    assert sharepoint.find_files(url=f"{LIBRARY_URL}/Inbox/daily.csv") == []


def test_a_folder_or_a_library_root_is_deleted_only_when_meant(sharepoint: SharePoint, documents: Drive) -> None:
    documents.put_file("Inbox/sub/a.csv", b"a")
    with pytest.raises(ConfigurationError, match="deleting it deletes everything in it") as info:
        sharepoint.delete(url=f"{LIBRARY_URL}/Inbox/sub")
    assert info.value.field == "allow_folder"
    with pytest.raises(ConfigurationError, match="library's root"):
        sharepoint.delete(url=LIBRARY_URL, allow_folder=True)
    assert sharepoint.delete(url=f"{LIBRARY_URL}/Inbox/sub", allow_folder=True)["deleted"] == 1
    assert sharepoint.find_files(url=f"{LIBRARY_URL}/Inbox", recursive=True) == []


# -- move and rename: refused before any request -------------------------------------------------------


def test_a_move_to_another_library_or_with_a_path_as_name_is_refused(
    sharepoint: SharePoint, documents: Drive, site: Site
) -> None:
    site.add_library("Archive")
    documents.put_file("Inbox/daily.csv", b"a")
    with pytest.raises(ConfigurationError, match="moves items only within one library") as other:
        sharepoint.move(url=f"{LIBRARY_URL}/Inbox/daily.csv", to_folder=f"{SITE_URL}/Archive/2026")
    assert other.value.field == "to_folder"
    with pytest.raises(ConfigurationError, match="path separator") as name:
        sharepoint.move(url=f"{LIBRARY_URL}/Inbox/daily.csv", new_name="../daily.csv")
    assert name.value.field == "new_name"
    with pytest.raises(ConfigurationError, match="destination folder, a new name, or both"):
        sharepoint.move(url=f"{LIBRARY_URL}/Inbox/daily.csv")
    assert documents.resolve("Inbox/daily.csv").blob is not None


# -- move and rename against the emulator's PATCH --------------------------------------------------------


@needs_item_moves
def test_a_processed_file_moves_to_a_dated_archive_folder_created_on_the_way(
    sharepoint: SharePoint, documents: Drive
) -> None:
    documents.put_file("Inbox/daily.csv", b"a,b\n")
    item_id = documents.resolve("Inbox/daily.csv").id
    etag = _etag(sharepoint, "Inbox/daily.csv")
    result = sharepoint.move(url=f"{LIBRARY_URL}/Inbox/daily.csv", to_folder="Archive/2026-01-01", if_match=etag)
    assert (result["from"], result["to"], result["item_id"]) == (
        "Inbox/daily.csv",
        "Archive/2026-01-01/daily.csv",
        item_id,
    )
    assert documents.resolve("Archive/2026-01-01/daily.csv").id == item_id
    assert sharepoint.find_files(url=f"{LIBRARY_URL}/Inbox/daily.csv") == []


@needs_item_moves
def test_a_rename_in_place_and_a_name_already_taken(sharepoint: SharePoint, documents: Drive) -> None:
    documents.put_file("Inbox/daily.csv", b"new")
    documents.put_file("Inbox/daily.done.csv", b"yesterday's")
    with pytest.raises(GraphConflictError, match="conflict_behavior is 'fail'"):
        sharepoint.move(url=f"{LIBRARY_URL}/Inbox/daily.csv", new_name="daily.done.csv")
    renamed = sharepoint.move(
        url=f"{LIBRARY_URL}/Inbox/daily.csv", new_name="daily.done.csv", conflict_behavior="rename"
    )
    assert renamed["to"].startswith("Inbox/daily.done") and renamed["to"] != "Inbox/daily.done.csv"
    assert documents.resolve("Inbox/daily.done.csv").blob is not None


@needs_item_moves
def test_a_file_changed_since_it_was_read_is_not_archived(sharepoint: SharePoint, documents: Drive) -> None:
    documents.put_file("Inbox/daily.csv", b"version 1\n")
    seen = _etag(sharepoint, "Inbox/daily.csv")
    documents.put_file("Inbox/daily.csv", b"version 2\n")
    with pytest.raises(ItemChangedError, match="Not moved"):
        sharepoint.move(url=f"{LIBRARY_URL}/Inbox/daily.csv", to_folder="Archive", if_match=seen)
    assert documents.resolve("Inbox/daily.csv").blob is not None
