"""A DAG pulls new SharePoint files, then archives (or deletes) exactly the ones it landed and verified.

Through a real Airflow connection and real HTTPS to the emulator; the emulator's tamper rules
corrupt one file's body, or save a new version of a file while the DAG is pulling it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.operators.sharepoint import (
    SharePointDeleteOperator,
    SharePointDownloadOperator,
    SharePointMoveOperator,
)
from airflow_provider_graphcert.sharepoint.folder_download import FolderDownloadError
from airflow_provider_graphcert.sharepoint.item_actions import ItemChangedError
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse
from airflow_provider_graphcert.testing.emulator.graph.render import DOWNLOAD_PATH
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant

ConnectionFactory = Callable[..., str]
INBOX = "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Inbox"


@pytest.fixture
def writer(graph_emulator: GraphEmulator, tenant: Tenant, rsa_cert: object, airflow_connection: ConnectionFactory,
           pem_file: Path) -> App:  # fmt: skip
    app = graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All"])  # type: ignore[attr-defined]
    airflow_connection(app, certificate_path=str(pem_file))
    return app


def _seed_inbox(documents: Drive) -> None:
    documents.put_file("Inbox/a.csv", b"a\n")
    documents.put_file("Inbox/b.csv", b"b\n")
    documents.put_file("Inbox/2026/c.csv", b"c\n")


def _exists(documents: Drive, path: str) -> bool:
    try:
        documents.resolve(path)
    except Exception:
        return False
    return True


def _download(tmp_path: Path, after: dict[str, object], **kwargs: object) -> SharePointDownloadOperator:
    return SharePointDownloadOperator(
        task_id="pull", url=INBOX, destination=str(tmp_path / "landed"), after_download=after, max_workers=1, **kwargs
    )


def test_landed_files_are_moved_to_the_archive_keeping_their_sub_folders(
    writer: App, documents: Drive, tmp_path: Path
) -> None:
    _seed_inbox(documents)
    result = _download(tmp_path, {"move_to": "Archive/20260101"}).execute({})  # type: ignore[arg-type]
    assert result["downloaded"] == 3
    assert result["after_download"] == {
        "action": "move", "done": 3, "changed_since": [], "unverified_kept": [], "failed": {},
    }  # fmt: skip
    assert (tmp_path / "landed" / "2026" / "c.csv").read_bytes() == b"c\n"
    for name in ("a.csv", "b.csv", "2026/c.csv"):
        assert not _exists(documents, f"Inbox/{name}")
        assert _exists(documents, f"Archive/20260101/{name}")


def test_a_corrupted_download_is_not_archived_and_the_task_fails_naming_it(
    graph_emulator: GraphEmulator, writer: App, documents: Drive, tmp_path: Path
) -> None:
    _seed_inbox(documents)

    def corrupt_b(response: CapturedResponse) -> CapturedResponse:
        return replace(response, body=b"X\n") if response.body == b"b\n" else response

    graph_emulator.faults.tamper(DOWNLOAD_PATH, corrupt_b, origin="files", times=None)
    with pytest.raises(FolderDownloadError, match=r"b\.csv"):
        _download(tmp_path, {"move_to": "Archive"}).execute({})  # type: ignore[arg-type]
    assert _exists(documents, "Inbox/b.csv")
    assert not _exists(documents, "Archive/b.csv")
    assert _exists(documents, "Archive/a.csv") and _exists(documents, "Archive/2026/c.csv")


def test_a_file_saved_again_while_the_dag_pulled_it_is_left_for_the_next_run(
    graph_emulator: GraphEmulator, writer: App, documents: Drive, tmp_path: Path
) -> None:
    _seed_inbox(documents)

    def someone_saves_a_new_version(response: CapturedResponse) -> CapturedResponse:
        if response.body == b"a\n":
            documents.put_file("Inbox/a.csv", b"a, version 2\n")
        return response

    graph_emulator.faults.tamper(DOWNLOAD_PATH, someone_saves_a_new_version, origin="files", times=None)
    result = _download(tmp_path, {"delete": True}).execute({})  # type: ignore[arg-type]
    assert result["after_download"]["changed_since"] == ["a.csv"]
    assert result["after_download"]["done"] == 2
    assert documents.resolve("Inbox/a.csv").blob is not None
    assert not _exists(documents, "Inbox/b.csv")
    graph_emulator.faults.clear()
    again = _download(tmp_path, {"delete": True}).execute({})  # type: ignore[arg-type]
    assert (again["downloaded"], again["skipped"]) == (1, 0)
    assert (tmp_path / "landed" / "a.csv").read_bytes() == b"a, version 2\n"
    assert not _exists(documents, "Inbox/a.csv")


def test_unchanged_files_skipped_by_an_incremental_run_are_not_touched(
    writer: App, documents: Drive, tmp_path: Path
) -> None:
    _seed_inbox(documents)
    SharePointDownloadOperator(task_id="pull", url=INBOX, destination=str(tmp_path / "landed")).execute({})  # type: ignore[arg-type]
    documents.put_file("Inbox/b.csv", b"b, corrected\n")
    result = _download(tmp_path, {"move_to": "Archive"}).execute({})  # type: ignore[arg-type]
    assert (result["downloaded"], result["skipped"], result["after_download"]["done"]) == (1, 2, 1)
    assert _exists(documents, "Inbox/a.csv") and _exists(documents, "Inbox/2026/c.csv")
    assert _exists(documents, "Archive/b.csv")


def test_a_move_refused_by_sharepoint_fails_the_task_and_leaves_the_source_in_place(
    writer: App, documents: Drive, tmp_path: Path
) -> None:
    _seed_inbox(documents)
    documents.put_file("Archive/a.csv", b"archived yesterday\n")
    with pytest.raises(Exception, match=r"could not be moved.*a\.csv.*conflict_behavior") as info:
        _download(tmp_path, {"move_to": "Archive"}, include=["a.csv"]).execute({})  # type: ignore[arg-type]
    assert "still in the source folder" in str(info.value)
    assert _exists(documents, "Inbox/a.csv")
    assert (tmp_path / "landed" / "a.csv").read_bytes() == b"a\n"
    # Once the archive's copy is out of the way, the retry fetches the file again and archives it.
    documents.delete("Archive/a.csv")
    retry = _download(tmp_path, {"move_to": "Archive"}, include=["a.csv"]).execute({})  # type: ignore[arg-type]
    assert (retry["downloaded"], retry["after_download"]["done"]) == (1, 1)
    assert not _exists(documents, "Inbox/a.csv") and _exists(documents, "Archive/a.csv")


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ({"move_to": "Archive", "delete": True}, "exactly one action"),
        ({"archive": "x"}, "unknown key"),
        ({"delete": "yes"}, "True or False"),
        ({"move_to": ""}, "render to nothing"),
        ({"delete": True, "conflict_behavior": "rename"}, "move_to only"),
    ],
)
def test_a_wrong_after_download_is_refused_when_the_dag_is_parsed(
    after: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _download(tmp_path, after)


def test_the_templated_archive_folder_renders_with_the_run_date(writer: App, documents: Drive, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    _seed_inbox(documents)
    with DAG("archive_after_pull", schedule=None) as dag:
        operator = _download(tmp_path, {"move_to": "Archive/{{ ds_nodash }}"}, include=["b.csv"])
    context = {"ds_nodash": "20260301", "dag": dag}
    operator.render_template_fields(context)  # type: ignore[arg-type]
    operator.execute(context)  # type: ignore[arg-type]
    assert _exists(documents, "Archive/20260301/b.csv")


def test_move_and_delete_operators_act_on_one_file_and_respect_the_etag(writer: App, documents: Drive) -> None:
    documents.put_file("Inbox/report.xlsx", b"v1")
    seen = documents.resolve("Inbox/report.xlsx").etag
    moved = SharePointMoveOperator(
        task_id="archive", url=f"{INBOX}/report.xlsx", to_folder="Processed", new_name="report-q1.xlsx", if_match=seen
    ).execute({})  # type: ignore[arg-type]
    assert (moved["from"], moved["to"]) == ("Inbox/report.xlsx", "Processed/report-q1.xlsx")
    stale = documents.resolve("Processed/report-q1.xlsx").etag
    documents.put_file("Processed/report-q1.xlsx", b"v2")
    delete = SharePointDeleteOperator(
        task_id="drop", url=INBOX.replace("Inbox", "Processed/report-q1.xlsx"), if_match=stale
    )
    with pytest.raises(ItemChangedError):
        delete.execute({})  # type: ignore[arg-type]
    assert _exists(documents, "Processed/report-q1.xlsx")
    delete.if_match = None
    assert delete.execute({})["deleted"] == 1  # type: ignore[arg-type]
    assert not _exists(documents, "Processed/report-q1.xlsx")
