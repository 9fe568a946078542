"""Downloads go through a 302 to a pre-authenticated URL that honours Range and refuses bearer tokens."""

from __future__ import annotations

import datetime as dt
import os

from graph_harness import GraphHarness

from airflow_provider_graphcert.quickxorhash import quickxorhash
from airflow_provider_graphcert.testing.emulator.graph_state import Drive


def test_content_redirects_to_the_download_url_on_the_files_origin(graph: GraphHarness, library: Drive) -> None:
    data = os.urandom(2_500_000)
    item = library.put_file("big/data.bin", data)
    response = graph.get(f"drives/{library.id}/items/{item.id}/content")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(graph.files_origin)
    assert location == graph.json("GET", f"drives/{library.id}/items/{item.id}")["@microsoft.graph.downloadUrl"]
    by_path = graph.get(f"drives/{library.id}/root:/big/data.bin:/content")
    assert by_path.status_code == 302
    body = graph.unauthenticated("GET", location)
    assert body.status_code == 200
    assert body.content == data
    assert quickxorhash(body.content) == item.quick_xor_hash
    assert body.headers["Accept-Ranges"] == "bytes"


def test_range_requests_get_206_with_content_range(graph: GraphHarness, library: Drive) -> None:
    data = bytes(range(256)) * 8
    item = library.put_file("r.bin", data)
    url = graph.json("GET", f"drives/{library.id}/items/{item.id}")["@microsoft.graph.downloadUrl"]
    part = graph.unauthenticated("GET", url, headers={"Range": "bytes=0-1023"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == "bytes 0-1023/2048"
    assert part.content == data[:1024]
    tail = graph.unauthenticated("GET", url, headers={"Range": "bytes=2000-"})
    assert tail.status_code == 206 and tail.content == data[2000:]
    suffix = graph.unauthenticated("GET", url, headers={"Range": "bytes=-10"})
    assert suffix.headers["Content-Range"] == "bytes 2038-2047/2048" and suffix.content == data[-10:]
    beyond = graph.unauthenticated("GET", url, headers={"Range": "bytes=4096-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */2048"
    head = graph.unauthenticated("HEAD", url)
    assert head.status_code == 200 and head.headers["Content-Length"] == "2048"


def test_the_download_url_refuses_an_authorization_header(graph: GraphHarness, library: Drive) -> None:
    item = library.put_file("secret.txt", b"s")
    url = graph.get(f"drives/{library.id}/items/{item.id}/content").headers["Location"]
    refused = graph.unauthenticated("GET", url, headers={"Authorization": "Bearer admin"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"


def test_a_tampered_or_expired_download_url_is_refused(graph: GraphHarness, library: Drive) -> None:
    item = library.put_file("a.txt", b"a")
    url = graph.get(f"drives/{library.id}/items/{item.id}/content").headers["Location"]
    assert graph.unauthenticated("GET", url[:-3] + "AAA").status_code == 401
    graph.state.download_url_lifetime = -dt.timedelta(seconds=1)
    expired = graph.get(f"drives/{library.id}/items/{item.id}/content").headers["Location"]
    assert graph.unauthenticated("GET", expired).status_code == 401


def test_a_deleted_file_is_gone_from_its_download_url(graph: GraphHarness, library: Drive) -> None:
    item = library.put_file("a.txt", b"a")
    url = graph.get(f"drives/{library.id}/items/{item.id}/content").headers["Location"]
    library.delete("a.txt")
    assert graph.unauthenticated("GET", url).status_code == 404


def test_requests_follows_the_redirect_without_the_token(graph: GraphHarness, library: Drive) -> None:
    """requests drops Authorization when a redirect changes port, as the files origin requires."""
    library.put_file("f.txt", b"followed")
    response = graph.get(f"drives/{library.id}/root:/f.txt:/content", allow_redirects=True)
    assert response.status_code == 200 and response.content == b"followed"
