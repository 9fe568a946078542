"""The writes a pipeline does around its transfers: delete, create a folder, rename or move
(PATCH), and copy (202 with a monitor URL on the files host).

https://learn.microsoft.com/graph/api/driveitem-update, …/driveitem-move, …/driveitem-copy
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import ItemAddress
from airflow_provider_graphcert.testing.emulator.graph.calls import GraphCall, RouteBase, read_json
from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, invalid_request, not_implemented
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.item_moves import copy_item, move_item
from airflow_provider_graphcert.testing.emulator.graph.render import MONITOR_PATH, item_json, json_response

CONFLICT_BEHAVIOR = "@microsoft.graph.conflictBehavior"
# What PATCH on a driveItem changes here; other properties answer 501 rather than being dropped.
PATCHABLE = frozenset({"name", "parentReference", CONFLICT_BEHAVIOR})


class ItemWriteRoutes(RouteBase):
    """DELETE {item}, POST …/children, PATCH {item}, POST …/copy."""

    @staticmethod
    def require_if_match(call: GraphCall, item: Item) -> None:
        if_match = call.request.headers.get("if-match")
        if if_match and not item.matches_etag(if_match):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value")

    async def delete_item(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        self.require_if_match(call, item)
        drive.delete_item(item)
        return Response(status_code=204)

    async def create_folder(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        parent = self.resolve(drive, address)
        payload = await read_json(call.request)
        name = payload.get("name")
        if "file" in payload:
            raise not_implemented("creating a file by POST …/children (upload it with PUT …/content)")
        if not isinstance(name, str) or "folder" not in payload:
            raise invalid_request("Creating an item needs a 'name' and a 'folder' facet.")
        conflict = str(payload.get(CONFLICT_BEHAVIOR) or call.options.get(CONFLICT_BEHAVIOR.lower()) or "fail")
        folder = drive.create_folder(parent, name, conflict=conflict, actor=call.actor)
        return json_response(item_json(self.state, folder, self.files_base()), 201)

    async def update_item(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        payload = await read_json(call.request)
        unsupported = sorted(key for key in payload if key not in PATCHABLE and not key.startswith("@odata."))
        if unsupported:
            raise not_implemented(f"PATCH of the driveItem propert{'ies' if len(unsupported) > 1 else 'y'} "
                                  f"{', '.join(repr(key) for key in unsupported)}")  # fmt: skip
        name = payload.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid_request("'name' must be a string.")
        parent = self.parent_from_reference(drive, payload.get("parentReference"), same_drive=True)
        self.require_if_match(call, item)
        conflict = str(payload.get(CONFLICT_BEHAVIOR) or call.options.get(CONFLICT_BEHAVIOR.lower()) or "fail")
        moved = move_item(drive, item, parent=parent, name=name, conflict=conflict, actor=call.actor)
        return json_response(item_json(self.state, moved, self.files_base()), headers={"ETag": moved.etag})

    async def copy_item(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        item = self.resolve(drive, address)
        payload = await read_json(call.request)
        # Options at their defaults (as the SDKs send them) change nothing; set, they are not modelled.
        unsupported = sorted(
            key
            for key, value in payload.items()
            if key not in {"name", "parentReference", CONFLICT_BEHAVIOR} and value not in (None, False)
        )
        if unsupported:
            raise not_implemented(f"copy with {', '.join(repr(key) for key in unsupported)}")
        parent = self.parent_from_reference(drive, payload.get("parentReference"), same_drive=False)
        if parent is None:
            if item.parent_id is None:
                raise invalid_request("The root of a drive cannot be copied.")
            parent = drive.item(item.parent_id)
        name = payload.get("name", item.name)
        if not isinstance(name, str):
            raise invalid_request("'name' must be a string.")
        conflict = str(payload.get(CONFLICT_BEHAVIOR) or call.options.get(CONFLICT_BEHAVIOR.lower()) or "fail")
        created = copy_item(self.state, item, parent=parent, name=name, conflict=conflict, actor=call.actor)
        # Copies finish at once here; the monitor URL reports the finished job (docs/testing-your-dags.md).
        monitor = f"{self.files_base()}{MONITOR_PATH}/{self.state.copy_monitor_token(created)}"
        return Response(status_code=202, headers={"Location": monitor})

    def parent_from_reference(self, drive: Drive, reference: Any, *, same_drive: bool) -> Item | None:
        """parentReference {driveId?, id? | path?} -> the folder it names (None when absent)."""
        if reference is None:
            return None
        if not isinstance(reference, dict):
            raise invalid_request("'parentReference' must be an object.")
        target = drive
        if reference.get("driveId") and reference["driveId"] != drive.id:
            if same_drive:
                raise invalid_request("An item cannot be moved to another drive; copy it instead.")
            target = self.state.drive(str(reference["driveId"]))
        if reference.get("id"):
            return target.item(str(reference["id"]))
        path = reference.get("path")
        if isinstance(path, str):
            # '/drives/{id}/root:/a/b' or '/drive/root:/a/b'
            _, colon, relative = path.partition("root:")
            return target.resolve(relative) if colon else target.root
        raise invalid_request("'parentReference' needs an 'id' or a 'path'.")
