"""Drives and driveItems: metadata, children, content, uploads (B7, B8, B9) and delta (B4)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import ItemAddress, parse_item_address
from airflow_provider_graphcert.testing.emulator.graph.blobs import StoredBody
from airflow_provider_graphcert.testing.emulator.graph.calls import (
    FILES_READ_ROLES,
    FILES_WRITE_ROLES,
    GraphCall,
    RouteBase,
    method_not_allowed,
    read_json,
    receive_body,
    segment_not_found,
)
from airflow_provider_graphcert.testing.emulator.graph.common import (
    DELTA_DEFAULT_PAGE_SIZE,
    DRIVE_DEFAULT_PAGE_SIZE,
    DRIVE_MAX_PAGE_SIZE,
    SIMPLE_UPLOAD_MAX_BYTES,
    DeltaTokenExpired,
    GraphError,
    invalid_request,
    split_path,
)
from airflow_provider_graphcert.testing.emulator.graph.drives import DeltaCursor, DeltaEntry, Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    decode_skiptoken,
    encode_skiptoken,
    link_with,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.render import (
    download_url,
    drive_json,
    iso_millis,
    item_json,
    json_response,
    select_properties,
    tombstone_json,
    upload_url,
)


class DriveRoutes(RouteBase):
    """/drives/{id}/... and /sites/{id}/drive(s)/...: items by id, path or alias."""

    async def drives(self, call: GraphCall) -> Response:
        drive_id, slash, rest = call.request.path_params["rest"].partition("/")
        call.require(FILES_READ_ROLES)
        return await self.drive_resource(call, self.state.drive(drive_id), slash + rest)

    async def drive_resource(self, call: GraphCall, drive: Drive, rest: str) -> Response:
        if rest == "":
            call.require(FILES_READ_ROLES)
            self._only(call, "GET")
            return json_response(select_properties(drive_json(drive), parse_select(call.options)))
        address = parse_item_address(rest.removeprefix("/"))
        if address is None or not rest.startswith("/"):
            raise segment_not_found(rest.strip("/").split("/")[0])
        handler = self._item_handlers().get((address.action, call.method))
        if handler is None:
            raise method_not_allowed()
        writes = call.method not in {"GET", "HEAD"}
        call.require(FILES_WRITE_ROLES if writes else FILES_READ_ROLES)
        return await handler(call, drive, address)

    def _item_handlers(
        self,
    ) -> dict[tuple[str | None, str], Callable[[GraphCall, Drive, ItemAddress], Awaitable[Response]]]:
        return {
            (None, "GET"): self.get_item,
            (None, "HEAD"): self.get_item,
            (None, "DELETE"): self.delete_item,
            ("children", "GET"): self.list_children,
            ("children", "POST"): self.create_folder,
            ("content", "GET"): self.download_redirect,
            ("content", "PUT"): self.simple_upload,
            ("createUploadSession", "POST"): self.create_upload_session,
            ("delta", "GET"): self.delta,
        }

    @staticmethod
    def resolve(drive: Drive, address: ItemAddress) -> Item:
        base = drive.item(address.item_id) if address.item_id is not None else drive.root
        return drive.resolve(address.path, base=base) if address.path is not None else base

    def files_base(self) -> str:
        return self.files_url().rstrip("/")

    async def get_item(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        none_match = call.request.headers.get("if-none-match")
        if none_match and item.matches_etag(none_match):
            return Response(status_code=304, headers={"ETag": item.etag})
        data = item_json(self.state, item, self.files_base())
        return json_response(select_properties(data, parse_select(call.options)), headers={"ETag": item.etag})

    async def delete_item(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        if_match = call.request.headers.get("if-match")
        if if_match and not item.matches_etag(if_match):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value")
        drive.delete_item(item)
        return Response(status_code=204)

    async def list_children(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        folder = self.resolve(drive, address)
        top = parse_top(call.options, DRIVE_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        after = decode_skiptoken(self.state, f"children:{folder.id}", call.options.get("skiptoken"))
        page = drive.children_page(folder, after=after, top=top)
        select = parse_select(call.options)
        files_base = self.files_base()
        body: dict[str, Any] = {
            "value": [select_properties(item_json(self.state, child, files_base), select) for child in page.items]
        }
        if page.next_after is not None:
            token = encode_skiptoken(self.state, f"children:{folder.id}", page.next_after)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        return json_response(body)

    async def create_folder(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        parent = self.resolve(drive, address)
        payload = await read_json(call.request)
        name = payload.get("name")
        if not isinstance(name, str) or "folder" not in payload:
            raise invalid_request("Creating an item needs a 'name' and a 'folder' facet.")
        conflict = str(payload.get("@microsoft.graph.conflictBehavior", "fail"))
        folder = drive.create_folder(parent, name, conflict=conflict, actor=call.actor)
        return json_response(item_json(self.state, folder, self.files_base()), 201)

    async def download_redirect(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        if item.is_folder:
            raise invalid_request("A folder has no content to download.")
        none_match = call.request.headers.get("if-none-match")
        if none_match and item.matches_etag(none_match):
            return Response(status_code=304, headers={"ETag": item.etag})
        return Response(status_code=302, headers={"Location": download_url(self.state, item, self.files_base())})

    # -- uploads (B8, B9) ----------------------------------------------------------------------

    def upload_target(self, drive: Drive, address: ItemAddress) -> tuple[Item, list[str], str] | Item:
        """An existing item to replace, or (deepest existing folder, folders to create, new name)."""
        base = self.resolve(drive, ItemAddress(address.item_id, None, None))
        if address.path is None:
            return base
        segments = split_path(address.path)
        if not segments:
            raise invalid_request("The upload path needs a file name.")
        parent = base
        for index, segment in enumerate(segments[:-1]):
            child = drive.child(parent, segment)
            if child is None:
                return parent, segments[index:-1], segments[-1]
            if not child.is_folder:
                raise invalid_request(f"{segment!r} is a file, so it cannot contain items.")
            parent = child
        return parent, [], segments[-1]

    @staticmethod
    def check_if_match(call: GraphCall, target: Item | None) -> None:
        if_match = call.request.headers.get("if-match")
        if if_match and (target is None or not target.matches_etag(if_match)):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value")
        none_match = call.request.headers.get("if-none-match")
        if none_match and target is not None and target.matches_etag(none_match):
            raise GraphError(412, "resourceModified", "The item matches the If-None-Match precondition.")

    async def simple_upload(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        declared = call.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > SIMPLE_UPLOAD_MAX_BYTES:
            raise GraphError(
                413, "requestTooLarge", f"Simple uploads are limited to {SIMPLE_UPLOAD_MAX_BYTES} bytes (reference B8)."
            )
        target = self.upload_target(drive, address)
        conflict = call.options.get("@microsoft.graph.conflictbehavior", "replace")
        writer = self.state.new_blob(max_size=SIMPLE_UPLOAD_MAX_BYTES)
        try:
            failure = await receive_body(call.request, writer.write)
        except BaseException:
            writer.discard()  # the client went away mid-body: no orphan blob on disk
            raise
        if failure is not None:
            writer.discard()
            raise failure
        body = StoredBody.from_writer(writer)
        try:
            item, created = self.commit_simple(call, drive, target, body, conflict)
        except BaseException:
            body.path.unlink(missing_ok=True)
            raise
        return json_response(item_json(self.state, item, self.files_base()), 201 if created else 200)

    def commit_simple(
        self, call: GraphCall, drive: Drive, target: tuple[Item, list[str], str] | Item, body: StoredBody, conflict: str
    ) -> tuple[Item, bool]:
        with self.state.lock:
            if isinstance(target, Item):
                self.check_if_match(call, target)
                return drive.replace_content(target, body, actor=call.actor), False
            base, folders, name = target
            self.check_if_match(call, drive.child(base, name) if not folders else None)
            parent = drive.ensure_parent(base, folders, call.actor)
            return drive.commit_file(parent, name, body, conflict=conflict, actor=call.actor)

    async def create_upload_session(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        payload = await read_json(call.request)
        item_props = payload.get("item") or {}
        if not isinstance(item_props, dict):
            raise invalid_request("'item' must be an object.")
        conflict = str(
            item_props.get("@microsoft.graph.conflictBehavior")
            or call.options.get("@microsoft.graph.conflictbehavior")
            or "fail"
        )
        declared = item_props.get("fileSize")
        if declared is not None and (not isinstance(declared, int) or declared < 0):
            raise invalid_request("'fileSize' must be a non-negative integer.")
        target = self.upload_target(drive, address)
        if isinstance(target, Item):
            if target.is_folder:
                raise invalid_request("An upload session cannot replace a folder.")
            self.check_if_match(call, target)
            parent, name, replace = drive.items[target.parent_id or ""], target.name, target
            folders: list[str] = []
        else:
            (parent, folders, name), replace = target, None
            self.check_if_match(call, drive.child(parent, name) if not folders else None)
        session = self.state.create_upload_session(
            drive,
            parent=parent,
            missing_folders=folders,
            name=name,
            conflict=conflict,
            actor=call.actor,
            replace_item=replace,
            declared_size=declared,
            defer_commit=bool(payload.get("deferCommit")),
        )
        return json_response(
            {
                "uploadUrl": upload_url(self.state, session, self.files_base()),
                "expirationDateTime": iso_millis(session.expires),
                "nextExpectedRanges": session.next_expected_ranges,
            }
        )

    # -- delta (B4) ----------------------------------------------------------------------------

    async def delta(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        if not item.is_root:
            raise invalid_request("SharePoint supports delta only on the root of a drive.")
        token = call.options.get("token")
        if token == "latest":
            link = link_with(call.request, {"token": drive.delta_latest_token()})
            return json_response({"value": [], "@odata.deltaLink": link})
        try:
            cursor = self.delta_cursor(drive, token)
        except DeltaTokenExpired as exc:
            exc.headers["Location"] = link_with(call.request, {}, drop=("token", "skiptoken"))
            raise
        top = parse_top(call.options, DELTA_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        include_parents = "deltaexcludeparent" not in call.request.headers
        page = drive.delta_page(cursor, top=top, include_parents=include_parents)
        select = parse_select(call.options)
        files_base = self.files_base()
        value = [select_properties(self.delta_entry_json(drive, entry, files_base), select) for entry in page.entries]
        body: dict[str, Any] = {"value": value}
        if page.next_token is not None:
            body["@odata.nextLink"] = link_with(call.request, {"token": page.next_token})
        if page.delta_token is not None:
            body["@odata.deltaLink"] = link_with(call.request, {"token": page.delta_token})
        return json_response(body)

    @staticmethod
    def delta_cursor(drive: Drive, token: str | None) -> DeltaCursor:
        if token is None:
            return drive.delta_first()
        moment = parse_timestamp(token)
        if moment is not None:
            return drive.delta_from_time(moment)
        return drive.decode_delta_token(token)

    def delta_entry_json(self, drive: Drive, entry: DeltaEntry, files_base: str) -> dict[str, Any]:
        if isinstance(entry, Item):
            return item_json(self.state, entry, files_base, delta=True)
        return tombstone_json(drive, entry)


def parse_timestamp(token: str) -> dt.datetime | None:
    """B4: ?token=<ISO timestamp> (a '+' may arrive as a space, '+8:00' has a one-digit hour)."""
    if not re.match(r"\d{4}-\d{2}-\d{2}T", token):
        return None
    text = token.replace(" ", "+").replace("Z", "+00:00")
    text = re.sub(r"([+-])(\d):", r"\g<1>0\2:", text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid_request(f"Invalid delta timestamp {token!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
