"""Sites, their drives and lists (reference B6, B11)."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import parse_site_address
from airflow_provider_graphcert.testing.emulator.graph.calls import (
    FILES_READ_ROLES,
    SITE_READ_ROLES,
    SITE_WRITE_ROLES,
    GraphCall,
    read_json,
    segment_not_found,
    site_reads_site_data,
)
from airflow_provider_graphcert.testing.emulator.graph.common import (
    DRIVE_MAX_PAGE_SIZE,
    LIST_ITEMS_DEFAULT_PAGE_SIZE,
    invalid_request,
    item_not_found,
)
from airflow_provider_graphcert.testing.emulator.graph.drive_routes import DriveRoutes
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    decode_skiptoken,
    encode_skiptoken,
    link_with,
    parse_expand,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.render import (
    column_json,
    drive_json,
    json_response,
    list_item_json,
    list_json,
    select_properties,
    site_json,
)
from airflow_provider_graphcert.testing.emulator.graph.sites import SharePointList, Site


class SiteRoutes(DriveRoutes):
    """/sites/...: a site by id, hostname or path, its drives and its lists."""

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
