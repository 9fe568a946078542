"""Graph's JSON shapes: errors and correlation headers (B1), driveItems (B10), drives, sites, lists (B11)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, Identity
from airflow_provider_graphcert.testing.emulator.graph.drives import DeltaEntry, Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.sites import ListItem, SharePointList, Site
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState
from airflow_provider_graphcert.testing.emulator.graph.uploads import UploadSession

# B1: the content type Graph answers JSON with.
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
# B1: what a 401 from Graph carries, so clients can tell Graph's 401 from anything else.
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
DOWNLOAD_PATH = "/_layouts/15/download.aspx"
UPLOAD_PATH = "/_api/v2.0/uploadSession"
# Where long-running actions (copy) report their status, like SharePoint's /_api/v2.0/monitor/{id}.
MONITOR_PATH = "/_api/v2.0/monitor"
_STREAM_CHUNK_BYTES = 1024 * 1024


# -- rendering helpers -------------------------------------------------------------------------


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=ODATA_JSON)


def error_body(
    code: str, message: str, *, request_id: str, client_request_id: str | None, inner_code: str | None = None
) -> dict[str, Any]:
    """B1: {"error":{"code","message","innerError":{"date" (no Z),"request-id","client-request-id"}}}."""
    inner: dict[str, Any] = {}
    if inner_code is not None:
        inner["code"] = inner_code
    inner["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    inner["request-id"] = request_id
    inner["client-request-id"] = client_request_id or request_id
    return {"error": {"code": code, "message": message, "innerError": inner}}


def error_response(exc: GraphError, request_id: str, client_request_id: str | None) -> Response:
    body = error_body(
        exc.code, exc.message, request_id=request_id, client_request_id=client_request_id, inner_code=exc.inner_code
    )
    return json_response(body, exc.status, exc.headers)


def stamp(response: Response, request_id: str, client_request_id: str | None) -> Response:
    """B1: correlation headers on every response."""
    response.headers["request-id"] = request_id
    if client_request_id is not None:
        response.headers["client-request-id"] = client_request_id
    response.headers["Date"] = format_datetime(dt.datetime.now(dt.UTC), usegmt=True)
    response.headers["x-ms-ags-diagnostic"] = json.dumps(
        {"ServerInfo": {"DataCenter": "Local Emulator", "Slice": "E", "Ring": "0", "ScaleUnit": "000"}}
    )
    return response


def select_properties(data: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    """$select on top-level properties; OData names are matched without regard to case."""
    if not select:
        return data
    wanted = {name.casefold() for name in select}
    return {key: value for key, value in data.items() if key.casefold() in wanted}


def identity_json(identity: Identity) -> Identity:
    return {key: dict(value) for key, value in identity.items()}


def actor_from_claims(claims: Mapping[str, Any]) -> Identity:
    """createdBy/lastModifiedBy of what an app writes: the application plus SharePoint's app user."""
    app_id = str(claims.get("appid") or claims.get("azp") or "00000000-0000-0000-0000-000000000000")
    name = str(claims.get("app_displayname") or "Emulated application")
    return {"application": {"id": app_id, "displayName": name}, "user": {"displayName": "SharePoint App"}}


# -- driveItem JSON (B10) ------------------------------------------------------------------------


def item_json(state: GraphState, item: Item, files_base: str, *, delta: bool = False) -> dict[str, Any]:
    drive = item.drive
    path = drive.path_of(item)
    data: dict[str, Any] = {}
    if not item.is_folder:
        data["@microsoft.graph.downloadUrl"] = download_url(state, item, files_base)
    data |= {
        "createdDateTime": iso(item.created),
        "eTag": item.etag,
        "id": item.id,
        "lastModifiedDateTime": iso(item.modified),
        "name": item.name,
        "webUrl": drive.site.web_url_for(drive.url_name + path) if path else drive.web_url,
        "size": item.size,
        "createdBy": identity_json(item.created_by),
        "lastModifiedBy": identity_json(item.modified_by),
        "parentReference": parent_reference(item, delta=delta),
        "fileSystemInfo": {"createdDateTime": iso(item.created), "lastModifiedDateTime": iso(item.modified)},
    }
    if item.is_folder:
        data["folder"] = {"childCount": item.child_count}
    else:
        # B4: on SharePoint, delta omits cTag for created/modified items.
        if not delta:
            data["cTag"] = item.ctag
        hashes = {"quickXorHash": item.quick_xor_hash}
        data["file"] = {"mimeType": item.mime_type, "hashes": hashes}
    if item.is_root:
        data["root"] = {}
    return data


def parent_reference(item: Item, *, delta: bool) -> dict[str, Any]:
    drive = item.drive
    reference: dict[str, Any] = {"driveType": "documentLibrary", "driveId": drive.id}
    if item.parent_id is None:
        return reference
    parent = drive.items[item.parent_id]
    reference["id"] = parent.id
    reference["name"] = drive.name if parent.is_root else parent.name
    if not delta:
        # B4: parentReference.path is absent in delta; elsewhere it is percent-encoded.
        reference["path"] = f"/drives/{drive.id}/root:" + quote(drive.path_of(parent))
    reference["siteId"] = drive.site.id
    return reference


def tombstone_json(drive: Drive, entry: DeltaEntry) -> dict[str, Any]:
    """B4: a deleted item has the deleted facet and, on SharePoint, no name or cTag."""
    reference: dict[str, Any] = {"driveType": "documentLibrary", "driveId": drive.id}
    if entry.parent_id is not None:
        reference["id"] = entry.parent_id
    reference["siteId"] = drive.site.id
    data: dict[str, Any] = {"id": entry.id, "deleted": {"state": "deleted"}, "parentReference": reference}
    data["folder" if entry.is_folder else "file"] = {}
    return data


def download_url(state: GraphState, item: Item, files_base: str) -> str:
    return f"{files_base}{DOWNLOAD_PATH}?UniqueId={item.id}&tempauth={state.download_token(item)}"


def upload_url(state: GraphState, session: UploadSession, files_base: str) -> str:
    return f"{files_base}{UPLOAD_PATH}?guid={session.id}&tempauth={state.upload_auth(session)}"


def drive_json(drive: Drive) -> dict[str, Any]:
    return {
        "createdDateTime": iso(drive.created),
        "description": drive.description,
        "id": drive.id,
        "lastModifiedDateTime": iso(drive.root.modified),
        "name": drive.name,
        "webUrl": drive.web_url,
        "driveType": "documentLibrary",
        "createdBy": {"user": {"displayName": "System Account"}},
        "quota": {
            "deleted": 0,
            "remaining": drive.quota_total - drive.used,
            "state": "normal",
            "total": drive.quota_total,
            "used": drive.used,
        },
    }


def site_json(site: Site) -> dict[str, Any]:
    data: dict[str, Any] = {
        "createdDateTime": iso(site.created),
        "description": site.description,
        "id": site.id,
        "lastModifiedDateTime": iso(site.created),
        "name": site.name,
        "webUrl": site.web_url,
        "displayName": site.display_name,
        "siteCollection": {"hostname": site.hostname},
    }
    if site.is_root:
        data["root"] = {}
    return data


def list_json(sp_list: SharePointList, *, with_columns: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "@odata.etag": f'"{sp_list.id},1"',
        "createdDateTime": iso(sp_list.created),
        "description": sp_list.description,
        "eTag": f'"{sp_list.id},1"',
        "id": sp_list.id,
        "lastModifiedDateTime": iso(sp_list.modified),
        "name": sp_list.name,
        "webUrl": sp_list.web_url,
        "displayName": sp_list.display_name,
        "parentReference": {"siteId": sp_list.site.id},
        "list": {"contentTypesEnabled": False, "hidden": False, "template": "genericList"},
    }
    if with_columns:
        data["columns"] = [column_json(name) for name in ["Title", *sp_list.columns]]
    return data


def column_json(name: str) -> dict[str, Any]:
    return {"columnGroup": "Custom Columns", "displayName": name, "name": name, "text": {}}


def list_item_fields(sp_list: SharePointList, item: ListItem) -> dict[str, Any]:
    """B11: 'fields' as SharePoint returns them: the column values plus its system columns."""
    title = item.fields.get("Title", "")
    return {
        "@odata.etag": item.etag,
        **item.fields,
        "id": item.id,
        "ContentType": "Item",
        "Modified": iso(item.modified),
        "Created": iso(item.created),
        "AuthorLookupId": "1",
        "EditorLookupId": "1",
        "_UIVersionString": f"{item.version}.0",
        "Attachments": False,
        "Edit": "",
        "LinkTitleNoMenu": title,
        "LinkTitle": title,
        "ItemChildCount": "0",
        "FolderChildCount": "0",
    }


def list_item_json(sp_list: SharePointList, item: ListItem, expand: Mapping[str, list[str] | None]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "@odata.etag": item.etag,
        "createdDateTime": iso(item.created),
        "eTag": item.etag,
        "id": item.id,
        "lastModifiedDateTime": iso(item.modified),
        "webUrl": f"{sp_list.web_url}/DispForm.aspx?ID={item.id}",
        "createdBy": {"user": {"displayName": "System Account"}},
        "lastModifiedBy": {"user": {"displayName": "System Account"}},
        "parentReference": {"id": sp_list.id, "siteId": sp_list.site.id},
        "contentType": {"id": "0x0100" + uuid.UUID(sp_list.id).hex.upper(), "name": "Item"},
    }
    if "fields" in expand:
        fields = list_item_fields(sp_list, item)
        wanted = expand["fields"]
        if wanted:
            fields = {"@odata.etag": item.etag, **select_properties(fields, wanted)}
        data["fields"] = fields
    return data
