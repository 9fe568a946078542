"""Uploads into a drive: simple PUT …/content (docs/microsoft-rules.md §B8), upload sessions (§B9)
and the commit of a finished session by ``@microsoft.graph.sourceUrl`` after a name conflict.

https://learn.microsoft.com/graph/api/driveitem-createuploadsession#handle-upload-conflicts
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import ItemAddress
from airflow_provider_graphcert.testing.emulator.graph.blobs import StoredBody
from airflow_provider_graphcert.testing.emulator.graph.calls import GraphCall, RouteBase, read_json, receive_body
from airflow_provider_graphcert.testing.emulator.graph.common import (
    SIMPLE_UPLOAD_MAX_BYTES,
    GraphError,
    invalid_request,
    not_implemented,
    split_path,
)
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.office import stored_as_sharepoint_would
from airflow_provider_graphcert.testing.emulator.graph.render import iso_millis, item_json, json_response, upload_url

SOURCE_URL = "@microsoft.graph.sourceUrl"
CONFLICT_BEHAVIOR = "@microsoft.graph.conflictBehavior"
# What createUploadSession's body may hold here; anything else (description, fileSystemInfo, …)
# answers 501 instead of being dropped.
SESSION_BODY = frozenset({"item", "deferCommit", "@odata.type"})
SESSION_ITEM = frozenset({CONFLICT_BEHAVIOR, "fileSize", "name", "@odata.type"})


class UploadRoutes(RouteBase):
    """PUT …/content, POST …/createUploadSession and PUT {item} with a sourceUrl."""

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
            raise GraphError(413, "requestTooLarge", f"Simple uploads are limited to {SIMPLE_UPLOAD_MAX_BYTES} bytes.")
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
        stored = stored_as_sharepoint_would(
            self.state, drive, target.name if isinstance(target, Item) else target[2], body
        )
        try:
            with self.state.lock:
                if isinstance(target, Item):
                    self.check_if_match(call, target)
                    outcome = drive.replace_content(target, stored, actor=call.actor), False
                else:
                    base, folders, name = target
                    self.check_if_match(call, drive.child(base, name) if not folders else None)
                    parent = drive.ensure_parent(base, folders, call.actor)
                    outcome = drive.commit_file(parent, name, stored, conflict=conflict, actor=call.actor)
        except BaseException:
            if stored is not body:
                stored.path.unlink(missing_ok=True)
            raise
        if stored is not body:
            body.path.unlink(missing_ok=True)
        return outcome

    async def create_upload_session(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        payload = await read_json(call.request)
        item_props = payload.get("item") or {}
        if not isinstance(item_props, dict):
            raise invalid_request("'item' must be an object.")
        unsupported = [
            *(f"'{key}'" for key, value in payload.items() if key not in SESSION_BODY and value is not None),
            *(f"item.'{key}'" for key, value in item_props.items() if key not in SESSION_ITEM and value is not None),
        ]
        if unsupported:
            raise not_implemented(f"createUploadSession with {', '.join(sorted(unsupported))}")
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

    async def commit_from_source_url(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        """PUT {item path} {"@microsoft.graph.sourceUrl": uploadUrl, conflictBehavior}: commit a
        complete session whose last fragment met a name conflict, under a new conflict rule."""
        payload = await read_json(call.request)
        source = payload.get(SOURCE_URL)
        if not isinstance(source, str):
            raise invalid_request(f"The request body needs '{SOURCE_URL}' (the upload session's uploadUrl).")
        query = parse_qs(urlsplit(source).query)
        session = self.state.upload_session(query.get("guid", [""])[0], query.get("tempauth", [""])[0])
        if session.drive is not drive:
            raise invalid_request("The upload session belongs to another drive.")
        conflict = str(payload.get(CONFLICT_BEHAVIOR) or call.options.get(CONFLICT_BEHAVIOR.lower()) or "fail")
        target = self.upload_target(drive, address)
        folders: list[str] = []
        if isinstance(target, Item):
            # The usual case: the name that conflicted is taken, so the path names that file.
            if target.parent_id is None:
                raise invalid_request("The root of a drive cannot be the target of an upload.")
            parent, name = drive.item(target.parent_id), target.name
        else:
            parent, folders, name = target
        outcome = self.state.commit_upload_as(
            session, parent=parent, missing_folders=folders, name=str(payload.get("name") or name), conflict=conflict
        )
        assert outcome.item is not None
        return json_response(item_json(self.state, outcome.item, self.files_base()), 201 if outcome.created else 200)
