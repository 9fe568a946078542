"""Read the fields of a driveItem that Graph sent, checking each before it is used.

Graph's answers are not trusted blindly: a size that is not a whole number, a ``file`` facet that
is not an object or a date that does not parse would otherwise surface as a raw ValueError or
TypeError deep inside a transfer. Each reader here raises one :class:`MalformedItemError` naming
the item and the field instead. The one ISO-8601 parser of the package lives here too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError


class MalformedItemError(GraphCertError):
    """Graph described an item with a field we cannot use (wrong type, unparsable value)."""


def item_label(item: dict[str, Any]) -> str:
    name = item.get("name")
    return repr(name) if isinstance(name, str) else f"with id {item.get('id')!r}"


def _malformed(item: dict[str, Any], field: str, value: Any, expected: str) -> MalformedItemError:
    shown = repr(value)[:80]
    return MalformedItemError(
        f"Graph described item {item_label(item)} with {field}={shown}, which is not {expected}; "
        "the item was not transferred (a broken or hostile answer: retry later, or report it with the request-id)."
    )


def parse_iso(text: str) -> datetime:
    """An ISO-8601 date/time as Graph writes it (trailing ``Z`` included); ValueError if it is not one."""
    # Python 3.11's fromisoformat reads every form Graph sends, "Z" included.
    return datetime.fromisoformat(text)


def parse_moment(value: datetime | str | None, field: str = "modified_since") -> datetime | None:
    """An aware datetime from a task argument (an ISO string or a datetime); errors name ``field``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = parse_iso(str(value))
        except ValueError:
            raise ConfigurationError(
                f"{field} {value!r} is not an ISO date/time such as 2026-01-31T00:00:00Z.", field=field
            ) from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"{field} needs a time zone (e.g. a trailing Z for UTC).", field=field)
    return moment


def is_file(item: dict[str, Any]) -> bool:
    """Whether the item is a file; a ``file`` facet that is not an object is refused."""
    facet = item.get("file")
    if facet is None:
        return False
    if not isinstance(facet, dict):
        raise _malformed(item, "file", facet, "an object (the file facet)")
    return True


def file_size(item: dict[str, Any]) -> int:
    """The byte size of a file item: a whole number, never negative."""
    value = item.get("size")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _malformed(item, "size", value, "a whole number of bytes")
    return value


def quick_xor_hash(item: dict[str, Any]) -> str | None:
    """The QuickXorHash Graph reported for a file, or None when it sent none."""
    facet = item.get("file") if is_file(item) else None
    hashes = (facet or {}).get("hashes")
    if hashes is None:
        return None
    if not isinstance(hashes, dict):
        raise _malformed(item, "file.hashes", hashes, "an object")
    value = hashes.get("quickXorHash")
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise _malformed(item, "file.hashes.quickXorHash", value, "a base64 string")
    return value


def modified_at(item: dict[str, Any], *, prefer_file_system: bool = False) -> datetime | None:
    """``lastModifiedDateTime`` (or the file system's, when preferred and present) as an aware datetime."""
    field = "lastModifiedDateTime"
    value = item.get(field)
    info = item.get("fileSystemInfo")
    if prefer_file_system and isinstance(info, dict) and info.get(field):
        field, value = f"fileSystemInfo.{field}", info[field]
    if value is None:
        return None
    try:
        moment = parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _malformed(item, field, value, "an ISO date/time with a time zone")
    return moment
