"""SharePoint lists and their items (docs/microsoft-rules.md §B11), with $filter and $orderby on
``fields/…`` under SharePoint's rule for columns without an index.

A filter or sort on a column that has no index is refused unless the request sends
``Prefer: HonorNonIndexedQueriesWarningMayFailRandomly``
(https://learn.microsoft.com/graph/api/listitem-list#example-2-list-with-selected-fields-and-filter).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.calls import (
    SITE_READ_ROLES,
    SITE_WRITE_ROLES,
    GraphCall,
    RouteBase,
    read_json,
    segment_not_found,
)
from airflow_provider_graphcert.testing.emulator.graph.common import (
    DRIVE_MAX_PAGE_SIZE,
    LIST_ITEMS_DEFAULT_PAGE_SIZE,
    GraphError,
    invalid_request,
    not_implemented,
)
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    check_options,
    collection_context,
    decode_skiptoken,
    encode_skiptoken,
    link_with,
    parse_expand,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.odata_filter import (
    OrderBy,
    evaluate,
    parse_filter,
    parse_orderby,
    properties_of,
    sort_entities,
)
from airflow_provider_graphcert.testing.emulator.graph.render import (
    column_json,
    json_response,
    list_item_fields,
    list_item_json,
    list_json,
    select_properties,
)
from airflow_provider_graphcert.testing.emulator.graph.sites import ListItem, SharePointList, Site

NON_INDEXED_PREFERENCE = "HonorNonIndexedQueriesWarningMayFailRandomly"
# Top-level listItem properties a filter or sort may name besides fields/…, and where they live.
LIST_ITEM_PROPERTIES = {"id": "id", "createddatetime": "Created", "lastmodifieddatetime": "Modified"}
# Columns every list has an index on.
ALWAYS_INDEXED = frozenset({"id"})
UNIMPLEMENTED_LIST_SEGMENTS = frozenset({"contentTypes", "drive", "subscriptions", "operations", "activities"})
UNIMPLEMENTED_LIST_ITEM_SEGMENTS = frozenset({"versions", "driveItem", "analytics", "documentSetVersions"})


class ListRoutes(RouteBase):
    """/sites/{site}/lists[/{list}[/columns|/items[/{id}[/fields]]]]."""

    async def lists(self, call: GraphCall, site: Site, key: str | None, rest: str) -> Response:
        call.require(SITE_READ_ROLES if call.method in {"GET", "HEAD"} else SITE_WRITE_ROLES)
        if key is None:
            self._only(call, "GET")
            check_options(call.options, {"select"}, "lists")
            with self.state.lock:
                lists = list(site.lists.values())
            select = parse_select(call.options)
            return json_response(
                {
                    "@odata.context": collection_context(call.request, "list"),
                    "value": [select_properties(list_json(sp_list, with_columns=False), select) for sp_list in lists],
                }
            )
        sp_list = site.find_list(key)
        segment = rest.strip("/").split("/")[0]
        if rest == "":
            self._only(call, "GET")
            check_options(call.options, {"select", "expand"}, "a list")
            expand = parse_expand(call.options)
            for name in expand:
                if name != "columns":
                    raise not_implemented(f"$expand={name} on a list")
            data = list_json(sp_list, with_columns="columns" in expand)
            return json_response(select_properties(data, parse_select(call.options)))
        if rest == "/columns":
            self._only(call, "GET")
            check_options(call.options, set(), "list columns")
            columns = [column_json(n) for n in ["Title", *sp_list.columns]]
            return json_response(
                {"@odata.context": collection_context(call.request, "columnDefinition"), "value": columns}
            )
        if rest == "/items":
            if call.method == "POST":
                return await self.create_list_item(call, sp_list)
            self._only(call, "GET")
            return self.list_items(call, sp_list)
        item_match = re.fullmatch(r"/items/([^/]+)(/fields)?", rest)
        if item_match:
            return await self.list_item(call, sp_list, item_match.group(1), fields_only=bool(item_match.group(2)))
        if segment in UNIMPLEMENTED_LIST_SEGMENTS:
            raise not_implemented(f"/lists/{{id}}/{segment}")
        item_segment = re.fullmatch(r"/items/[^/]+/([^/(]+).*", rest)
        if item_segment and item_segment.group(1) in UNIMPLEMENTED_LIST_ITEM_SEGMENTS:
            raise not_implemented(f"/lists/{{id}}/items/{{id}}/{item_segment.group(1)}")
        raise segment_not_found(segment)

    async def list_item(self, call: GraphCall, sp_list: SharePointList, item_id: str, *, fields_only: bool) -> Response:
        item = sp_list.item(item_id)
        if call.method == "DELETE" and not fields_only:
            sp_list.delete_item(item)
            return Response(status_code=204)
        if call.method == "PATCH" and fields_only:
            payload = await read_json(call.request)
            sp_list.update_fields(item, payload)
            return json_response(list_item_fields(sp_list, item))
        self._only(call, "GET")
        if fields_only:
            check_options(call.options, {"select"}, "list item fields")
            fields = list_item_fields(sp_list, item)
            return json_response(select_properties(fields, parse_select(call.options)))
        check_options(call.options, {"select", "expand"}, "a list item")
        expand = self.checked_expand(call)
        data = list_item_json(sp_list, item, expand)
        return json_response(select_properties(data, self.selection(call, expand)))

    @staticmethod
    def checked_expand(call: GraphCall) -> dict[str, list[str] | None]:
        expand = parse_expand(call.options)
        for name in expand:
            if name != "fields":
                raise not_implemented(f"$expand={name} on list items")
        return expand

    @staticmethod
    def selection(call: GraphCall, expand: dict[str, list[str] | None]) -> list[str] | None:
        select = parse_select(call.options)
        # An expanded navigation stays in the answer even when $select does not name it.
        return [*select, *expand] if select else None

    def list_items(self, call: GraphCall, sp_list: SharePointList) -> Response:
        check_options(call.options, {"select", "expand", "filter", "orderby", "top", "skiptoken"}, "list items")
        expand = self.checked_expand(call)
        top = parse_top(call.options, LIST_ITEMS_DEFAULT_PAGE_SIZE, DRIVE_MAX_PAGE_SIZE)
        query = (call.options.get("filter", ""), call.options.get("orderby", ""))
        kind = f"list:{sp_list.id}:{query}"
        position = decode_skiptoken(self.state, kind, call.options.get("skiptoken"))
        if query == ("", ""):
            items, following = sp_list.items_page(after=int(position or 0), top=top)
        else:
            items, following = self.queried_page(call, sp_list, int(position or 0), top)
        select = self.selection(call, expand)
        body: dict[str, Any] = {
            "@odata.context": collection_context(call.request, "listItem"),
            "value": [select_properties(list_item_json(sp_list, item, expand), select) for item in items],
        }
        if following is not None:
            token = encode_skiptoken(self.state, kind, following)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        return json_response(body)

    def queried_page(
        self, call: GraphCall, sp_list: SharePointList, offset: int, top: int
    ) -> tuple[list[ListItem], int | None]:
        """Items matching $filter in $orderby order (the position is an offset into that result)."""
        expression = parse_filter(call.options["filter"]) if call.options.get("filter") else None
        orderby = parse_orderby(call.options["orderby"]) if call.options.get("orderby") else []
        named = [*(properties_of(expression) if expression else []), *(key.path for key in orderby)]
        honour = NON_INDEXED_PREFERENCE.casefold() in call.request.headers.get("prefer", "").casefold()
        for path in named:
            check_list_property(sp_list, path, honour_non_indexed=honour)
        with self.state.lock:
            everything = [sp_list.items[i] for i in sorted(sp_list.items)]
        values = {item.id: list_item_fields(sp_list, item) for item in everything}

        def get(item: ListItem, path: str) -> Any:
            return values[item.id].get(field_name(path))

        def matches(item: ListItem) -> bool:
            return expression is None or evaluate(expression, lambda path: get(item, path))

        matching = [item for item in everything if matches(item)]
        if orderby:
            matching = sort_entities(matching, [OrderBy(k.path, k.descending) for k in orderby], get)
        following = offset + top if offset + top < len(matching) else None
        return matching[offset : offset + top], following

    async def create_list_item(self, call: GraphCall, sp_list: SharePointList) -> Response:
        payload = await read_json(call.request)
        fields = payload.get("fields")
        if not isinstance(fields, dict):
            raise invalid_request("The request body needs a 'fields' object.")
        item = sp_list.add_item(fields)
        return json_response(list_item_json(sp_list, item, {"fields": None}), 201)


def field_name(path: str) -> str:
    """'fields/Status' -> 'Status'; 'createdDateTime' -> 'Created' (where list_item_fields has it)."""
    if path.startswith("fields/"):
        return path[len("fields/") :]
    return LIST_ITEM_PROPERTIES.get(path.casefold(), path)


def check_list_property(sp_list: SharePointList, path: str, *, honour_non_indexed: bool) -> None:
    if not path.startswith("fields/") and path.casefold() not in LIST_ITEM_PROPERTIES:
        raise not_implemented(f"filtering or sorting list items by '{path}' (use fields/<column>)")
    column = field_name(path)
    known = {"Title", "id", "Created", "Modified", *sp_list.columns}
    if column not in known:
        raise GraphError(
            400, "invalidRequest", f"Column '{column}' does not exist. It may have been deleted by another user."
        )
    indexed = column.casefold() in ALWAYS_INDEXED or column in sp_list.indexed_columns
    if not indexed and not honour_non_indexed:
        raise GraphError(
            400,
            "invalidRequest",
            f"Field '{column}' cannot be referenced in filter or orderby as it is not indexed. Provide the "
            f"'Prefer: {NON_INDEXED_PREFERENCE}' header to allow this, but be warned that such queries may "
            "fail on large lists.",
        )
