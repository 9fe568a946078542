"""Graph's addressing grammar for sites, drives and driveItems (docs/microsoft-rules.md §B6).

A driveItem is addressed from its drive by ``root``, ``items/root``, ``items/{id}``, any of them
followed by ``:/relative/path:`` (the closing colon is optional at the end), and then by one
segment: a navigation (``children``, ``content``) or a function / action call, with or without
parentheses and parameters (``delta``, ``delta()``, ``delta(token='...')``,
``search(q='...')``, ``microsoft.graph.delta()``). This module only parses; the routes decide
what each segment does (and which ones answer 501).

https://learn.microsoft.com/graph/api/resources/driveitem and
https://learn.microsoft.com/onedrive/developer/rest-api/concepts/addressing-driveitems
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_provider_graphcert.testing.emulator.graph.common import invalid_request

# OData lets a bound function be qualified by its namespace: microsoft.graph.delta().
GRAPH_NAMESPACE = "microsoft.graph."


@dataclass(frozen=True)
class Segment:
    """One path segment after a resource: a name and, for a call, its parameters."""

    name: str
    arguments: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemAddress:
    """An item reference after /drives/{id}: 'root' or 'items/{id}', an optional ':/path:', a segment.

    ``item_id`` None means the drive's root. ``action`` is the segment after the item (None for
    the item itself), ``arguments`` its call parameters and ``rest`` whatever follows it
    ('/{child-id}' after 'children', for example).
    """

    item_id: str | None
    path: str | None
    action: str | None
    arguments: Mapping[str, str] = field(default_factory=dict)
    rest: str = ""


def parse_item_address(text: str) -> ItemAddress | None:
    """'root:/a/b:/children' -> ItemAddress(None, '/a/b', 'children'); None if it is no item address."""
    if text == "root" or text.startswith(("root:", "root/")):
        item_id, tail = None, text[4:]
    elif text.startswith("items/"):
        match = re.match(r"([^/:]+)(.*)", text[6:], re.DOTALL)
        if match is None:
            return None
        item_id, tail = match.group(1), match.group(2)
        # items/root is the documented alias of root.
        if item_id.lower() == "root":
            item_id = None
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
    if not tail.startswith("/") or tail == "/":
        return None
    segment, rest = parse_segment(tail[1:])
    return ItemAddress(item_id, path, segment.name, segment.arguments, rest)


def parse_segment(text: str) -> tuple[Segment, str]:
    """'delta(token='x')/more' -> (Segment('delta', {'token': 'x'}), '/more')."""
    match = re.match(r"[^/(]*", text)
    name = match.group(0) if match else ""
    rest = text[len(name) :]
    name = name.removeprefix(GRAPH_NAMESPACE)
    if not rest.startswith("("):
        return Segment(name), rest
    close = _closing_parenthesis(rest)
    arguments = parse_call_arguments(rest[1:close])
    return Segment(name, arguments), rest[close + 1 :]


def _closing_parenthesis(text: str) -> int:
    """Index of the ')' that closes text[0] == '(', skipping quoted strings ('' escapes a quote)."""
    quoted = False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif char == ")" and not quoted:
            return index
    raise invalid_request(f"The function call {text!r} has no closing parenthesis.")


def parse_call_arguments(text: str) -> dict[str, str]:
    """ "token='a''b',q=x" -> {'token': "a'b", 'q': 'x'}: OData function parameters."""
    arguments: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*").match(text, position)
        if match is None:
            raise invalid_request(f"The function parameters {text!r} are not name=value pairs.")
        position = match.end()
        if text.startswith("'", position):
            value, position = _quoted(text, position)
        else:
            end = text.find(",", position)
            end = len(text) if end < 0 else end
            value, position = text[position:end].strip(), end
        arguments[match.group(1)] = value
        position = text.find(",", position)
        position = len(text) if position < 0 else position + 1
    return arguments


def _quoted(text: str, start: int) -> tuple[str, int]:
    """An OData string literal at text[start] == "'": its value and the index after it."""
    value = ""
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "'":
            if text.startswith("''", position):
                value += "'"
                position += 2
                continue
            return value, position + 1
        value += char
        position += 1
    raise invalid_request(f"The string literal in {text!r} is not closed.")


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
