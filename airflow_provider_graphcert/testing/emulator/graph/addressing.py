"""Graph's addressing grammar for sites, drives and driveItems (B6)."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
