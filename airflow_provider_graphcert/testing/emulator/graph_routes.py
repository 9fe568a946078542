"""HTTP face of the emulated Graph (mounted under /v1.0) and of the pre-authenticated files origin.

Routes only parse requests and render JSON; ``graph_state`` decides every outcome. What is
rendered follows Microsoft's documentation (reference part B): error shape and correlation
headers (B1), paging with absolute ``@odata.nextLink`` (B3), drive delta (B4), JSON batching (B5),
SharePoint addressing with ``:`` path segments (B6), download by 302 to a pre-authenticated URL
with Range support (B7), simple uploads (B8), upload sessions (B9), driveItem JSON (B10) and list
items (B11).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import IO, Any, TypeAlias
from urllib.parse import quote, unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Message, Scope

from airflow_provider_graphcert.testing.emulator.graph_state import (
    DELTA_DEFAULT_PAGE_SIZE,
    DIRECTORY_DEFAULT_PAGE_SIZE,
    DIRECTORY_MAX_PAGE_SIZE,
    DRIVE_DEFAULT_PAGE_SIZE,
    DRIVE_MAX_PAGE_SIZE,
    GROUP_DEFAULT_PROPERTIES,
    LIST_ITEMS_DEFAULT_PAGE_SIZE,
    MAX_BATCH_REQUESTS,
    SIMPLE_UPLOAD_MAX_BYTES,
    USER_DEFAULT_PROPERTIES,
    DeltaCursor,
    DeltaEntry,
    DeltaTokenExpired,
    Directory,
    Drive,
    GraphError,
    GraphState,
    Identity,
    Item,
    ListItem,
    SharePointList,
    Site,
    StoredBody,
    UploadOutcome,
    UploadSession,
    invalid_request,
    item_not_found,
    split_path,
)

ValidateToken: TypeAlias = Callable[[str], dict[str, Any]]
Handler: TypeAlias = Callable[["GraphCall"], Awaitable[Response]]

# B1: the content type Graph answers JSON with.
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
# B1: what a 401 from Graph carries, so clients can tell Graph's 401 from anything else.
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
DOWNLOAD_PATH = "/_layouts/15/download.aspx"
UPLOAD_PATH = "/_api/v2.0/uploadSession"
_STREAM_CHUNK_BYTES = 1024 * 1024

# Application permissions per resource (least privileged first, as in each API page's table).
SITE_READ_ROLES = frozenset({"Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"})
SITE_WRITE_ROLES = frozenset({"Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"})
FILES_READ_ROLES = SITE_READ_ROLES | {"Files.Read.All", "Files.ReadWrite.All"}
FILES_WRITE_ROLES = SITE_WRITE_ROLES | {"Files.ReadWrite.All"}
USERS_READ_ROLES = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
GROUPS_READ_ROLES = frozenset(
    {"Group.Read.All", "Group.ReadWrite.All", "GroupMember.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)


class TokenRejected(Exception):
    """Raised by ``validate_token``: the bearer token is not acceptable (rendered as a Graph error)."""

    def __init__(self, status: int, code: str, message: str, *, www_authenticate: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.www_authenticate = www_authenticate


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


# -- query options -------------------------------------------------------------------------------


def query_options(request: Request) -> dict[str, str]:
    """Query options by lower-case name without '$': Graph accepts '$top' and 'top' alike."""
    options: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        options[key.lower().removeprefix("$")] = value
    return options


def parse_top(options: Mapping[str, str], default: int, maximum: int, *, strict: bool = False) -> int:
    """$top; ``strict`` answers 400 past the maximum (directory), otherwise it is capped (B3)."""
    raw = options.get("top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise invalid_request(f"Invalid $top value {raw!r}.") from None
    if top < 1 or (strict and top > maximum):
        raise GraphError(
            400,
            "Request_UnsupportedQuery" if strict else "invalidRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
        )
    return min(top, maximum)


def parse_select(options: Mapping[str, str]) -> list[str] | None:
    raw = options.get("select")
    if not raw:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside parentheses: 'fields(select=a,b),x' -> ['fields(select=a,b)', 'x']."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def parse_expand(options: Mapping[str, str]) -> dict[str, list[str] | None]:
    """B11: expand=fields, expand=fields(select=A,B) or $expand=fields($select=A,B)."""
    expand: dict[str, list[str] | None] = {}
    for part in split_top_level(options.get("expand", ""), ","):
        name, _, rest = part.partition("(")
        select: list[str] | None = None
        for option in split_top_level(rest.rstrip(")"), ";"):
            key, _, value = option.partition("=")
            if key.strip().lower().removeprefix("$") == "select":
                select = [column.strip() for column in value.split(",") if column.strip()]
        expand[name.strip()] = select
    return expand


# -- addressing (B6) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemAddress:
    """An item reference after /drives/{id}: 'root' or 'items/{id}', an optional ':/path:', an action."""

    item_id: str | None
    path: str | None
    action: str | None


ITEM_ACTIONS = frozenset({"children", "content", "createUploadSession", "delta"})


def parse_item_address(text: str) -> ItemAddress | None:
    """'root:/a/b:/children' -> ItemAddress(None, '/a/b', 'children'); None if it is no item address."""
    if text == "root" or text.startswith(("root:", "root/")):
        item_id, tail = None, text[4:]
    elif text.startswith("items/"):
        match = re.match(r"([^/:]+)(.*)", text[6:], re.DOTALL)
        if match is None:
            return None
        item_id, tail = match.group(1), match.group(2)
    else:
        return None
    path: str | None = None
    if tail.startswith(":"):
        # Names cannot contain ':' (B6), so the next one closes the path.
        path, colon, tail = tail[1:].partition(":")
        if not colon:
            tail = ""
    if not tail:
        return ItemAddress(item_id, path, None)
    action = tail.removeprefix("/")
    if not tail.startswith("/") or action not in ITEM_ACTIONS:
        return None
    return ItemAddress(item_id, path, action)


@dataclass(frozen=True)
class SiteAddress:
    """A site reference after /sites/: 'root', a site id, a hostname or 'hostname:/path[:]'."""

    key: str
    hostname: str | None
    path: str | None
    rest: str


def parse_site_address(text: str) -> SiteAddress:
    head, _, _ = text.partition("/")
    if ":" in head:
        hostname, _, after = text.partition(":")
        path, colon, rest = after.partition(":")
        return SiteAddress(hostname, hostname, path or "/", rest if colon else "")
    rest = text[len(head) :]
    if "," not in head and "." in head:
        return SiteAddress(head, head, "/", rest)
    return SiteAddress(head, None, None, rest)


def raw_path(request: Request) -> str:
    """The path as the client encoded it: nextLinks must keep its percent-encoding."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1").partition("?")[0]
    return quote(request.url.path)


def link_with(request: Request, replace: Mapping[str, str], drop: Sequence[str] = ()) -> str:
    """B3: an absolute link to this resource keeping every original query option except the replaced ones."""
    url = request.url
    removed = {name.lower().removeprefix("$") for name in [*replace, *drop]}
    kept = [
        part
        for part in url.query.split("&")
        if part and unquote(part.partition("=")[0]).lower().removeprefix("$") not in removed
    ]
    kept += [f"{quote(name, safe='$')}={quote(value, safe='')}" for name, value in replace.items()]
    query = "&".join(kept)
    return f"{url.scheme}://{url.netloc}{raw_path(request)}" + (f"?{query}" if query else "")


# -- paging tokens -------------------------------------------------------------------------------


def encode_skiptoken(state: GraphState, kind: str, position: Any) -> str:
    payload = base64.urlsafe_b64encode(json.dumps([kind, position]).encode()).decode().rstrip("=")
    return f"{payload}.{state.sign('skiptoken', payload)}"


def decode_skiptoken(state: GraphState, kind: str, token: str | None) -> Any:
    if token is None:
        return None
    payload, _, mac = token.partition(".")
    if not secrets.compare_digest(mac, state.sign("skiptoken", payload)):
        raise invalid_request("Invalid $skiptoken.")
    token_kind, position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if token_kind != kind:
        raise invalid_request("The $skiptoken belongs to another collection.")
    return position


# -- request plumbing ----------------------------------------------------------------------------


@dataclass
class GraphCall:
    """One authenticated Graph request as the handlers see it."""

    request: Request
    request_id: str
    claims: dict[str, Any]
    options: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.request.method.upper()

    @property
    def actor(self) -> Identity:
        return actor_from_claims(self.claims)

    def require(self, allowed: frozenset[str], *, directory: bool = False) -> None:
        """Application roles (``roles``) or, for delegated tokens, scopes (``scp``) must grant access."""
        roles = self.claims.get("roles")
        scopes = self.claims.get("scp")
        if not isinstance(roles, list) and not isinstance(scopes, str):
            raise GraphError(403, "accessDenied", "Either scp or roles claim need to be present in the token.")
        granted = {str(role) for role in (roles if isinstance(roles, list) else [])}
        granted |= set(scopes.split()) if isinstance(scopes, str) else set()
        if allowed & granted:
            return
        if directory:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        raise GraphError(403, "accessDenied", "Access denied")


def site_reads_site_data(rest: str) -> bool:
    """The site object and its lists need Sites.* roles; its drives also accept Files.* (API pages)."""
    return not (rest == "/drives" or rest.startswith(("/drive/", "/drives/")) or rest == "/drive")


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def segment_not_found(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise invalid_request("Unable to read JSON request payload.") from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    return data


async def receive_body(request: Request, sink: Callable[[bytes], None]) -> GraphError | None:
    """Feed the body to ``sink``; after a sink error keep draining so the client can read the answer."""
    failure: GraphError | None = None
    async for chunk in request.stream():
        if failure is None and chunk:
            try:
                sink(chunk)
            except GraphError as exc:
                failure = exc
    return failure


async def drain(request: Request) -> None:
    """Read what is left of a body we answer early, so the client can send it all and read our reply."""
    try:
        async for _ in request.stream():
            pass
    except (RuntimeError, ClientDisconnect):
        # Already consumed, or the client went away: nothing left to read.
        pass


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or not token.strip():
        raise TokenRejected(401, "InvalidAuthenticationToken", "Access token is empty.")
    if scheme.lower() != "bearer":
        raise TokenRejected(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
    return token.strip()


# -- the Graph origin ----------------------------------------------------------------------------


# Decides whether a $batch inner request fails: (status, Retry-After seconds) or None.
InnerFaults = Callable[[str, str], "tuple[int, int | None] | None"]
THROTTLED_TEXT = "The request has been throttled"


class GraphApi:
    """Handlers of the Graph origin; ``routes()`` lists them for a Mount at /v1.0."""

    def __init__(
        self,
        state: GraphState,
        validate_token: ValidateToken,
        files_url: Callable[[], str],
        inner_faults: InnerFaults | None = None,
    ) -> None:
        self.state = state
        self.validate_token = validate_token
        self.files_url = files_url
        self.inner_faults = inner_faults
        self.router: Router | None = None

    def routes(self, *, catch_all: bool = True) -> list[BaseRoute]:
        any_method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        table: list[tuple[str, Handler]] = [
            ("/$batch", self.batch),
            ("/sites/{rest:path}", self.sites),
            ("/drives/{rest:path}", self.drives),
            ("/users", self.list_users),
            ("/users/{key}", self.get_user),
            ("/groups", self.list_groups),
            ("/groups/{key}", self.get_group),
        ]
        if catch_all:
            table.append(("/{rest:path}", self.unknown))
        routes: list[BaseRoute] = [Route(path, self.endpoint(handler), methods=any_method) for path, handler in table]
        # $batch replays inner requests through these same routes.
        self.router = Router(routes=list(routes))
        return routes

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id")
            try:
                claims = self.validate_token(bearer_token(request))
                call = GraphCall(request, request_id, claims, query_options(request))
                response = await handler(call)
            except TokenRejected as exc:
                headers = {"WWW-Authenticate": exc.www_authenticate or WWW_AUTHENTICATE}
                rejected = GraphError(exc.status, exc.code, exc.message, headers=headers)
                response = error_response(rejected, request_id, client_request_id)
                await drain(request)
            except GraphError as exc:
                response = error_response(exc, request_id, client_request_id)
                await drain(request)
            except ClientDisconnect:
                # The client gave up mid-request (its timeout, a cut connection): nobody is left to answer.
                response = Response(status_code=400)
            return stamp(response, request_id, client_request_id)

        return endpoint

    async def unknown(self, call: GraphCall) -> Response:
        segment = call.request.path_params.get("rest", "").split("/")[0]
        raise segment_not_found(segment)

    # -- sites ---------------------------------------------------------------------------------

    async def sites(self, call: GraphCall) -> Response:
        address = parse_site_address(call.request.path_params["rest"])
        # Permissions are checked before lookups, so an app without roles learns nothing (403 first).
        call.require(SITE_READ_ROLES if site_reads_site_data(address.rest) else FILES_READ_ROLES)
        if address.hostname is not None and address.path is not None:
            site = self.state.site_by_path(address.hostname, address.path)
        else:
            site = self.state.site(address.key)
        rest = address.rest
        if rest == "":
            return self.get_site(call, site)
        if rest == "/drives":
            return self.list_drives(call, site)
        if rest == "/drive" or rest.startswith("/drive/"):
            return await self.drive_resource(call, site.default_drive, rest.removeprefix("/drive"))
        drive_match = re.fullmatch(r"/drives/([^/]+)(.*)", rest, re.DOTALL)
        if drive_match:
            drive = self.state.drive(drive_match.group(1))
            if drive.site is not site:
                raise item_not_found("The drive could not be found on this site.")
            return await self.drive_resource(call, drive, drive_match.group(2))
        list_match = re.fullmatch(r"/lists(?:/([^/]+)(.*))?", rest, re.DOTALL)
        if list_match:
            return await self.lists(call, site, list_match.group(1), list_match.group(2) or "")
        raise segment_not_found(rest.strip("/").split("/")[0])

    def get_site(self, call: GraphCall, site: Site) -> Response:
        call.require(SITE_READ_ROLES)
        self._only(call, "GET")
        return json_response(select_properties(site_json(site), parse_select(call.options)))

    def list_drives(self, call: GraphCall, site: Site) -> Response:
        call.require(FILES_READ_ROLES)
        self._only(call, "GET")
        with self.state.lock:
            drives = list(site.drives.values())
        select = parse_select(call.options)
        return json_response({"value": [select_properties(drive_json(d), select) for d in drives]})

    @staticmethod
    def _only(call: GraphCall, *methods: str) -> None:
        if call.method not in methods and not (call.method == "HEAD" and "GET" in methods):
            raise method_not_allowed()

    # -- lists (B11) ---------------------------------------------------------------------------

    async def lists(self, call: GraphCall, site: Site, key: str | None, rest: str) -> Response:
        write = call.method == "POST"
        call.require(SITE_WRITE_ROLES if write else SITE_READ_ROLES)
        if key is None:
            self._only(call, "GET")
            with self.state.lock:
                lists = list(site.lists.values())
            return json_response({"value": [list_json(sp_list, with_columns=False) for sp_list in lists]})
        sp_list = site.find_list(key)
        if rest == "":
            self._only(call, "GET")
            return json_response(list_json(sp_list, with_columns="columns" in parse_expand(call.options)))
        if rest == "/columns":
            self._only(call, "GET")
            return json_response({"value": [column_json(n) for n in ["Title", *sp_list.columns]]})
        if rest == "/items":
            if call.method == "POST":
                return await self.create_list_item(call, sp_list)
            self._only(call, "GET")
            return self.list_items(call, sp_list)
        item_match = re.fullmatch(r"/items/([^/]+)", rest)
        if item_match:
            self._only(call, "GET")
            item = sp_list.item(item_match.group(1))
            return json_response(list_item_json(sp_list, item, parse_expand(call.options)))
        raise segment_not_found(rest.strip("/").split("/")[0])

    def list_items(self, call: GraphCall, sp_list: SharePointList) -> Response:
        top = parse_top(call.options, LIST_ITEMS_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        after = decode_skiptoken(self.state, f"list:{sp_list.id}", call.options.get("skiptoken")) or 0
        items, last = sp_list.items_page(after=int(after), top=top)
        expand = parse_expand(call.options)
        body: dict[str, Any] = {"value": [list_item_json(sp_list, item, expand) for item in items]}
        if last is not None:
            token = encode_skiptoken(self.state, f"list:{sp_list.id}", last)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        return json_response(body)

    async def create_list_item(self, call: GraphCall, sp_list: SharePointList) -> Response:
        payload = await read_json(call.request)
        fields = payload.get("fields")
        if not isinstance(fields, dict):
            raise invalid_request("The request body needs a 'fields' object.")
        item = sp_list.add_item(fields)
        return json_response(list_item_json(sp_list, item, {"fields": None}), 201)

    # -- drives --------------------------------------------------------------------------------

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

    # -- directory -----------------------------------------------------------------------------

    async def list_users(self, call: GraphCall) -> Response:
        return self.list_directory(call, self.state.users, USERS_READ_ROLES, USER_DEFAULT_PROPERTIES, "users")

    async def list_groups(self, call: GraphCall) -> Response:
        return self.list_directory(call, self.state.groups, GROUPS_READ_ROLES, GROUP_DEFAULT_PROPERTIES, "groups")

    async def get_user(self, call: GraphCall) -> Response:
        return self.get_directory_object(call, self.state.users, USERS_READ_ROLES, USER_DEFAULT_PROPERTIES)

    async def get_group(self, call: GraphCall) -> Response:
        return self.get_directory_object(call, self.state.groups, GROUPS_READ_ROLES, GROUP_DEFAULT_PROPERTIES)

    def list_directory(
        self, call: GraphCall, directory: Directory, roles: frozenset[str], defaults: Sequence[str], entity: str
    ) -> Response:
        call.require(roles, directory=True)
        self._only(call, "GET")
        if "filter" in call.options or "search" in call.options:
            raise GraphError(400, "Request_UnsupportedQuery", "The emulator does not implement $filter or $search.")
        top = parse_top(call.options, DIRECTORY_DEFAULT_PAGE_SIZE, DIRECTORY_MAX_PAGE_SIZE, strict=True)
        select = directory_select(directory, parse_select(call.options), defaults)
        offset = int(decode_skiptoken(self.state, entity, call.options.get("skiptoken")) or 0)
        # Only this page is generated: a million-entry directory costs one page of memory.
        entries = directory.entries(offset, offset + top)
        base = f"{call.request.url.scheme}://{call.request.url.netloc}{call.request.scope.get('root_path', '')}"
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{entity}"}
        if call.options.get("count", "").lower() == "true":
            body["@odata.count"] = directory.count
        body["value"] = [{key: entry[key] for key in select} for entry in entries]
        if offset + top < directory.count:
            token = encode_skiptoken(self.state, entity, offset + top)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        return json_response(body)

    def get_directory_object(
        self, call: GraphCall, directory: Directory, roles: frozenset[str], defaults: Sequence[str]
    ) -> Response:
        call.require(roles, directory=True)
        self._only(call, "GET")
        key = call.request.path_params["key"]
        index = directory.index_of(key)
        if index is None:
            alias = key.partition("@")[0]
            match = re.fullmatch(rf"{directory.kind}(\d+)", alias)
            index = int(match.group(1)) if match and int(match.group(1)) < directory.count else None
        if index is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        select = directory_select(directory, parse_select(call.options), defaults)
        entry = directory.entry(index)
        return json_response({key: entry[key] for key in select})

    # -- $batch (B5) ---------------------------------------------------------------------------

    async def batch(self, call: GraphCall) -> Response:
        self._only(call, "POST")
        payload = await read_json(call.request)
        requests = validate_batch(payload)
        outcomes: dict[str, dict[str, Any]] = {}
        for entry in batch_order(requests):
            request_id = str(entry["id"])
            failed = [d for d in entry.get("dependsOn") or [] if outcomes[str(d).lower()]["status"] >= 400]
            if failed:
                outcomes[request_id.lower()] = failed_dependency(request_id, call, failed)
                continue
            try:
                outcomes[request_id.lower()] = await self.run_inner(call, entry)
            except GraphError as exc:
                outcomes[request_id.lower()] = inner_error(request_id, call, exc)
        responses = list(outcomes.values())
        if self.state.shuffle_batch_responses:
            # B5: responses may come back in any order; clients must match them by id.
            secrets.SystemRandom().shuffle(responses)
        return json_response({"responses": responses})

    async def run_inner(self, call: GraphCall, entry: Mapping[str, Any]) -> dict[str, Any]:
        headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
        body = inner_body(entry.get("body"), headers.get("content-type", ""))
        path, _, query = str(entry["url"]).lstrip("/").partition("?")
        if path.split("/")[0].lower() == "$batch":
            raise invalid_request("A batch cannot contain another $batch.")
        # B5: each inner request is throttled on its own, so a 429 can sit inside a 200 batch.
        fault = self.inner_faults(str(entry["method"]).upper(), f"/v1.0/{path}") if self.inner_faults else None
        if fault is not None:
            status, retry_after = fault
            error = inner_error(str(entry["id"]), call, GraphError(status, "activityLimitReached", THROTTLED_TEXT))
            if retry_after is not None:
                error["headers"]["Retry-After"] = str(retry_after)
            return error
        status, response_headers, content = await self.dispatch(
            call.request, str(entry["method"]), path, query, headers, body
        )
        result: dict[str, Any] = {"id": str(entry["id"]), "status": status, "headers": response_headers}
        if content:
            result["body"] = render_inner_body(content, response_headers.get("Content-Type", ""))
        return result

    async def dispatch(
        self, outer: Request, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Run one inner request through the same routes, in-process."""
        assert self.router is not None
        root_path = str(outer.scope.get("root_path", ""))
        header_list = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k != "content-length"]
        for name in ("authorization", "host", "client-request-id"):
            if name not in headers and name in outer.headers:
                header_list.append((name.encode(), outer.headers[name].encode("latin-1")))
        header_list.append((b"content-length", str(len(body)).encode()))
        scope: Scope = {
            key: outer.scope[key]
            for key in ("type", "http_version", "scheme", "server", "client")
            if key in outer.scope
        }
        scope.update(
            method=method.upper(),
            path=f"{root_path}/{unquote(path)}",
            raw_path=f"{root_path}/{path}".encode("latin-1", "replace"),
            root_path=root_path,
            query_string=query.encode("latin-1", "replace"),
            headers=header_list,
        )
        return await run_asgi(self.router, scope, body)


def directory_select(directory: Directory, select: list[str] | None, defaults: Sequence[str]) -> list[str]:
    if not select:
        return list(defaults)
    known = {key.casefold(): key for key in directory.entry(0)} if directory.count else {}
    chosen: list[str] = []
    for name in select:
        if name.casefold() not in known and directory.count:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{directory.kind}'.",
            )
        chosen.append(known.get(name.casefold(), name))
    return chosen


def validate_batch(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """B5: the whole batch is 400 when malformed; otherwise each request gets its own status."""
    requests = payload.get("requests")
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "The batch needs a non-empty 'requests' array.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise GraphError(
            400, "BadRequest", f"The batch has {len(requests)} requests; the limit is {MAX_BATCH_REQUESTS}."
        )
    seen: set[str] = set()
    for entry in requests:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "method", "url")):
            raise GraphError(400, "BadRequest", "Each batch request needs string 'id', 'method' and 'url'.")
        # B5: ids are not case-sensitive and must be unique.
        if entry["id"].lower() in seen:
            raise GraphError(400, "BadRequest", f"Batch request id '{entry['id']}' is not unique.")
        seen.add(entry["id"].lower())
        headers = {str(k).lower() for k in (entry.get("headers") or {})}
        if "body" in entry and "content-type" not in headers:
            raise GraphError(
                400, "BadRequest", f"Write request id : {entry['id']} does not contain Content-Type header or body."
            )
    for entry in requests:
        for dependency in entry.get("dependsOn") or []:
            if str(dependency).lower() not in seen:
                raise GraphError(400, "BadRequest", f"Request '{entry['id']}' depends on unknown id '{dependency}'.")
    return requests


def batch_order(requests: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Dependencies first, otherwise the order given; a dependsOn cycle makes the batch 400."""
    done: set[str] = set()
    pending = list(requests)
    while pending:
        ready = [r for r in pending if all(str(d).lower() in done for d in r.get("dependsOn") or [])]
        if not ready:
            raise GraphError(400, "BadRequest", "The batch's dependsOn references form a cycle.")
        for entry in ready:
            done.add(entry["id"].lower())
            yield entry
        pending = [r for r in pending if r not in ready]


def failed_dependency(request_id: str, call: GraphCall, failed: Sequence[Any]) -> dict[str, Any]:
    """B5: a request whose dependency failed is not run and answers 424."""
    message = f"Request failed because it depends on failed request(s) {', '.join(map(str, failed))}."
    return inner_error(request_id, call, GraphError(424, "FailedDependency", message))


def inner_error(request_id: str, call: GraphCall, exc: GraphError) -> dict[str, Any]:
    body = error_body(
        exc.code,
        exc.message,
        request_id=call.request_id,
        client_request_id=call.request.headers.get("client-request-id"),
        inner_code=exc.inner_code,
    )
    return {"id": request_id, "status": exc.status, "headers": {"Content-Type": ODATA_JSON}, "body": body}


def inner_body(body: Any, content_type: str) -> bytes:
    """B5: an inner body is JSON, or base64 for binary content."""
    if body is None:
        return b""
    if "json" in content_type.lower() or not isinstance(body, str):
        return json.dumps(body).encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        return body.encode("utf-8")


def render_inner_body(content: bytes, content_type: str) -> Any:
    if "json" in content_type.lower():
        try:
            return json.loads(content)
        except ValueError:
            pass
    return base64.b64encode(content).decode("ascii")


async def run_asgi(app: Router, scope: Scope, body: bytes) -> tuple[int, dict[str, str], bytes]:
    sent_body = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", []):
                name = key.decode("latin-1").title()
                if name.lower() not in {"content-length", "date"}:
                    headers[name] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


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


def graph_routes(
    state: GraphState,
    *,
    validate_token: ValidateToken,
    files_url: Callable[[], str],
    catch_all: bool = True,
    inner_faults: InnerFaults | None = None,
) -> list[BaseRoute]:
    """Routes of the Graph origin, to mount at /v1.0.

    ``validate_token(bearer)`` returns the token's claims (with ``roles``) or raises
    ``TokenRejected``. ``files_url()`` gives the files origin (scheme://host:port) that download
    and upload-session URLs point to. ``catch_all`` adds a final route answering Graph's 400 for
    unknown segments: mount these routes last, or pass False. ``inner_faults(method, path)``
    returns ``(status, retry_after)`` for a $batch inner request that should fail, else None.
    """
    return GraphApi(state, validate_token, files_url, inner_faults).routes(catch_all=catch_all)


# -- the files origin (B7, B9) --------------------------------------------------------------------


class FilesApi:
    """Pre-authenticated download and upload-session URLs. They carry their own credential, so a
    request that also sends an Authorization header is refused with 401 (B7, B9)."""

    def __init__(self, state: GraphState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route(DOWNLOAD_PATH, self.endpoint(self.download), methods=["GET", "HEAD"]),
            Route(UPLOAD_PATH, self.endpoint(self.upload), methods=["GET", "PUT", "POST", "DELETE"]),
        ]

    def endpoint(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id")
            try:
                if "authorization" in request.headers:
                    raise GraphError(
                        401,
                        "unauthenticated",
                        "Pre-authenticated URLs must be requested without an Authorization header.",
                    )
                response = await handler(request)
            except GraphError as exc:
                response = error_response(exc, request_id, client_request_id)
                await drain(request)
            except ClientDisconnect:
                # The client gave up mid-request (its timeout, a cut connection): nobody is left to answer.
                response = Response(status_code=400)
            return stamp(response, request_id, client_request_id)

        return endpoint

    # -- download ------------------------------------------------------------------------------

    async def download(self, request: Request) -> Response:
        item = self.state.resolve_download(request.query_params.get("tempauth", ""))
        blob, size = item.blob, item.size
        if blob is None:
            raise item_not_found()
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": item.etag,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(item.name)}",
        }
        span = parse_range(request.headers.get("range"), size)
        start, end = span if span is not None else (0, size - 1)
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=item.mime_type)
        try:
            handle = open(blob, "rb")  # noqa: SIM115 - closed by the streaming generator
        except FileNotFoundError:
            raise item_not_found("The file changed; request a new download URL.") from None
        return StreamingResponse(
            stream_file(handle, start, length), status_code=status, headers=headers, media_type=item.mime_type
        )

    # -- upload sessions -------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        session = self.state.upload_session(
            request.query_params.get("guid", ""), request.query_params.get("tempauth", "")
        )
        if request.method == "GET":
            return json_response(self.status_json(session))
        if request.method == "DELETE":
            self.state.cancel_upload_session(session)
            return Response(status_code=204)
        if request.method == "POST":
            # B9: with deferCommit, an empty POST to the upload URL completes the file.
            await drain(request)
            return self.outcome_response(request, self.state.commit_upload(session))
        return await self.put_fragment(request, session)

    async def put_fragment(self, request: Request, session: UploadSession) -> Response:
        start, end, total = parse_content_range(request.headers.get("content-range"))
        check_content_length(request.headers.get("content-length"), end - start + 1)
        writer = self.state.begin_fragment(session, start, end, total)
        try:
            failure = await receive_body(request, writer.write)
        except BaseException:
            self.state.abort_fragment(writer)
            raise
        if failure is not None:
            self.state.abort_fragment(writer)
            raise failure
        return self.outcome_response(request, self.state.finish_fragment(writer))

    def outcome_response(self, request: Request, outcome: UploadOutcome) -> Response:
        if outcome.item is None:
            return json_response(self.status_json(outcome.session), 202)
        files_base = str(request.base_url).rstrip("/")
        return json_response(item_json(self.state, outcome.item, files_base), 201 if outcome.created else 200)

    @staticmethod
    def status_json(session: UploadSession) -> dict[str, Any]:
        return {"expirationDateTime": iso_millis(session.expires), "nextExpectedRanges": session.next_expected_ranges}


def files_routes(state: GraphState) -> list[BaseRoute]:
    """Routes of the files origin (download and upload-session URLs), mounted at its root."""
    return FilesApi(state).routes()


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """B7: one 'bytes=' range -> (start, end); several ranges are ignored (the server may send all)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, dash, last = header[6:].strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise range_not_satisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size or (last.isdigit() and int(last) < start):
        raise range_not_satisfiable(size)
    return start, min(int(last), size - 1) if last.isdigit() else size - 1


def range_not_satisfiable(size: int) -> GraphError:
    return GraphError(
        416, "invalidRange", "The requested range is not satisfiable.", headers={"Content-Range": f"bytes */{size}"}
    )


def parse_content_range(header: str | None) -> tuple[int, int, int]:
    """B9: 'bytes {start}-{end}/{total}', total required."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", header or "")
    if match is None:
        raise GraphError(400, "invalidRange", "A Content-Range header 'bytes {start}-{end}/{total}' is required.")
    start, end, total = (int(group) for group in match.groups())
    return start, end, total


def check_content_length(header: str | None, expected: int) -> None:
    if header is None or not header.isdigit():
        raise GraphError(411, "invalidRequest", "A Content-Length header is required.")
    if int(header) != expected:
        raise GraphError(
            400,
            "invalidRange",
            f"Content-Length {header} does not match the Content-Range length {expected}.",
            inner_code="fragmentLengthMismatch",
        )


def stream_file(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    """Read a body from disk a chunk at a time (Starlette runs this in a worker thread)."""
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_STREAM_CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


__all__ = [
    "FILES_READ_ROLES",
    "FILES_WRITE_ROLES",
    "GROUPS_READ_ROLES",
    "SITE_READ_ROLES",
    "SITE_WRITE_ROLES",
    "USERS_READ_ROLES",
    "FilesApi",
    "GraphApi",
    "GraphCall",
    "ItemAddress",
    "TokenRejected",
    "ValidateToken",
    "files_routes",
    "graph_routes",
    "parse_item_address",
    "parse_site_address",
]
