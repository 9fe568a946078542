"""Reading a drive's changes: delta (docs/microsoft-rules.md §B4) in both call forms, and search(q=).

``delta``, ``delta()`` and ``delta(token='…')`` are the same function; ``?token=`` works too.
Links handed back always use ``…/delta?token=…``, which every form accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.addressing import ItemAddress
from airflow_provider_graphcert.testing.emulator.graph.calls import GraphCall, RouteBase
from airflow_provider_graphcert.testing.emulator.graph.common import (
    DELTA_DEFAULT_PAGE_SIZE,
    DRIVE_DEFAULT_PAGE_SIZE,
    DRIVE_MAX_PAGE_SIZE,
    DeltaTokenExpired,
    invalid_request,
)
from airflow_provider_graphcert.testing.emulator.graph.drives import DeltaCursor, DeltaEntry, Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    check_options,
    collection_context,
    decode_skiptoken,
    encode_skiptoken,
    function_link,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.render import (
    item_json,
    json_response,
    select_properties,
    tombstone_json,
)


class DeltaRoutes(RouteBase):
    """GET …/delta[()] and GET …/search(q='…')."""

    async def delta(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        check_options(call.options, {"select", "top", "token"}, "delta")
        item = self.resolve(drive, address)
        if not item.is_root:
            raise invalid_request("SharePoint supports delta only on the root of a drive.")
        token = address.arguments.get("token", call.options.get("token"))
        if token == "latest":
            link = function_link(call.request, {"token": drive.delta_latest_token()})
            context = collection_context(call.request, "driveItem")
            return json_response({"@odata.context": context, "value": [], "@odata.deltaLink": link})
        try:
            cursor = self.delta_cursor(drive, token)
        except DeltaTokenExpired as exc:
            exc.headers["Location"] = function_link(call.request, {}, drop=("token", "skiptoken"))
            raise
        top = parse_top(call.options, DELTA_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        include_parents = "deltaexcludeparent" not in call.request.headers
        page = drive.delta_page(cursor, top=top, include_parents=include_parents)
        select = parse_select(call.options)
        files_base = self.files_base()
        value = [select_properties(self.delta_entry_json(drive, entry, files_base), select) for entry in page.entries]
        body: dict[str, Any] = {"@odata.context": collection_context(call.request, "driveItem"), "value": value}
        if page.next_token is not None:
            body["@odata.nextLink"] = function_link(call.request, {"token": page.next_token})
        if page.delta_token is not None:
            body["@odata.deltaLink"] = function_link(call.request, {"token": page.delta_token})
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

    async def search(self, call: GraphCall, drive: Drive, address: ItemAddress) -> Response:
        """search(q='text'): items below the folder whose name contains every word of ``q``.

        SharePoint searches names, metadata and content through its index; the emulator matches
        names only (docs/testing-your-dags.md).
        """
        check_options(call.options, {"select", "top", "skiptoken"}, "search")
        if "q" not in address.arguments:
            raise invalid_request("search needs a q parameter: search(q='text').")
        folder = self.resolve(drive, address)
        words = [word.casefold() for word in address.arguments["q"].split() if word]
        found = [item for item in drive.descendants(folder) if all(w in item.name.casefold() for w in words)]
        top = parse_top(call.options, DRIVE_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        kind = f"search:{folder.id}"
        offset = int(decode_skiptoken(self.state, kind, call.options.get("skiptoken")) or 0)
        select = parse_select(call.options)
        files_base = self.files_base()
        page = found[offset : offset + top]
        value = [select_properties(item_json(self.state, item, files_base), select) for item in page]
        body: dict[str, Any] = {"@odata.context": collection_context(call.request, "driveItem"), "value": value}
        if offset + top < len(found):
            token = encode_skiptoken(self.state, kind, offset + top)
            body["@odata.nextLink"] = function_link(call.request, {"$skiptoken": token}, keep_arguments=True)
        return json_response(body)


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
