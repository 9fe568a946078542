"""Turn a browser URL (or site URL + library + path) into Graph's site, drive and item ids.

With the fewest calls: one for the site, one for its libraries (cached per resolver), one for the
item. Library names match either the URL name ("Shared Documents") or the display name
("Documents"), so localized libraries resolve from what the user sees.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_provider_graphcert.errors import ConfigurationError, GraphNotFoundError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.locations import (
    SharePointLocation,
    encode_path,
    parse_sharepoint_url,
)

_DRIVE_FIELDS = "id,name,webUrl,driveType"


class ItemNotFoundError(ConfigurationError):
    """Graph answered 404 for a path in a library that exists: the file or folder is not there (yet).

    Distinct from every other configuration mistake (no site, no library, a missing certificate
    file ...), so that a sensor can wait for this one and fail at once on the others.
    """


@dataclass(frozen=True)
class Drive:
    id: str
    name: str
    url_name: str
    site_id: str
    web_url: str


@dataclass(frozen=True)
class ResolvedItem:
    drive: Drive
    path: str  # decoded, relative to the library root ('' for the root)
    item: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.item["id"])

    @property
    def is_folder(self) -> bool:
        return "folder" in self.item

    @property
    def drive_id(self) -> str:
        return self.drive.id


class SharePointResolver:
    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self._sites: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._drives: dict[str, list[Drive]] = {}
        self._lock = threading.Lock()

    # -- sites ----------------------------------------------------------------------------------

    def site(self, hostname: str, site_path: str) -> dict[str, Any] | None:
        key = (hostname.lower(), site_path.strip("/").lower())
        with self._lock:
            if key in self._sites:
                return self._sites[key]
        address = f"sites/{hostname}:/{encode_path(site_path)}" if site_path.strip("/") else f"sites/{hostname}"
        try:
            found: dict[str, Any] | None = self.client.get_json(address, params={"$select": "id,webUrl,displayName"})
        except GraphNotFoundError:
            found = None
        with self._lock:
            self._sites[key] = found
        return found

    def drives(self, site_id: str) -> list[Drive]:
        with self._lock:
            if site_id in self._drives:
                return self._drives[site_id]
        drives = [
            Drive(
                id=str(d["id"]),
                name=str(d.get("name", "")),
                url_name=unquote(urlsplit(str(d.get("webUrl", ""))).path.rstrip("/").rsplit("/", 1)[-1]),
                site_id=site_id,
                web_url=str(d.get("webUrl", "")),
            )
            for d in self.client.iter_items(f"sites/{site_id}/drives", params={"$select": _DRIVE_FIELDS})
        ]
        with self._lock:
            self._drives[site_id] = drives
        return drives

    @staticmethod
    def _match(drives: list[Drive], name: str) -> Drive | None:
        wanted = name.casefold()
        for drive in drives:
            if wanted in (drive.url_name.casefold(), drive.name.casefold()):
                return drive
        return None

    # -- locations ------------------------------------------------------------------------------

    def locate(self, location: SharePointLocation, *, field: str = "url") -> tuple[Drive, str]:
        """The library and the path inside it; walks into subsites when a segment is not a library."""
        site_path = location.site_path
        segments = list(location.segments)
        site = self.site(location.hostname, site_path)
        if site is None:
            raise ConfigurationError(
                f"No SharePoint site at {location.site_url} (or the app may not see it: Sites.Read.All or a "
                "Sites.Selected grant on this site is needed).",
                field=field,
            )
        while True:
            drives = self.drives(str(site["id"]))
            if not segments:
                raise ConfigurationError(
                    f"{location.site_url} names a site but no document library; add the library, e.g. "
                    f"{location.site_url}/Shared Documents. Libraries here: {_names(drives)}.",
                    field=field,
                )
            drive = self._match(drives, segments[0])
            if drive is not None:
                return drive, "/".join(segments[1:])
            subsite = self.site(location.hostname, f"{site_path}/{segments[0]}")
            if subsite is None:
                raise ConfigurationError(
                    f"'{segments[0]}' is neither a document library nor a subsite of {location.site_url}. "
                    f"Libraries there: {_names(drives)}.",
                    field=field,
                )
            site, site_path, segments = subsite, f"{site_path}/{segments[0]}", segments[1:]

    def item(self, drive: Drive, path: str, *, field: str = "path") -> ResolvedItem:
        clean = "/".join(s for s in path.split("/") if s)
        address = f"drives/{drive.id}/root:/{encode_path(clean)}:" if clean else f"drives/{drive.id}/root"
        try:
            item = self.client.get_json(address)
        except GraphNotFoundError:
            raise ItemNotFoundError(
                f"'{clean}' does not exist in the library '{drive.name}' ({drive.web_url}).", field=field
            ) from None
        return ResolvedItem(drive=drive, path=clean, item=item)

    def resolve_url(self, url: str, *, field: str = "url") -> ResolvedItem:
        location = parse_sharepoint_url(url, field=field)
        drive, path = self.locate(location, field=field)
        return self.item(drive, path, field=field)

    def resolve(
        self,
        *,
        url: str | SharePointLocation | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        field: str = "url",
    ) -> ResolvedItem:
        """From a full URL (or a parsed location), or from the pieces (site URL, library, path inside it)."""
        if isinstance(url, SharePointLocation):
            drive, inside = self.locate(url, field=field)
            return self.item(drive, inside, field=field)
        if url:
            return self.resolve_url(url, field=field)
        if not site_url or not library:
            raise ConfigurationError(
                "Give either url (a folder or file URL from the browser) or site_url and library.", field=field
            )
        site = parse_sharepoint_url(site_url, field="site_url")
        location = SharePointLocation(site.hostname, site.site_path, (*site.segments, library))
        drive, _ = self.locate(location, field="library")
        return self.item(drive, path, field="path")

    def drive_for(
        self, *, url: str | SharePointLocation | None, site_url: str | None, library: str | None
    ) -> tuple[Drive, str]:
        """The library and the path inside it without requiring the item to exist (uploads)."""
        if isinstance(url, SharePointLocation):
            return self.locate(url)
        if url:
            return self.locate(parse_sharepoint_url(url))
        if not site_url or not library:
            raise ConfigurationError("Give either url or site_url and library.", field="url")
        site = parse_sharepoint_url(site_url, field="site_url")
        return self.locate(
            SharePointLocation(site.hostname, site.site_path, (*site.segments, library)), field="library"
        )


def _names(drives: list[Drive]) -> str:
    return ", ".join(f"'{d.name}'" for d in drives) or "none visible to this app"
