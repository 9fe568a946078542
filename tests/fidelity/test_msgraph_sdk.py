"""A user tests a DAG written with Microsoft's Graph SDK (msgraph-sdk, azure-identity's
CertificateCredential) offline: every request form the SDK sends must work as on real Graph.

Each test names the Graph feature it drives; where the SDK itself is at fault, the test cites the
upstream issue, works around it and keeps checking the rest.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.drive_item_uploadable_properties import DriveItemUploadableProperties
from msgraph.generated.models.folder import Folder
from msgraph.generated.models.item_reference import ItemReference
from msgraph.generated.models.upload_session import UploadSession
from msgraph.generated.models.user import User
from msgraph.generated.sites.item.lists.item.items.items_request_builder import ItemsRequestBuilder
from msgraph.generated.users.count.count_request_builder import CountRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.large_file_upload import LargeFileUploadTask
from msgraph_core.tasks.page_iterator import PageIterator
from sdk_harness import GROUPS, USERS, Fidelity

from airflow_provider_graphcert.quickxorhash import quickxorhash
from airflow_provider_graphcert.testing.emulator.graph_state import FRAGMENT_MULTIPLE_BYTES


def eventual() -> HeadersCollection:
    headers = HeadersCollection()
    headers.add("ConsistencyLevel", "eventual")
    return headers


def test_sites_by_path_id_and_root_and_their_drives(fidelity: Fidelity) -> None:
    client = fidelity.client

    async def scenario() -> None:
        by_path = await client.sites.by_site_id("contoso.sharepoint.com:/sites/finance:").get()
        assert by_path is not None and by_path.id == fidelity.site.id
        by_id = await client.sites.by_site_id(fidelity.site.id).get()
        assert by_id is not None and by_id.display_name == "Finance"
        root = await client.sites.by_site_id("root").get()
        assert root is not None and root.id != fidelity.site.id
        drive = await client.sites.by_site_id(fidelity.site.id).drive.get()
        assert drive is not None and drive.id == fidelity.library.id
        drives = await client.sites.by_site_id(fidelity.site.id).drives.get()
        assert drives is not None and [d.name for d in drives.value or []] == ["Documents"]

    fidelity.run(scenario)


def test_items_by_id_path_and_alias_with_children_and_content(fidelity: Fidelity) -> None:
    items = fidelity.client.drives.by_drive_id(fidelity.library.id).items

    async def scenario() -> None:
        children = await items.by_drive_item_id("root").children.get()
        assert children is not None and [c.name for c in children.value or []] == ["Reports"]
        by_path = await items.by_drive_item_id("root:/Reports/2024/q1.csv:").get()
        assert by_path is not None and by_path.size == len(b"quarter,amount\nq1,100\n")
        reports = fidelity.library.resolve("Reports")
        relative = await items.by_drive_item_id(f"{reports.id}:/2024/q2.csv:").get()
        assert relative is not None and relative.name == "q2.csv"
        assert by_path.id is not None
        by_id = await items.by_drive_item_id(by_path.id).get()
        assert by_id is not None and by_id.file is not None and by_id.file.hashes is not None
        assert by_id.file.hashes.quick_xor_hash == quickxorhash(b"quarter,amount\nq1,100\n")
        # The content answer is a 302 to the files host; the SDK follows it without the token.
        content = await items.by_drive_item_id(by_path.id).content.get()
        assert content == b"quarter,amount\nq1,100\n"
        by_path_content = await items.by_drive_item_id("root:/Reports/readme.txt:").content.get()
        assert by_path_content == b"Quarterly reports"

    fidelity.run(scenario)
    files_requests = fidelity.emulator.requests.records("files")
    assert files_requests and all("authorization" not in r.headers for r in files_requests)


def test_delta_then_delta_with_the_token_it_returned(fidelity: Fidelity) -> None:
    root = fidelity.client.drives.by_drive_id(fidelity.library.id).items.by_drive_item_id("root")

    async def scenario() -> None:
        first = await root.delta.get()
        assert first is not None and first.odata_delta_link
        names = {item.name for item in first.value or []}
        assert {"Reports", "2024", "q1.csv", "q2.csv", "readme.txt"} <= names
        token = first.odata_delta_link.partition("token=")[2]
        fidelity.library.put_file("Reports/2024/q3.csv", b"quarter,amount\nq3,75\n")
        changes = await root.delta_with_token(token).get()
        assert changes is not None
        assert "q3.csv" in {item.name for item in changes.value or []}
        assert "q1.csv" not in {item.name for item in changes.value or []}

    fidelity.run(scenario)
    delta_paths = [r.path for r in fidelity.emulator.requests.records("graph") if "/delta" in r.path]
    assert any(path.endswith("/delta()") for path in delta_paths)
    assert any("delta(token=" in path for path in delta_paths)


def test_search_in_a_drive(fidelity: Fidelity) -> None:
    root = fidelity.client.drives.by_drive_id(fidelity.library.id).items.by_drive_item_id("root")

    async def scenario() -> None:
        found = await root.search_with_q("readme").get()
        assert found is not None and [item.name for item in found.value or []] == ["readme.txt"]

    fidelity.run(scenario)


def test_list_items_filtered_and_ordered_with_the_non_indexed_preference(fidelity: Fidelity) -> None:
    items = fidelity.client.sites.by_site_id(fidelity.site.id).lists.by_list_id(fidelity.invoices.id).items
    query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
        expand=["fields($select=Title,Status,Amount)"],
        filter="fields/Status eq 'Paid'",
        orderby=["fields/Amount desc"],
    )
    headers = HeadersCollection()
    headers.add("Prefer", "HonorNonIndexedQueriesWarningMayFailRandomly")

    async def scenario() -> None:
        paid = await items.get(RequestConfiguration(query_parameters=query, headers=headers))
        assert paid is not None
        titles = [item.fields.additional_data["Title"] for item in paid.value or [] if item.fields]
        assert titles == [f"INV-{i:03d}" for i in range(40, 0, -4)]
        indexed = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
            expand=["fields"], filter="fields/Amount ge 380", orderby=["fields/Amount"]
        )
        top = await items.get(RequestConfiguration(query_parameters=indexed))
        assert top is not None
        assert [item.fields.additional_data["Amount"] for item in top.value or [] if item.fields] == [380, 390, 400]

    fidelity.run(scenario)


def test_users_page_by_page_with_the_page_iterator(fidelity: Fidelity) -> None:
    client = fidelity.client
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=["id", "displayName"], top=60)

    async def scenario() -> list[User]:
        first = await client.users.get(RequestConfiguration(query_parameters=query))
        assert first is not None
        seen: list[User] = []

        def collect(user: User) -> bool:
            seen.append(user)
            return True

        iterator = PageIterator(first, client.request_adapter)
        await iterator.iterate(collect)
        return seen

    users = fidelity.run(scenario)
    assert len(users) == USERS
    assert len({user.id for user in users}) == USERS


def test_users_count_filter_and_search_with_eventual_consistency(fidelity: Fidelity) -> None:
    client = fidelity.client
    directory = fidelity.emulator.graph.users
    sales = sum(directory.entry(i)["department"] == "Sales" for i in range(USERS))

    async def scenario() -> None:
        counted = await client.users.get(
            RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    count=True, filter="department eq 'Sales'", select=["id", "department"], top=999
                ),
                headers=eventual(),
            )
        )
        assert counted is not None and counted.odata_count == sales == len(counted.value or [])
        total = await client.users.count.get(
            RequestConfiguration(
                query_parameters=CountRequestBuilder.CountRequestBuilderGetQueryParameters(), headers=eventual()
            )
        )
        assert total == USERS
        searched = await client.users.get(
            RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    search='"displayName:adele"', select=["displayName"], top=999
                ),
                headers=eventual(),
            )
        )
        assert searched is not None and searched.value
        assert all("adele" in (user.display_name or "").casefold() for user in searched.value)

    fidelity.run(scenario)


def test_groups_filtered_on_a_collection(fidelity: Fidelity) -> None:
    from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

    query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(filter="groupTypes/any(c:c eq 'Unified')")

    async def scenario() -> None:
        groups = await fidelity.client.groups.get(RequestConfiguration(query_parameters=query))
        assert groups is not None and len(groups.value or []) == (GROUPS + 1) // 2

    fidelity.run(scenario)


def relative_batch_item(request: Any, request_id: str, base_url: str) -> BatchRequestItem:
    """BatchRequestItem keeps the absolute URL, which Graph answers with 400 "Resource not found
    for the segment 'https:'"; inner URLs must be relative to the version root. Workaround from
    https://github.com/microsoftgraph/msgraph-sdk-python/issues/1015."""
    item = BatchRequestItem(request, id=request_id)
    item.url = item.url.removeprefix(base_url)
    return item


def test_a_batch_of_reads(fidelity: Fidelity) -> None:
    client = fidelity.client
    base_url = client.request_adapter.base_url
    user_id = fidelity.emulator.graph.users.id_of(7)

    async def scenario() -> dict[str, Any]:
        site_request = client.sites.by_site_id(fidelity.site.id).to_get_request_information()
        user_request = client.users.by_user_id(user_id).to_get_request_information()
        as_sent = BatchRequestItem(client.users.by_user_id(user_id).to_get_request_information(), id="absolute")
        content = BatchRequestContent(
            {
                "site": relative_batch_item(site_request, "site", base_url),
                "user": relative_batch_item(user_request, "user", base_url),
                "absolute": as_sent,
            }
        )
        response = await client.batch.post(content)
        assert response is not None and response.responses is not None
        return dict(response.responses.items())

    responses = fidelity.run(scenario)
    assert {key: item.status for key, item in responses.items()} == {"site": 200, "user": 200, "absolute": 400}


def test_writes_a_pipeline_does_create_rename_move_copy_delete(fidelity: Fidelity) -> None:
    items = fidelity.client.drives.by_drive_id(fidelity.library.id).items
    library = fidelity.library

    async def scenario() -> None:
        folder = await items.by_drive_item_id("root").children.post(
            DriveItem(name="Processed", folder=Folder(), additional_data={"@microsoft.graph.conflictBehavior": "fail"})
        )
        assert folder is not None and folder.id is not None
        source = library.put_file("Inbox/batch-1.csv", b"x,y\n")
        moved = await items.by_drive_item_id(source.id).patch(
            DriveItem(name="batch-1.done.csv", parent_reference=ItemReference(id=folder.id))
        )
        assert moved is not None and moved.id == source.id
        assert library.path_of(library.item(source.id)) == "/Processed/batch-1.done.csv"
        await items.by_drive_item_id(source.id).copy.post(_copy_body(folder.id, "batch-1.copy.csv"))
        assert library.resolve("Processed/batch-1.copy.csv").size == 4
        await items.by_drive_item_id(source.id).delete()
        assert library.child(library.item(folder.id), "batch-1.done.csv") is None

    fidelity.run(scenario)


def _copy_body(parent_id: str, name: str) -> Any:
    from msgraph.generated.drives.item.items.item.copy.copy_post_request_body import CopyPostRequestBody

    return CopyPostRequestBody(parent_reference=ItemReference(id=parent_id), name=name)


async def _create_session(fidelity: Fidelity, path: str) -> Any:
    items = fidelity.client.drives.by_drive_id(fidelity.library.id).items
    body = CreateUploadSessionPostRequestBody(
        item=DriveItemUploadableProperties(additional_data={"@microsoft.graph.conflictBehavior": "replace"})
    )
    session = await items.by_drive_item_id(f"root:/{path}:").create_upload_session.post(body)
    assert session is not None and session.upload_url and session.next_expected_ranges == ["0-"]
    return session


LARGE_FILE = bytes(range(256)) * (3 * FRAGMENT_MULTIPLE_BYTES // 256) + b"tail"


@pytest.mark.xfail(
    strict=True,
    raises=ValueError,
    reason="LargeFileUploadTask turns Graph's nextExpectedRanges ['327680-'] into '327680--' and fails "
    "parsing it on the second chunk (msgraph-core 1.5.2, large_file_upload.py). Strict: when a release "
    "fixes it, this test fails and the workaround below can go.",
)
def test_the_large_file_upload_task_uploads_in_several_chunks(fidelity: Fidelity) -> None:
    async def scenario() -> None:
        session = await _create_session(fidelity, "Uploads/task.bin")
        task = LargeFileUploadTask(
            session, fidelity.anonymous_adapter, io.BytesIO(LARGE_FILE), max_chunk_size=FRAGMENT_MULTIPLE_BYTES
        )
        await task.upload()

    fidelity.run(scenario)


def test_a_large_upload_through_the_sdks_upload_session_and_adapter(fidelity: Fidelity) -> None:
    """The workaround for the task's bugs (above, and a 400 after a one-chunk upload:
    https://github.com/microsoftgraph/msgraph-sdk-python-core/issues/718): the SDK's session,
    its models and request adapter, fragments sent in 320 KiB multiples as Graph requires."""

    async def scenario() -> DriveItem | None:
        session = await _create_session(fidelity, "Uploads/big.bin")
        result: DriveItem | None = None
        start = 0
        while start < len(LARGE_FILE):
            chunk = LARGE_FILE[start : start + FRAGMENT_MULTIPLE_BYTES]
            request = RequestInformation(Method.PUT, session.upload_url)
            request.headers.try_add("Content-Range", f"bytes {start}-{start + len(chunk) - 1}/{len(LARGE_FILE)}")
            request.set_stream_content(chunk)
            start += len(chunk)
            if start < len(LARGE_FILE):
                progress = await fidelity.anonymous_adapter.send_async(request, UploadSession, {})
                assert progress is not None and progress.next_expected_ranges == [f"{start}-"]
            else:
                result = await fidelity.anonymous_adapter.send_async(request, DriveItem, {})
        return result

    uploaded = fidelity.run(scenario)
    assert uploaded is not None and uploaded.size == len(LARGE_FILE)
    stored = fidelity.library.resolve("Uploads/big.bin")
    assert stored.id == uploaded.id and stored.quick_xor_hash == quickxorhash(LARGE_FILE)
    assert all("authorization" not in r.headers for r in fidelity.emulator.requests.records("files"))
