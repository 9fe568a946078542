"""A pipeline tidies up around its transfers: renames and moves what it processed, copies, deletes,
recovers an upload whose name was taken, and meets SharePoint's rewrite of Office documents."""

from __future__ import annotations

import io
import zipfile

from graph_harness import GraphHarness
from requests import Response

from airflow_provider_graphcert.quickxorhash import quickxorhash
from airflow_provider_graphcert.testing.emulator.graph_state import FRAGMENT_MULTIPLE_BYTES, Drive


def test_a_processed_file_is_renamed_and_moved_to_an_archive_folder(graph: GraphHarness, library: Drive) -> None:
    report = library.put_file("inbox/report.csv", b"a,b\n")
    archive = library.mkdir("archive/2024")
    url = f"drives/{library.id}/items/{report.id}"
    moved = graph.json("PATCH", url, json={"name": "report-done.csv", "parentReference": {"id": archive.id}})
    assert moved["id"] == report.id and moved["name"] == "report-done.csv"
    assert moved["parentReference"]["id"] == archive.id and moved["eTag"] != f'"{{{report.etag_guid}}},1"'
    assert library.resolve("archive/2024/report-done.csv").id == report.id
    assert library.resolve("inbox").size == 0 and library.resolve("archive").size == 4
    by_path = graph.json(
        "PATCH",
        f"drives/{library.id}/root:/archive/2024/report-done.csv",
        json={"parentReference": {"path": f"/drives/{library.id}/root:/inbox"}},
    )
    assert by_path["parentReference"]["path"] == f"/drives/{library.id}/root:/inbox"


def test_a_rename_onto_a_taken_name_fails_unless_asked_to_rename(graph: GraphHarness, library: Drive) -> None:
    first = library.put_file("a.txt", b"1")
    library.put_file("b.txt", b"2")
    url = f"drives/{library.id}/items/{first.id}"
    taken = graph.call("PATCH", url, json={"name": "B.TXT"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "nameAlreadyExists"
    renamed = graph.json("PATCH", url, json={"name": "b.txt", "@microsoft.graph.conflictBehavior": "rename"})
    assert renamed["name"] == "b 1.txt"
    stale = graph.call(
        "PATCH", url, json={"name": "c.txt"}, headers={"If-Match": '"{00000000-0000-0000-0000-000000000000},1"'}
    )
    assert stale.status_code == 412


def test_a_folder_cannot_move_into_itself(graph: GraphHarness, library: Drive) -> None:
    outer = library.mkdir("outer/inner")
    top = library.resolve("outer")
    response = graph.call("PATCH", f"drives/{library.id}/items/{top.id}", json={"parentReference": {"id": outer.id}})
    assert response.status_code == 400


def test_moves_show_in_the_next_delta_round(graph: GraphHarness, library: Drive) -> None:
    report = library.put_file("inbox/report.csv", b"x")
    link = graph.json("GET", f"drives/{library.id}/root/delta")["@odata.deltaLink"]
    graph.json("PATCH", f"drives/{library.id}/items/{report.id}", json={"name": "renamed.csv"})
    changes = graph.json("GET", link)["value"]
    assert "renamed.csv" in {entry.get("name") for entry in changes}


def test_copy_answers_202_with_a_monitor_url_naming_the_new_item(graph: GraphHarness, library: Drive) -> None:
    library.put_file("src/data/a.bin", b"A" * 10)
    library.put_file("src/data/b.bin", b"B" * 20)
    source = library.resolve("src")
    target = library.mkdir("backup")
    accepted = graph.call(
        "POST",
        f"drives/{library.id}/items/{source.id}/copy",
        json={"parentReference": {"driveId": library.id, "id": target.id}, "name": "src-copy"},
    )
    assert accepted.status_code == 202 and not accepted.content
    monitor = accepted.headers["Location"]
    assert monitor.startswith(graph.files_origin)
    status = graph.unauthenticated("GET", monitor)
    assert status.status_code == 200
    body = status.json()
    assert body["status"] == "completed" and body["percentageComplete"] == 100.0
    copied = library.item(body["resourceId"])
    assert library.path_of(copied) == "/backup/src-copy"
    assert library.resolve("backup/src-copy/data/b.bin").quick_xor_hash == quickxorhash(b"B" * 20)
    assert library.resolve("src/data/a.bin").id != library.resolve("backup/src-copy/data/a.bin").id
    assert graph.unauthenticated("GET", monitor + "x").status_code == 404


def test_copy_onto_a_name_in_use_is_refused_at_once(graph: GraphHarness, library: Drive) -> None:
    report = library.put_file("report.csv", b"1")
    refused = graph.call("POST", f"drives/{library.id}/items/{report.id}/copy", json={})
    assert refused.status_code == 409
    renamed = graph.call(
        "POST", f"drives/{library.id}/items/{report.id}/copy?@microsoft.graph.conflictBehavior=rename", json={}
    )
    assert renamed.status_code == 202
    assert library.resolve("report 1.csv").size == 1


def test_delete_and_create_folder_with_conflict_behaviours(graph: GraphHarness, library: Drive) -> None:
    library.put_file("jobs/old.txt", b"x")
    url = f"drives/{library.id}/root/children"
    replaced = graph.json(
        "POST", url, 201, json={"name": "jobs", "folder": {}, "@microsoft.graph.conflictBehavior": "replace"}
    )
    assert replaced["folder"]["childCount"] == 0
    assert graph.call("DELETE", f"drives/{library.id}/root:/jobs").status_code == 204
    assert graph.call("GET", f"drives/{library.id}/root:/jobs").status_code == 404


def upload_in_session(graph: GraphHarness, library: Drive, path: str, data: bytes) -> tuple[str, Response]:
    session = graph.json("POST", f"drives/{library.id}/root:/{path}:/createUploadSession", json={})
    url = session["uploadUrl"]
    response = graph.unauthenticated(
        "PUT", url, data=data, headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}
    )
    return url, response


def test_an_upload_whose_name_was_taken_is_committed_with_source_url(graph: GraphHarness, library: Drive) -> None:
    data = b"z" * (FRAGMENT_MULTIPLE_BYTES + 5)
    session = graph.json("POST", f"drives/{library.id}/root:/out/result.bin:/createUploadSession", json={})
    url = session["uploadUrl"]
    # Someone else stores the same name while our upload is in flight.
    library.put_file("out/result.bin", b"theirs")
    last = graph.unauthenticated(
        "PUT", url, data=data, headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}
    )
    assert last.status_code == 409
    committed = graph.json(
        "PUT",
        f"drives/{library.id}/root:/out/result.bin",
        201,
        json={"@microsoft.graph.sourceUrl": url, "@microsoft.graph.conflictBehavior": "rename"},
    )
    assert committed["name"] == "result 1.bin" and committed["size"] == len(data)
    assert library.resolve("out/result.bin").size == len(b"theirs")
    assert graph.unauthenticated("GET", url).status_code == 404


def office_document() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as document:
        document.writestr("[Content_Types].xml", "<Types/>")
        document.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def test_sharepoint_rewrites_office_documents_in_a_library(graph: GraphHarness, library: Drive) -> None:
    sent = office_document()
    stored = graph.json("PUT", f"drives/{library.id}/root:/minutes.docx:/content", 201, data=sent)
    assert stored["size"] != len(sent)
    assert stored["file"]["hashes"]["quickXorHash"] != quickxorhash(sent)
    body = library.resolve("minutes.docx").blob
    assert body is not None
    with zipfile.ZipFile(body) as rewritten:
        assert rewritten.read("word/document.xml") == b"<w:document/>"
    _, by_session = upload_in_session(graph, library, "agenda.xlsx", sent)
    assert by_session.status_code == 201
    assert by_session.json()["size"] != len(sent)
    plain = graph.json("PUT", f"drives/{library.id}/root:/notes.txt:/content", 201, data=sent)
    assert plain["size"] == len(sent)
    not_a_zip = graph.json("PUT", f"drives/{library.id}/root:/broken.docx:/content", 201, data=b"not a zip")
    assert not_a_zip["size"] == len(b"not a zip")


def test_a_library_can_store_office_documents_as_sent(graph: GraphHarness, library: Drive) -> None:
    archive = library.site.add_library("Archive", rewrite_office_documents=False)
    sent = office_document()
    stored = graph.json("PUT", f"drives/{archive.id}/root:/minutes.docx:/content", 201, data=sent)
    assert stored["size"] == len(sent)
    assert stored["file"]["hashes"]["quickXorHash"] == quickxorhash(sent)


def test_upload_session_properties_the_emulator_does_not_model_answer_501(graph: GraphHarness, library: Drive) -> None:
    body = {"item": {"fileSystemInfo": {"lastModifiedDateTime": "2024-01-01T00:00:00Z"}}}
    response = graph.call("POST", f"drives/{library.id}/root:/a.bin:/createUploadSession", json=body)
    assert response.status_code == 501
    assert "item.'fileSystemInfo'" in response.json()["error"]["message"]
    plain = {"item": {"@microsoft.graph.conflictBehavior": "rename", "name": "a.bin"}, "deferCommit": False}
    assert graph.call("POST", f"drives/{library.id}/root:/a.bin:/createUploadSession", json=plain).status_code == 200
