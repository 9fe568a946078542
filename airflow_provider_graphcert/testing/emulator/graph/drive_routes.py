"""Drives and driveItems, routed by Graph's addressing grammar (``addressing``): metadata, children
(with $orderby, $select, $expand=children), content (docs/microsoft-rules.md §B7), and dispatch
to the uploads, delta/search and write handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import ItemAddress, parse_item_address, parse_segment
from airflow_provider_graphcert.testing.emulator.graph.calls import (
    FILES_READ_ROLES,
    FILES_WRITE_ROLES,
    GraphCall,
    method_not_allowed,
    segment_not_found,
)
from airflow_provider_graphcert.testing.emulator.graph.common import (
    DRIVE_DEFAULT_PAGE_SIZE,
    DRIVE_MAX_PAGE_SIZE,
    invalid_request,
    item_not_found,
    not_implemented,
)
from airflow_provider_graphcert.testing.emulator.graph.delta_routes import DeltaRoutes
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.item_write_routes import ItemWriteRoutes
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    check_options,
    collection_context,
    decode_skiptoken,
    encode_skiptoken,
    link_with,
    parse_expand,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.odata_filter import parse_orderby, sort_entities
from airflow_provider_graphcert.testing.emulator.graph.render import (
    download_url,
    drive_json,
    item_json,
    json_response,
    select_properties,
)
from airflow_provider_graphcert.testing.emulator.graph.upload_routes import UploadRoutes

ItemHandler = Callable[[GraphCall, Drive, ItemAddress], Awaitable[Response]]

# Segments Graph has after a driveItem that the emulator does not implement: 501, never a 400.
UNIMPLEMENTED_ITEM_SEGMENTS = frozenset(
    {"thumbnails", "versions", "permissions", "invite", "createLink", "checkin", "checkout", "discardCheckout",
     "preview", "restore", "follow", "unfollow", "workbook", "listItem", "analytics", "subscriptions",
     "extensions", "retentionLabel", "assignSensitivityLabel", "extractSensitivityLabels", "permanentDelete",
     "getActivitiesByInterval", "sharedWithMe", "recent", "$value"}
)  # fmt: skip
# …and after a drive.
UNIMPLEMENTED_DRIVE_SEGMENTS = frozenset(
    {"list", "special", "recent", "sharedWithMe", "following", "bundles", "activities", "items"}
)  # fmt: skip
ITEM_SEGMENTS = frozenset({"children", "content", "createUploadSession", "delta", "search", "copy"})
# $orderby on children: the driveItem properties Graph sorts by.
CHILDREN_ORDERBY = {"name": "name", "size": "size", "lastmodifieddatetime": "modified", "createddatetime": "created"}
# $expand=children inlines at most this many children (Graph pages the rest away too).
EXPANDED_CHILDREN_LIMIT = 200


class DriveRoutes(ItemWriteRoutes, UploadRoutes, DeltaRoutes):
    """/drives/{id}/... and /sites/{id}/drive(s)/...: items by id, path or alias."""

    async def drive_collection(self, call: GraphCall) -> Response:
        raise not_implemented("listing every drive of the tenant (GET /drives)")

    async def drives(self, call: GraphCall) -> Response:
        drive_id, slash, rest = call.request.path_params["rest"].partition("/")
        call.require(FILES_READ_ROLES)
        return await self.drive_resource(call, self.state.drive(drive_id), slash + rest)

    async def drive_resource(self, call: GraphCall, drive: Drive, rest: str) -> Response:
        if rest == "":
            call.require(FILES_READ_ROLES)
            self._only(call, "GET")
            check_options(call.options, {"select"}, "a drive")
            return json_response(select_properties(drive_json(drive), parse_select(call.options)))
        if not rest.startswith("/"):
            raise segment_not_found(rest.split("/")[0])
        address = parse_item_address(rest[1:])
        if address is None:
            name = parse_segment(rest[1:])[0].name
            if name in UNIMPLEMENTED_DRIVE_SEGMENTS:
                raise not_implemented(f"/drives/{{id}}/{name}")
            raise segment_not_found(name)
        writes = call.method not in {"GET", "HEAD"}
        call.require(FILES_WRITE_ROLES if writes else FILES_READ_ROLES)
        address = self.follow_child_segment(drive, address)
        if address.action in UNIMPLEMENTED_ITEM_SEGMENTS:
            raise not_implemented(f"the driveItem segment '{address.action}'")
        if address.rest:
            raise segment_not_found(address.rest.strip("/").split("/")[0])
        if address.action is not None and address.action not in ITEM_SEGMENTS:
            raise segment_not_found(address.action)
        handler = self.item_handlers().get((address.action, call.method))
        if handler is None:
            raise method_not_allowed()
        return await handler(call, drive, address)

    def follow_child_segment(self, drive: Drive, address: ItemAddress) -> ItemAddress:
        """…/children/{child-id}[/…] addresses that child: re-parse it as items/{child-id}[/…]."""
        while address.action == "children" and address.rest.startswith("/"):
            child_id, slash, more = address.rest[1:].partition("/")
            child = drive.item(child_id)
            if child.parent_id != self.resolve(drive, address).id:
                raise item_not_found(f"Item not found: {child_id}")
            followed = parse_item_address(f"items/{child_id}{slash}{more}")
            if followed is None:
                raise segment_not_found(more.split("/")[0])
            address = followed
        return address

    def item_handlers(self) -> dict[tuple[str | None, str], ItemHandler]:
        return {
            (None, "GET"): self.get_item,
            (None, "HEAD"): self.get_item,
            (None, "DELETE"): self.delete_item,
            (None, "PATCH"): self.update_item,
            (None, "PUT"): self.commit_from_source_url,
            ("children", "GET"): self.list_children,
            ("children", "POST"): self.create_folder,
            ("content", "GET"): self.download_redirect,
            ("content", "HEAD"): self.download_redirect,
            ("content", "PUT"): self.simple_upload,
            ("createUploadSession", "POST"): self.create_upload_session,
            ("delta", "GET"): self.delta,
            ("search", "GET"): self.search,
            ("copy", "POST"): self.copy_item,
        }

    async def get_item(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        check_options(call.options, {"select", "expand"}, "a driveItem")
        expand = parse_expand(call.options)
        for name in expand:
            if name != "children":
                raise not_implemented(f"$expand={name} on a driveItem")
        item = self.resolve(drive, address)
        none_match = call.request.headers.get("if-none-match")
        if none_match and item.matches_etag(none_match):
            return Response(status_code=304, headers={"ETag": item.etag})
        files_base = self.files_base()
        data = select_properties(item_json(self.state, item, files_base), parse_select(call.options))
        if "children" in expand and item.is_folder:
            page = drive.children_page(item, after=None, top=EXPANDED_CHILDREN_LIMIT)
            wanted = expand["children"]
            data["children"] = [select_properties(item_json(self.state, c, files_base), wanted) for c in page.items]
        return json_response(data, headers={"ETag": item.etag})

    async def list_children(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        check_options(call.options, {"select", "top", "skiptoken", "orderby"}, "driveItem children")
        folder = self.resolve(drive, address)
        if not folder.is_folder:
            raise invalid_request("Only folders have children.")
        top = parse_top(call.options, DRIVE_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        kind = f"children:{folder.id}:{call.options.get('orderby', '')}"
        position = decode_skiptoken(self.state, kind, call.options.get("skiptoken"))
        children, following = self.children_slice(drive, folder, call.options.get("orderby"), position, top)
        select = parse_select(call.options)
        files_base = self.files_base()
        body: dict[str, Any] = {
            "@odata.context": collection_context(call.request, "driveItem"),
            "value": [select_properties(item_json(self.state, child, files_base), select) for child in children],
        }
        if following is not None:
            token = encode_skiptoken(self.state, kind, following)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        return json_response(body)

    @staticmethod
    def children_slice(
        drive: Drive, folder: Item, orderby: str | None, position: Any, top: int
    ) -> tuple[list[Item], Any]:
        """A page of children and where the next starts. By name (the default) the position is
        the last name, so changes between pages neither skip nor repeat; otherwise an offset."""
        if not orderby:
            page = drive.children_page(folder, after=position, top=top)
            return page.items, page.next_after
        keys = parse_orderby(orderby)
        for key in keys:
            if key.path.casefold() not in CHILDREN_ORDERBY:
                raise not_implemented(f"$orderby={key.path} on driveItem children")
        with drive.lock:
            children = [drive.items[child_id] for child_id in folder.children.values()]
        ordered = sort_entities(children, keys, lambda item, path: getattr(item, CHILDREN_ORDERBY[path.casefold()]))
        offset = int(position or 0)
        following = offset + top if offset + top < len(ordered) else None
        return ordered[offset : offset + top], following

    async def download_redirect(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        check_options(call.options, set(), "driveItem content")
        item = self.resolve(drive, address)
        if item.is_folder:
            raise invalid_request("A folder has no content to download.")
        none_match = call.request.headers.get("if-none-match")
        if none_match and item.matches_etag(none_match):
            return Response(status_code=304, headers={"ETag": item.etag})
        return Response(status_code=302, headers={"Location": download_url(self.state, item, self.files_base())})
