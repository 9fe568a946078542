"""Where an ``spo://`` path points: host, site, and what follows the site.

fsspec paths of this file system read like the browser address without the scheme:
``contoso.sharepoint.com/sites/Finance/Shared Documents/Reports/q1.csv``. The host plays the role
an S3 bucket plays for s3fs. Names are used as written (spaces, not ``%20``): a percent sign is a
legal character in SharePoint names, so decoding would change some of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_graphcert.sharepoint.locations import MANAGED_PATHS, SharePointLocation

PROTOCOL = "spo"
_PREFIX = f"{PROTOCOL}://"
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def strip_protocol(path: str) -> str:
    """``spo://conn@host/a/b/`` -> ``host/a/b``: no scheme, no connection, no slashes at the ends."""
    text = path.removeprefix(_PREFIX) if path.startswith(_PREFIX) else path
    host, slash, rest = text.lstrip("/").partition("/")
    # The user part of the authority names the Airflow connection; it is not part of the path.
    host = host.rpartition("@")[2]
    return f"{host}{slash}{rest}".rstrip("/")


def connection_from_url(path: str) -> str | None:
    """The connection id written in the user part of an ``spo://conn_id@host/...`` URL."""
    if not path.startswith(_PREFIX):
        return None
    authority = path[len(_PREFIX) :].partition("/")[0]
    user, at, _ = authority.rpartition("@")
    return user if at and user else None


@dataclass(frozen=True)
class SpoPath:
    """An fsspec path split at the site: ``rest`` starts with the library (or a subsite)."""

    path: str
    hostname: str
    site_path: str
    rest: tuple[str, ...]

    @property
    def location(self) -> SharePointLocation:
        return SharePointLocation(hostname=self.hostname, site_path=self.site_path, segments=self.rest)

    @property
    def is_host(self) -> bool:
        return not self.site_path and not self.rest

    def hint(self) -> str:
        """Advice for a path that was not found, when the likely cause is visible in its text."""
        if _PERCENT_ESCAPE.search(self.path):
            return (
                " SharePoint names are used as written: write 'Shared Documents', not 'Shared%20Documents' "
                "(a URL copied from the browser is percent-encoded)."
            )
        return ""


def split_path(path: str) -> SpoPath:
    clean = strip_protocol(path)
    segments = [segment for segment in clean.split("/") if segment]
    if not segments:
        raise FileNotFoundError(
            "An spo:// path needs a SharePoint host, e.g. spo://my_conn@contoso.sharepoint.com/sites/Finance/"
            "Shared Documents/report.csv."
        )
    hostname, rest = segments[0].lower(), segments[1:]
    if rest and rest[0].lower() in MANAGED_PATHS:
        if len(rest) < 2:
            raise FileNotFoundError(f"'{clean}' names /{rest[0]} without a site.")
        return SpoPath(clean, hostname, "/".join(rest[:2]), tuple(rest[2:]))
    return SpoPath(clean, hostname, "", tuple(rest))
