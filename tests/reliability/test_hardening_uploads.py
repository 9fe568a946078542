"""Hardening of uploads, list exports and the file sensor against hostile answers and careless inputs.

Every case goes over real HTTPS to the emulator; its tamper rules rewrite Graph's real answers into
the hostile ones (docs/reliability.md, "Hardening: uploads, lists and sensing").
"""

from __future__ import annotations

import importlib.util
import logging
import unicodedata
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import LIBRARY_URL, SITE_URL, content_for, quick_xor, sharepoint_for

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError
from airflow_provider_graphcert.operators.sharepoint import SharePointListExportOperator, SharePointUploadOperator
from airflow_provider_graphcert.sensors.sharepoint import SharePointFileSensor
from airflow_provider_graphcert.sharepoint.download import IntegrityError
from airflow_provider_graphcert.sharepoint.upload import FRAGMENT_MULTIPLE_BYTES, MAX_STALLED_ROUNDS
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse, edit_json
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

OUTBOX_URL = f"{LIBRARY_URL}/Outbox"
CHUNK = 2 * FRAGMENT_MULTIPLE_BYTES
SESSION_SIZE = 8 * CHUNK + 5  # over the 4 MiB single-PUT limit: goes through an upload session


def _remote_files(drive: Drive, folder: str) -> dict[str, bytes]:
    """Every file below ``folder`` in the emulated library, by path relative to it."""
    found = {}
    for item in drive.items.values():
        path = drive.path_of(item).lstrip("/")
        if path.startswith(f"{folder}/") and item.blob is not None:
            found[path[len(folder) + 1 :]] = item.blob.read_bytes()
    return found


# -- an upload session that never moves forward --------------------------------------------------


def _always_from_zero(response: CapturedResponse) -> CapturedResponse:
    """The session 'forgets' every fragment: 202 asking again for everything from byte 0."""
    if response.status not in (200, 202, 416):
        return response
    return replace(response, status=202 if response.status != 200 else 200).with_json(
        {"expirationDateTime": "2099-01-01T00:00:00Z", "nextExpectedRanges": ["0-"]}
    )


def test_an_upload_session_that_keeps_asking_for_byte_zero_fails_instead_of_looping(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "big.bin"
    local.write_bytes(content_for("big.bin", SESSION_SIZE))
    # Bounded here so the unfixed client (which loops) ends too: after these the real answers resume.
    fragments = graph_emulator.faults.tamper("uploadSession", _always_from_zero, times=60, origin="files", method="PUT")
    status = graph_emulator.faults.tamper("uploadSession", _always_from_zero, times=60, origin="files", method="GET")
    service = sharepoint_for(graph_emulator, app, pem_file)
    with pytest.raises(GraphCertError, match="made no progress") as info:
        service.upload(local, url=OUTBOX_URL, chunk_size=CHUNK)
    assert "offset 0 of" in str(info.value) and "nothing was committed" in str(info.value)
    assert fragments.fired + status.fired <= 2 * (MAX_STALLED_ROUNDS + 2)
    sent = graph_emulator.requests.records("files")
    assert sent[-1].method == "DELETE"  # the session was cancelled, not left to expire
    assert _remote_files(documents, "Outbox") == {}


def test_an_upload_session_that_wants_nothing_more_but_never_completes_fails_clearly(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "big.bin"
    local.write_bytes(content_for("big.bin", SESSION_SIZE))
    graph_emulator.faults.tamper(
        "uploadSession", edit_json(lambda body: {**body, "nextExpectedRanges": []}), origin="files", method="PUT"
    )
    with pytest.raises(GraphCertError, match="asked for no further bytes"):
        sharepoint_for(graph_emulator, app, pem_file).upload(local, url=OUTBOX_URL, chunk_size=CHUNK)
    assert _remote_files(documents, "Outbox") == {}


# -- names SharePoint folds into one ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("report.csv", "REPORT.csv", id="case"),
        pytest.param(unicodedata.normalize("NFC", "café.csv"), unicodedata.normalize("NFD", "café.csv"), id="NFC-NFD"),
        pytest.param("Data/q1.csv", "data/q2.csv", id="folders differing in case"),
    ],
)
def test_a_folder_with_names_sharepoint_folds_together_is_refused_before_anything_is_sent(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path, first: str, second: str
) -> None:
    source = tmp_path / "out"
    for relative in (first, second, "other.csv"):
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content_for(relative, 100))
    assert len({p for p in source.rglob("*") if p.is_file()}) == 3  # the local disk keeps them apart
    graph_emulator.requests.clear()
    with pytest.raises(ConfigurationError, match="would land on the same item") as info:
        sharepoint_for(graph_emulator, app, pem_file).upload(source, url=OUTBOX_URL)
    assert info.value.field == "local_path"
    assert first.split("/")[0] in str(info.value) and second.split("/")[0] in str(info.value)
    assert graph_emulator.requests.records("graph") == []  # refused before the first request
    assert _remote_files(documents, "Outbox") == {}


# -- what a folder upload must not send ------------------------------------------------------------


def test_a_downloaded_folder_uploaded_again_sends_only_the_users_files_and_no_outside_links(
    graph_emulator: GraphEmulator,
    app: App,
    pem_file: Path,
    documents: Drive,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    documents.put_file("Inbox/a.csv", b"a,b\n1,2\n")
    documents.put_file("Inbox/sub/b.csv", b"b\n")
    service = sharepoint_for(graph_emulator, app, pem_file)
    work = tmp_path / "work"
    service.download(work, url=f"{LIBRARY_URL}/Inbox")
    state = sorted(p.name for p in work.iterdir() if p.name.startswith("."))
    assert state, "the download left its manifest beside the files"
    (work / ".a.csv.k2j4h5g6.part").write_bytes(b"half a file from a crashed run")
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"not for SharePoint")
    (work / "leak.txt").symlink_to(secret)
    (work / "leaked-folder").symlink_to(secret.parent, target_is_directory=True)
    (work / "alias.csv").symlink_to(work / "a.csv")  # a link inside the folder is an ordinary file
    (work / "x_vti_y.csv").write_bytes(b"a name SharePoint refuses")
    with caplog.at_level(logging.INFO):
        result = service.upload(work, url=OUTBOX_URL)
    assert _remote_files(documents, "Outbox") == {
        "a.csv": b"a,b\n1,2\n",
        "alias.csv": b"a,b\n1,2\n",
        "sub/b.csv": b"b\n",
    }
    assert (result["uploaded"], result["skipped"]) == (3, len(state) + 4)
    assert "Not uploading leak.txt: a symbolic link to" in caplog.text and "outside the folder" in caplog.text
    assert "Not uploading leaked-folder: a symbolic link to a folder is not followed" in caplog.text
    assert "Not uploading .a.csv.k2j4h5g6.part: the provider's own state" in caplog.text
    assert "Not uploading x_vti_y.csv: SharePoint does not allow '_vti_' in a name" in caplog.text


# -- the stored copy is not what was sent ------------------------------------------------------------


def _stored_as(size: int | None, quick_xor_hash: str | None) -> Any:
    def change(item: dict[str, Any]) -> dict[str, Any]:
        if size is None:
            item.pop("size", None)
        else:
            item["size"] = size
        if quick_xor_hash is None:
            item.get("file", {}).pop("hashes", None)
        else:
            item.setdefault("file", {}).setdefault("hashes", {})["quickXorHash"] = quick_xor_hash
        return item

    return edit_json(change)


def test_a_reply_without_a_hash_and_the_wrong_size_fails_and_says_what_to_do(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "data.bin"
    local.write_bytes(content_for("data.bin", 100_000))
    graph_emulator.faults.tamper(r"data\.bin:/content$", _stored_as(3, None), origin="graph", method="PUT")
    with pytest.raises(IntegrityError) as info:
        sharepoint_for(graph_emulator, app, pem_file).upload(local, url=OUTBOX_URL)
    message = str(info.value)
    assert "SharePoint reports 3 bytes with no QuickXorHash" in message and "100,000 bytes" in message
    assert "under its final name 'Outbox/data.bin'" in message and "run the task again" in message


def test_a_reply_with_our_hash_but_no_size_is_verified_by_the_hash(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "data.bin"
    local.write_bytes(content_for("data.bin", 100_000))
    graph_emulator.faults.tamper(
        r"data\.bin:/content$", _stored_as(None, quick_xor(local.read_bytes())), origin="graph", method="PUT"
    )
    result = sharepoint_for(graph_emulator, app, pem_file).upload(local, url=OUTBOX_URL)
    assert result["uploaded"] == 1 and "verified" not in result["items"][0]  # by hash, the usual case


def test_a_different_hash_after_an_upload_session_names_the_suspect_file_and_the_next_step(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "big.bin"
    local.write_bytes(content_for("big.bin", SESSION_SIZE))
    wrong = quick_xor(b"something else")
    committed = graph_emulator.faults.tamper(
        "uploadSession", _only_final(_stored_as(SESSION_SIZE, wrong)), times=None, origin="files", method="PUT"
    )
    with pytest.raises(IntegrityError) as info:
        sharepoint_for(graph_emulator, app, pem_file).upload(local, url=OUTBOX_URL, chunk_size=CHUNK)
    assert committed.fired >= 1
    item_id = documents.resolve("Outbox/big.bin").id
    message = str(info.value)
    assert f"QuickXorHash {wrong}" in message and f"QuickXorHash {quick_xor(local.read_bytes())}" in message
    assert f"(item id {item_id})" in message and "do not use it" in message and "version history" in message


def _only_final(edit: Any) -> Any:
    """Apply ``edit`` to the reply that completes the file (200/201), not to the 202s before it."""

    def only_final(response: CapturedResponse) -> CapturedResponse:
        return edit(response) if response.status in (200, 201) else response

    return only_final


# -- Office documents that SharePoint rewrites ---------------------------------------------------------


def test_an_office_document_rewritten_by_sharepoint_is_accepted_and_reported(
    graph_emulator: GraphEmulator,
    app: App,
    pem_file: Path,
    documents: Drive,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = tmp_path / "out"
    source.mkdir()
    (source / "budget.xlsx").write_bytes(content_for("budget.xlsx", 20_000))
    (source / "minutes.docx").write_bytes(content_for("minutes.docx", SESSION_SIZE))
    rewritten = quick_xor(b"budget.xlsx with the library's properties written in")
    graph_emulator.faults.tamper(r"budget\.xlsx:/content$", _stored_as(21_337, rewritten), origin="graph")
    graph_emulator.faults.tamper(
        "uploadSession", _only_final(_stored_as(SESSION_SIZE + 900, rewritten)), times=None, origin="files"
    )
    with caplog.at_level(logging.INFO):
        result = sharepoint_for(graph_emulator, app, pem_file).upload(source, url=OUTBOX_URL, chunk_size=CHUNK)
    items = {item["remote_path"]: item for item in result["items"]}
    assert items["Outbox/budget.xlsx"]["verified"] == "rewritten_by_sharepoint"
    assert (items["Outbox/budget.xlsx"]["stored_size"], items["Outbox/budget.xlsx"]["stored_quick_xor_hash"]) == (
        21_337,
        rewritten,
    )
    assert items["Outbox/minutes.docx"]["stored_size"] == SESSION_SIZE + 900
    assert "SharePoint rewrote 2 Office document(s)" in caplog.text


def _emulator_rewrites_office_documents() -> bool:
    """Whether the emulator stores Office documents rewritten, as SharePoint does (issue 10)."""
    try:
        return importlib.util.find_spec("airflow_provider_graphcert.testing.emulator.graph.office") is not None
    except ModuleNotFoundError:
        return False


def _workbook(path: Path) -> Path:
    """A minimal Office Open XML package (a zip), which SharePoint opens and writes its properties into."""
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        package.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
    return path


@pytest.mark.skipif(not _emulator_rewrites_office_documents(), reason="the emulator does not rewrite Office files yet")
def test_a_workbook_that_the_library_really_rewrites_uploads_by_default_and_fails_strict(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = _workbook(tmp_path / "budget.xlsx")
    service = sharepoint_for(graph_emulator, app, pem_file)
    result = service.upload(local, url=OUTBOX_URL)
    stored = documents.resolve("Outbox/budget.xlsx")
    assert result["items"][0]["verified"] == "rewritten_by_sharepoint"
    assert result["items"][0]["stored_size"] == stored.size != local.stat().st_size
    with pytest.raises(IntegrityError, match="upload with verify='office_aware'"):
        service.upload(local, url=OUTBOX_URL, verify="strict")


def test_the_same_rewrite_of_an_ordinary_file_still_fails(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "budget.csv"
    local.write_bytes(content_for("budget.csv", 20_000))
    graph_emulator.faults.tamper(r"budget\.csv:/content$", _stored_as(21_337, quick_xor(b"x")), origin="graph")
    with pytest.raises(IntegrityError, match="did not verify"):
        sharepoint_for(graph_emulator, app, pem_file).upload(local, url=OUTBOX_URL)


def test_an_office_document_emptied_by_the_service_is_no_rewrite(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    local = tmp_path / "budget.xlsx"
    local.write_bytes(content_for("budget.xlsx", 20_000))
    graph_emulator.faults.tamper(r"budget\.xlsx:/content$", _stored_as(0, None), origin="graph")
    with pytest.raises(IntegrityError, match="0 bytes"):
        sharepoint_for(graph_emulator, app, pem_file).upload(local, url=OUTBOX_URL)


def test_strict_verification_on_the_operator_fails_a_rewritten_office_document_and_says_why(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, airflow_connection: Any, documents: Drive, tmp_path: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    local = tmp_path / "budget.xlsx"
    local.write_bytes(content_for("budget.xlsx", 20_000))
    graph_emulator.faults.tamper(r"budget\.xlsx:/content$", _stored_as(21_337, quick_xor(b"x")), origin="graph")
    operator = SharePointUploadOperator(task_id="push", local_path=str(local), url=OUTBOX_URL, verify="strict")
    with pytest.raises(IntegrityError, match="upload with verify='office_aware'"):
        operator.execute({})
    with pytest.raises(ConfigurationError, match="must be one of strict, office_aware") as info:
        SharePointUploadOperator(task_id="push", local_path=str(local), url=OUTBOX_URL, verify="lenient").execute({})
    assert info.value.field == "verify"


def test_an_upload_with_no_workers_is_refused_naming_the_argument(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.csv").write_bytes(b"a")
    with pytest.raises(ConfigurationError, match="max_workers 0 must be a whole number of at least 1") as info:
        sharepoint_for(graph_emulator, app, pem_file).upload(tmp_path / "out", url=OUTBOX_URL, max_workers=0)
    assert info.value.field == "max_workers"
    assert _remote_files(documents, "Outbox") == {}


# -- the sensor: a broken connection is not "no file yet" --------------------------------------------


@pytest.mark.parametrize("credential", ["certificate_path", "client_assertion_file"])
def test_the_file_sensor_fails_at_once_when_its_credential_file_is_missing(
    app: App, airflow_connection: Any, documents: Drive, tmp_path: Path, credential: str
) -> None:
    airflow_connection(app, **{credential: str(tmp_path / "gone" / "missing.pem")})
    sensor = SharePointFileSensor(task_id="wait", url=f"{LIBRARY_URL}/Inbox/daily.csv", poke_interval=1, timeout=60)
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        sensor.poke({})  # type: ignore[arg-type]
    assert info.value.field == credential


def test_the_file_sensor_still_waits_for_a_file_that_is_not_there_yet(
    app: App, pem_file: Path, airflow_connection: Any, documents: Drive
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    documents.put_file("Inbox/other.csv", b"x")
    for url in (f"{LIBRARY_URL}/Inbox/daily.csv", f"{LIBRARY_URL}/Not Yet Created/daily.csv"):
        sensor = SharePointFileSensor(task_id="wait", url=url, poke_interval=1, timeout=60)
        assert sensor.poke({}).is_done is False  # type: ignore[arg-type]
    documents.put_file("Inbox/daily.csv", b"x")
    sensor = SharePointFileSensor(task_id="wait", url=f"{LIBRARY_URL}/Inbox/daily.csv", poke_interval=1, timeout=60)
    assert sensor.poke({}).is_done is True  # type: ignore[arg-type]


# -- list export ---------------------------------------------------------------------------------------


def _seed_invoices(site: Site, count: int = 1200) -> None:
    site.add_list(
        "Invoices", columns=["Title", "Amount"], items=[{"Title": f"INV-{i}", "Amount": i} for i in range(count)]
    )


def test_a_list_export_in_an_unknown_format_is_refused_naming_the_argument(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: Site, tmp_path: Path
) -> None:
    # The operator refuses it when the DAG is parsed (tests/airflow); the service refuses it for hook users.
    _seed_invoices(site)
    output = tmp_path / "invoices.json"
    with pytest.raises(ConfigurationError, match="output_format 'json' must be one of csv, jsonl") as info:
        sharepoint_for(graph_emulator, app, pem_file).export_list(SITE_URL, "Invoices", output, output_format="json")
    assert info.value.field == "output_format"
    assert not output.exists()


def test_a_list_export_logs_how_many_items_it_wrote(
    graph_emulator: GraphEmulator,
    app: App,
    pem_file: Path,
    site: Site,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _seed_invoices(site)
    with caplog.at_level(logging.INFO):
        result = sharepoint_for(graph_emulator, app, pem_file).export_list(
            SITE_URL, "Invoices", tmp_path / "invoices.jsonl", output_format="jsonl"
        )
    assert result["count"] == 1200
    assert f"Exported 1200 item(s) of the list 'Invoices' to {tmp_path / 'invoices.jsonl'}" in caplog.text


def test_list_export_fields_rendered_by_a_template_as_one_string_are_column_names(
    app: App, pem_file: Path, airflow_connection: Any, site: Site, tmp_path: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    _seed_invoices(site, count=3)
    output = tmp_path / "invoices.csv"
    operator = SharePointListExportOperator(
        task_id="export", site_url=SITE_URL, list_name="Invoices", output_path=str(output), fields="{{ params.cols }}"
    )
    operator.render_template_fields({"params": {"cols": "Title, Amount"}})  # type: ignore[arg-type]
    assert operator.execute({})["count"] == 3
    assert output.read_text(encoding="utf-8").splitlines()[0] == "id,Title,Amount"


def test_a_list_export_with_an_empty_list_name_names_the_argument(
    app: App, pem_file: Path, airflow_connection: Any, site: Site, tmp_path: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    operator = SharePointListExportOperator(
        task_id="export", site_url=SITE_URL, list_name=" ", output_path=str(tmp_path / "out.csv")
    )
    with pytest.raises(ConfigurationError, match="list_name is empty") as info:
        operator.execute({})
    assert info.value.field == "list_name"


def test_the_sensor_meets_an_unreadable_modification_time_with_a_clear_error(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, airflow_connection: Any, documents: Drive
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    documents.put_file("Inbox/daily.csv", b"x")

    def garble(page: dict[str, Any]) -> dict[str, Any]:
        for item in page.get("value", []):
            item["lastModifiedDateTime"] = "yesterday-ish"
        return page

    graph_emulator.faults.tamper("/children", edit_json(garble), origin="graph", times=None)
    sensor = SharePointFileSensor(
        task_id="wait", url=f"{LIBRARY_URL}/Inbox", pattern="*.csv", modified_after="2026-01-01T00:00:00Z"
    )
    with pytest.raises(GraphCertError, match=r"'daily\.csv' with lastModifiedDateTime='yesterday-ish'"):
        sensor.poke({})  # type: ignore[arg-type]
