"""Export a SharePoint list's items to CSV or JSON Lines, paged and written atomically.

Graph's rules for list items: docs/microsoft-rules.md §B11.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from airflow_provider_graphcert.errors import ConfigurationError, GraphNotFoundError
from airflow_provider_graphcert.files import atomic_writer, write_json_lines
from airflow_provider_graphcert.graph.client import GraphClient

ExportFormat = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "jsonl")
# Graph pages list items at up to a few thousand; 1000 keeps pages large and responses quick.
LIST_PAGE_SIZE = 1000


def check_export_format(value: str) -> ExportFormat:
    if value not in EXPORT_FORMATS:
        hint = " (JSON is written as JSON Lines: one object per line)" if str(value).lower() == "json" else ""
        raise ConfigurationError(
            f"output_format {value!r} must be one of {', '.join(EXPORT_FORMATS)}{hint}.", field="output_format"
        )
    return value  # type: ignore[return-value]


def check_fields(fields: Sequence[str] | str | None) -> list[str] | None:
    """Column names to export; a string (what a template renders) is a comma-separated list.

    A bare string must not be taken as a sequence of one-letter columns ("Title" -> T, i, t ...).
    """
    if fields is None:
        return None
    names = fields.split(",") if isinstance(fields, str) else list(fields)
    if not all(isinstance(name, str) for name in names):
        raise ConfigurationError("fields must be column names (strings), e.g. ['Title', 'Amount'].", field="fields")
    cleaned = [name.strip() for name in names if name.strip()]
    return cleaned or None


def list_items(
    client: GraphClient, site_id: str, list_name: str, fields: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Each item as ``{"id": ..., **fields}``, lazily across pages."""
    expand = f"fields(select={','.join(fields)})" if fields else "fields"
    address = f"sites/{site_id}/lists/{quote(list_name, safe='')}/items"
    try:
        for item in client.iter_items(address, params={"expand": expand, "$top": LIST_PAGE_SIZE}):
            record = {"id": item.get("id")}
            record.update(item.get("fields") or {})
            if fields:
                record = {"id": record["id"], **{name: record.get(name) for name in fields}}
            yield record
    except GraphNotFoundError:
        raise ConfigurationError(
            f"The list '{list_name}' does not exist on this site (use its display name or id).", field="list_name"
        ) from None


def export_list(
    client: GraphClient,
    site_id: str,
    list_name: str,
    output: Path,
    *,
    fields: Sequence[str] | None = None,
    output_format: ExportFormat = "csv",
) -> int:
    """Write the list to ``output``; returns the number of items. Nothing appears until it is complete."""
    check_export_format(output_format)
    records = list_items(client, site_id, list_name, fields)
    if output_format == "jsonl":
        return write_json_lines(output, records)
    if fields:
        return _write_csv(output, ["id", *fields], records)
    # Without chosen fields the columns are only known at the end: spool to disk, then write.
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=output.parent) as spool:
        columns: dict[str, None] = {"id": None}
        for record in records:
            columns.update(dict.fromkeys(record))
            spool.write(json.dumps(record, ensure_ascii=False) + "\n")
        spool.seek(0)
        return _write_csv(output, list(columns), (json.loads(line) for line in spool))


def _write_csv(output: Path, columns: list[str], records: Iterator[dict[str, Any]]) -> int:
    count = 0
    with atomic_writer(output, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _cell(v) for k, v in record.items()})
            count += 1
    return count


def _cell(value: Any) -> Any:
    # Lookup and multi-choice columns arrive as JSON structures; keep them readable in one cell.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
