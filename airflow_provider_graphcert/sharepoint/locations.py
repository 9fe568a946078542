"""Read what a user copies from the browser into (host, site path, rest of the path).

Accepted: a folder or file URL (``https://contoso.sharepoint.com/sites/Finance/Shared Documents/
Reports``), its percent-encoded form, the library view ``.../Forms/AllItems.aspx?id=/sites/...``,
and sharing-style ``/:f:/r/`` links. Which segments name the site and which the library is only
known after asking Graph; this module only splits the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from airflow_provider_graphcert.errors import ConfigurationError

# SharePoint's managed paths: a site collection is /sites/<name> or /teams/<name> (or the root).
MANAGED_PATHS = ("sites", "teams", "personal")
_SHARING_PREFIX = re.compile(r"^/:[a-z]:/[a-z]/", re.IGNORECASE)
_VIEW_PAGES = ("/forms/allitems.aspx", "/forms/")


@dataclass(frozen=True)
class SharePointLocation:
    """``site_path`` is the site collection's server-relative path ('' for the root site)."""

    hostname: str
    site_path: str
    segments: tuple[str, ...]  # library URL name first, then folders / file, all decoded

    @property
    def site_url(self) -> str:
        return f"https://{self.hostname}/{self.site_path}".rstrip("/")


def parse_sharepoint_url(url: str, *, field: str = "url") -> SharePointLocation:
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"'{url}' is not a SharePoint URL; copy the address of the folder or file from the browser, "
            "e.g. https://contoso.sharepoint.com/sites/Finance/Shared Documents/Reports.",
            field=field,
        )
    path = _SHARING_PREFIX.sub("/", parts.path)
    lowered = path.lower()
    if any(page in lowered for page in _VIEW_PAGES):
        # A library view: the folder being shown is in ?id= (server-relative, encoded once more).
        ids = parse_qs(parts.query).get("id") or parse_qs(parts.query).get("RootFolder")
        path = ids[0] if ids else path[: lowered.index("/forms/")]
    segments = [unquote(s) for s in path.split("/") if s]
    if segments and segments[0].lower() in MANAGED_PATHS:
        if len(segments) < 2:
            raise ConfigurationError(f"'{url}' names /{segments[0]} without a site.", field=field)
        site_path, rest = "/".join(segments[:2]), segments[2:]
    else:
        site_path, rest = "", segments
    return SharePointLocation(hostname=parts.hostname.lower(), site_path=site_path, segments=tuple(rest))


def encode_path(path: str) -> str:
    """Percent-encode each segment separately for Graph's ``root:/a/b:`` addressing (docs/microsoft-rules.md §B6)."""
    return "/".join(quote(segment, safe="") for segment in path.split("/") if segment)


def location_from(
    *, url: str | None = None, site_url: str | None = None, library: str | None = None, path: str = ""
) -> SharePointLocation:
    """One location from what a task was given: a browser ``url``, or ``site_url`` + ``library`` (+ ``path``)."""
    if url:
        return parse_sharepoint_url(url)
    if not site_url or not library:
        raise ConfigurationError(
            "Give either url (a folder or file URL copied from the browser) or site_url and library.", field="url"
        )
    site = parse_sharepoint_url(site_url, field="site_url")
    inside = tuple(s for s in path.split("/") if s)
    return SharePointLocation(site.hostname, site.site_path, (*site.segments, library, *inside))
