"""Uploading: simple PUTs with conflict behaviour, folders, and resumable upload sessions."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from graph_harness import GraphHarness

from airflow_provider_graphcert.quickxorhash import quickxorhash
from airflow_provider_graphcert.testing.emulator.graph_state import FRAGMENT_MULTIPLE_BYTES, Drive

CHUNK = 3 * FRAGMENT_MULTIPLE_BYTES  # 960 KiB, a multiple of 320 KiB as B9 requires


# -- simple uploads (B8) ---------------------------------------------------------------------------


def test_simple_upload_creates_then_replaces(graph: GraphHarness, library: Drive) -> None:
    url = f"drives/{library.id}/root:/{quote('New folder/notes #1.txt')}:/content"
    created = graph.json("PUT", url, 201, data=b"first", token="sites-write")
    assert created["name"] == "notes #1.txt" and created["size"] == 5
    assert created["file"]["hashes"]["quickXorHash"] == quickxorhash(b"first")
    assert created["createdBy"]["application"]["id"] == "22222222-2222-2222-2222-222222222222"
    replaced = graph.json("PUT", url, 200, data=b"second version", token="sites-write")
    assert replaced["id"] == created["id"]
    assert replaced["eTag"] != created["eTag"] and replaced["cTag"] != created["cTag"]
    assert library.resolve("New folder/notes #1.txt").size == len(b"second version")


def test_conflict_behaviour_fail_and_rename(graph: GraphHarness, library: Drive) -> None:
    library.put_file("reports/q1.csv", b"a")
    base = f"drives/{library.id}/root:/reports/q1.csv:/content"
    failed = graph.call("PUT", f"{base}?@microsoft.graph.conflictBehavior=fail", data=b"b")
    assert failed.status_code == 409
    assert failed.json()["error"]["code"] == "nameAlreadyExists"
    renamed = graph.json("PUT", f"{base}?@microsoft.graph.conflictBehavior=rename", 201, data=b"c")
    assert renamed["name"] == "q1 1.csv"
    again = graph.json("PUT", f"{base}?@microsoft.graph.conflictBehavior=rename", 201, data=b"d")
    assert again["name"] == "q1 2.csv"
    assert library.resolve("reports/q1.csv").size == 1


def test_upload_by_parent_id_and_replace_by_item_id(graph: GraphHarness, library: Drive) -> None:
    folder = library.mkdir("inbox")
    created = graph.json("PUT", f"drives/{library.id}/items/{folder.id}:/a.bin:/content", 201, data=b"1234")
    replaced = graph.json("PUT", f"drives/{library.id}/items/{created['id']}/content", 200, data=b"12345678")
    assert replaced["id"] == created["id"] and replaced["size"] == 8
    assert library.root.size == 8


def test_create_folders(graph: GraphHarness, library: Drive) -> None:
    url = f"drives/{library.id}/root/children"
    made = graph.json("POST", url, 201, json={"name": "Projects", "folder": {}})
    assert made["folder"] == {"childCount": 0}
    conflict = graph.call("POST", url, json={"name": "projects", "folder": {}})
    assert conflict.status_code == 409
    renamed = graph.json(
        "POST", url, 201, json={"name": "Projects", "folder": {}, "@microsoft.graph.conflictBehavior": "rename"}
    )
    assert renamed["name"] == "Projects 1"
    inner = graph.json(
        "POST", f"drives/{library.id}/items/{made['id']}/children", 201, json={"name": "x", "folder": {}}
    )
    assert inner["parentReference"]["id"] == made["id"]
    assert graph.call("POST", url, json={"name": "bad:name", "folder": {}}).status_code == 400


# -- upload sessions (B9) --------------------------------------------------------------------------


def create_session(graph: GraphHarness, library: Drive, path: str, **body: Any) -> dict[str, Any]:
    url = f"drives/{library.id}/root:/{quote(path)}:/createUploadSession"
    session: dict[str, Any] = graph.json("POST", url, json=body, token="sites-write")
    assert session["uploadUrl"].startswith(graph.files_origin)
    assert session["nextExpectedRanges"] == ["0-"]
    return session


def put_fragment(graph: GraphHarness, upload_url: str, data: bytes, start: int, total: int, **kwargs: Any) -> Any:
    end = start + len(data) - 1
    headers = {"Content-Range": f"bytes {start}-{end}/{total}", **kwargs.pop("headers", {})}
    return graph.unauthenticated("PUT", upload_url, data=data, headers=headers, **kwargs)


def upload_all(graph: GraphHarness, upload_url: str, data: bytes, chunk: int = CHUNK) -> Any:
    response = None
    for start in range(0, len(data), chunk):
        response = put_fragment(graph, upload_url, data[start : start + chunk], start, len(data))
        if start + chunk < len(data):
            assert response.status_code == 202, response.text
            assert response.json()["nextExpectedRanges"] == [f"{start + chunk}-"]
    return response


def test_upload_session_happy_path(graph: GraphHarness, library: Drive) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12_345)
    session = create_session(graph, library, "Big files/data set.bin")
    final = upload_all(graph, session["uploadUrl"], data)
    assert final.status_code == 201, final.text
    item = final.json()
    assert item["size"] == len(data)
    assert item["file"]["hashes"]["quickXorHash"] == quickxorhash(data)
    stored = library.resolve("Big files/data set.bin")
    assert stored.blob is not None and stored.blob.read_bytes() == data
    download = graph.unauthenticated("GET", item["@microsoft.graph.downloadUrl"])
    assert download.content == data
    assert graph.unauthenticated("GET", session["uploadUrl"]).status_code == 404


def test_upload_session_replacing_an_item_answers_200(graph: GraphHarness, library: Drive) -> None:
    old = library.put_file("r.bin", b"old")
    url = f"drives/{library.id}/items/{old.id}/createUploadSession"
    session = graph.json("POST", url)
    data = os.urandom(FRAGMENT_MULTIPLE_BYTES + 5)
    final = upload_all(graph, session["uploadUrl"], data, chunk=FRAGMENT_MULTIPLE_BYTES)
    assert final.status_code == 200 and final.json()["id"] == old.id


def test_fragment_rules(graph: GraphHarness, library: Drive) -> None:
    data = os.urandom(4 * FRAGMENT_MULTIPLE_BYTES + 100)
    total = len(data)
    upload_url = create_session(graph, library, "rules.bin")["uploadUrl"]

    not_multiple = put_fragment(graph, upload_url, data[:100_000], 0, total)
    assert not_multiple.status_code == 400
    assert not_multiple.json()["error"]["code"] == "invalidRange"

    first = put_fragment(graph, upload_url, data[:CHUNK], 0, total)
    assert first.status_code == 202 and first.json()["nextExpectedRanges"] == [f"{CHUNK}-"]

    again = put_fragment(graph, upload_url, data[:CHUNK], 0, total)
    assert again.status_code == 416

    skipping = put_fragment(
        graph, upload_url, data[CHUNK + FRAGMENT_MULTIPLE_BYTES :], CHUNK + FRAGMENT_MULTIPLE_BYTES, total
    )
    assert skipping.status_code == 400
    assert skipping.json()["error"]["innerError"]["code"] == "fragmentOutOfOrder"

    other_total = put_fragment(graph, upload_url, data[CHUNK : 2 * CHUNK], CHUNK, total + 1)
    assert other_total.status_code == 400

    status = graph.unauthenticated("GET", upload_url)
    assert status.status_code == 200 and status.json()["nextExpectedRanges"] == [f"{CHUNK}-"]
    assert "expirationDateTime" in status.json()

    final = put_fragment(graph, upload_url, data[CHUNK:], CHUNK, total)
    assert final.status_code == 201
    assert final.json()["file"]["hashes"]["quickXorHash"] == quickxorhash(data)


def test_content_length_must_match_the_range(graph: GraphHarness, library: Drive) -> None:
    upload_url = create_session(graph, library, "len.bin")["uploadUrl"]
    lying = graph.unauthenticated(
        "PUT", upload_url, data=b"x" * 10, headers={"Content-Range": "bytes 0-19/20", "Content-Length": "10"}
    )
    assert lying.status_code == 400
    assert lying.json()["error"]["innerError"]["code"] == "fragmentLengthMismatch"
    assert graph.unauthenticated("GET", upload_url).json()["nextExpectedRanges"] == ["0-"]


def test_cancel_expire_and_authorization_on_the_upload_url(graph: GraphHarness, library: Drive) -> None:
    upload_url = create_session(graph, library, "c.bin")["uploadUrl"]
    with_token = put_fragment(graph, upload_url, b"abc", 0, 3, headers={"Authorization": "Bearer admin"})
    assert with_token.status_code == 401
    assert graph.unauthenticated("DELETE", upload_url).status_code == 204
    gone = put_fragment(graph, upload_url, b"abc", 0, 3)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "itemNotFound"
    assert gone.json()["error"]["innerError"]["code"] == "uploadSessionNotFound"

    expiring = create_session(graph, library, "e.bin")["uploadUrl"]
    graph.state.expire_upload_sessions()
    assert graph.unauthenticated("GET", expiring).status_code == 404
    forged = expiring.replace("tempauth=", "tempauth=x")
    assert graph.unauthenticated("GET", forged).status_code == 404
    assert not list(graph.state.blob_dir.glob("*.part"))


def test_name_conflict_at_commit_is_409_and_keeps_the_session(graph: GraphHarness, library: Drive) -> None:
    upload_url = create_session(graph, library, "race.txt", item={"@microsoft.graph.conflictBehavior": "fail"})[
        "uploadUrl"
    ]
    library.put_file("race.txt", b"someone else was faster")
    conflict = put_fragment(graph, upload_url, b"mine", 0, 4)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "nameAlreadyExists"
    status = graph.unauthenticated("GET", upload_url)
    assert status.status_code == 200 and status.json()["nextExpectedRanges"] == []
    library.delete("race.txt")
    committed = graph.unauthenticated("POST", upload_url)
    assert committed.status_code == 201 and committed.json()["size"] == 4


def test_defer_commit_waits_for_an_empty_post(graph: GraphHarness, library: Drive) -> None:
    upload_url = create_session(graph, library, "later.txt", deferCommit=True)["uploadUrl"]
    held = put_fragment(graph, upload_url, b"payload", 0, 7)
    assert held.status_code == 202 and held.json()["nextExpectedRanges"] == []
    assert library.child(library.root, "later.txt") is None
    assert graph.unauthenticated("POST", upload_url).status_code == 201
    assert library.resolve("later.txt").size == 7


def test_declared_file_size_must_match_and_fit_the_quota(graph: GraphHarness, library: Drive) -> None:
    upload_url = create_session(graph, library, "sized.bin", item={"fileSize": 10})["uploadUrl"]
    assert put_fragment(graph, upload_url, b"12345", 0, 5).status_code == 400
    too_big = graph.call(
        "POST",
        f"drives/{library.id}/root:/huge.bin:/createUploadSession",
        json={"item": {"fileSize": library.quota_total + 1}},
    )
    assert too_big.status_code == 507


@pytest.mark.parametrize("parent_form", ["path", "parent-id"])
def test_session_url_forms(graph: GraphHarness, library: Drive, parent_form: str) -> None:
    folder = library.mkdir("dest")
    if parent_form == "path":
        url = f"drives/{library.id}/root:/dest/f.txt:/createUploadSession"
    else:
        url = f"drives/{library.id}/items/{folder.id}:/f.txt:/createUploadSession"
    session = graph.json("POST", url)
    assert parse_qs(urlsplit(session["uploadUrl"]).query)["guid"]
    assert put_fragment(graph, session["uploadUrl"], b"hi", 0, 2).status_code == 201
    assert library.resolve("dest/f.txt").parent_id == folder.id
