"""Users paste what they see in the browser; the provider finds the site, library and folder."""

from __future__ import annotations

import pytest

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.sharepoint.locations import parse_sharepoint_url
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

FOLDER_FORMS = [
    "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Reports/2026",
    "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/Reports/2026",
    "https://contoso.sharepoint.com/sites/Finance/Documents/Reports/2026",
    "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/Forms/AllItems.aspx"
    "?id=%2Fsites%2FFinance%2FShared%20Documents%2FReports%2F2026&viewid=1a2b",
    "https://contoso.sharepoint.com/:f:/r/sites/Finance/Shared%20Documents/Reports/2026?csf=1&web=1",
]


@pytest.mark.parametrize("url", FOLDER_FORMS)
def test_every_browser_form_resolves_to_the_same_folder(
    url: str, sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    folder = documents.mkdir("Reports/2026")
    resolved = sharepoint.resolve(url=url)
    assert resolved.drive_id == documents.id
    assert resolved.id == folder.id
    assert resolved.is_folder


def test_pieces_and_caching_take_few_calls(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("Reports/q1.xlsx", b"numbers")
    first = sharepoint.resolve(
        site_url="https://contoso.sharepoint.com/sites/Finance", library="Documents", path="Reports/q1.xlsx"
    )
    assert first.item["name"] == "q1.xlsx"
    graph_emulator.requests.clear()
    sharepoint.resolve(url="https://contoso.sharepoint.com/sites/Finance/Shared Documents/Reports")
    # site and libraries come from the resolver's cache: one call for the item only
    assert len(graph_emulator.requests.records("graph")) == 1


def test_awkward_names_are_percent_encoded_per_segment(sharepoint: SharePoint, documents: Drive) -> None:
    documents.put_file("Q1 #1/100% done/Überblick 2026.txt", b"x")
    # As the browser's address bar gives it: '#' and '%' encoded (a raw '#' starts a URL fragment).
    url = (
        "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/Q1%20%231/100%25%20done/"
        "%C3%9Cberblick%202026.txt"
    )
    assert sharepoint.resolve(url=url).item["name"] == "Überblick 2026.txt"
    by_pieces = sharepoint.resolve(
        site_url="https://contoso.sharepoint.com/sites/Finance", library="Documents", path="Q1 #1/100% done"
    )
    assert by_pieces.item["name"] == "100% done"


def test_clear_errors_for_wrong_site_library_or_path(sharepoint: SharePoint, documents: Drive) -> None:
    with pytest.raises(ConfigurationError, match="No SharePoint site"):
        sharepoint.resolve(url="https://contoso.sharepoint.com/sites/Nope/Shared Documents")
    with pytest.raises(ConfigurationError, match="neither a document library nor a subsite") as library:
        sharepoint.resolve(url="https://contoso.sharepoint.com/sites/Finance/Archive/x")
    assert "'Documents'" in str(library.value)  # it lists the libraries that do exist
    with pytest.raises(ConfigurationError, match="does not exist in the library 'Documents'"):
        sharepoint.resolve(url="https://contoso.sharepoint.com/sites/Finance/Shared Documents/missing")
    with pytest.raises(ConfigurationError, match="not a SharePoint URL"):
        parse_sharepoint_url("sites/Finance")
