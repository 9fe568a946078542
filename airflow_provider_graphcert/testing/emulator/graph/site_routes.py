"""Sites, their drives and lists (docs/microsoft-rules.md §B6, §B11)."""

from __future__ import annotations

import re

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import parse_site_address
from airflow_provider_graphcert.testing.emulator.graph.calls import (
    FILES_READ_ROLES,
    SITE_READ_ROLES,
    GraphCall,
    segment_not_found,
    site_reads_site_data,
)
from airflow_provider_graphcert.testing.emulator.graph.common import (
    item_not_found,
    not_implemented,
)
from airflow_provider_graphcert.testing.emulator.graph.drive_routes import DriveRoutes
from airflow_provider_graphcert.testing.emulator.graph.list_routes import ListRoutes
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    check_options,
    collection_context,
    parse_select,
)
from airflow_provider_graphcert.testing.emulator.graph.render import (
    drive_json,
    json_response,
    select_properties,
    site_json,
)
from airflow_provider_graphcert.testing.emulator.graph.sites import Site

# Segments Graph has after a site that the emulator does not implement: 501, never a 400.
UNIMPLEMENTED_SITE_SEGMENTS = frozenset(
    {"sites", "columns", "contentTypes", "permissions", "pages", "onenote", "termStore", "termStores",
     "analytics", "operations", "items", "externalColumns", "getByPath", "getActivitiesByInterval",
     "recycleBin", "informationProtection", "getApplicableContentTypesForList"}
)  # fmt: skip


class SiteRoutes(DriveRoutes, ListRoutes):
    """/sites/...: a site by id, hostname or path, its drives and its lists."""

    async def site_collection(self, call: GraphCall) -> Response:
        call.require(SITE_READ_ROLES)
        if "search" in call.options:
            raise not_implemented("searching sites (GET /sites?search=)")
        raise not_implemented("listing sites (GET /sites); address a site by id, hostname or path")

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
        segment = rest.strip("/").split("/")[0].split("(")[0]
        if (
            segment in UNIMPLEMENTED_SITE_SEGMENTS
            or segment.removeprefix("microsoft.graph.") in UNIMPLEMENTED_SITE_SEGMENTS
        ):
            raise not_implemented(f"/sites/{{id}}/{segment}")
        raise segment_not_found(segment)

    def get_site(self, call: GraphCall, site: Site) -> Response:
        call.require(SITE_READ_ROLES)
        self._only(call, "GET")
        check_options(call.options, {"select"}, "a site")
        return json_response(select_properties(site_json(site), parse_select(call.options)))

    def list_drives(self, call: GraphCall, site: Site) -> Response:
        call.require(FILES_READ_ROLES)
        self._only(call, "GET")
        check_options(call.options, {"select"}, "drives")
        with self.state.lock:
            drives = list(site.drives.values())
        select = parse_select(call.options)
        return json_response(
            {
                "@odata.context": collection_context(call.request, "drive"),
                "value": [select_properties(drive_json(d), select) for d in drives],
            }
        )
