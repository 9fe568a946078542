"""Users and groups (/users, /groups) with paging and $select."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from airflow_provider_graphcert.testing.emulator.graph.calls import (
    GROUPS_READ_ROLES,
    USERS_READ_ROLES,
    GraphCall,
    RouteBase,
)
from airflow_provider_graphcert.testing.emulator.graph.common import (
    DIRECTORY_DEFAULT_PAGE_SIZE,
    DIRECTORY_MAX_PAGE_SIZE,
    GraphError,
)
from airflow_provider_graphcert.testing.emulator.graph.directory import (
    GROUP_DEFAULT_PROPERTIES,
    USER_DEFAULT_PROPERTIES,
    Directory,
)
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    decode_skiptoken,
    encode_skiptoken,
    link_with,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.render import json_response


class DirectoryRoutes(RouteBase):
    """/users and /groups."""

    async def list_users(self, call: GraphCall) -> Response:
        return self.list_directory(call, self.state.users, USERS_READ_ROLES, USER_DEFAULT_PROPERTIES, "users")

    async def list_groups(self, call: GraphCall) -> Response:
        return self.list_directory(call, self.state.groups, GROUPS_READ_ROLES, GROUP_DEFAULT_PROPERTIES, "groups")

    async def get_user(self, call: GraphCall) -> Response:
        return self.get_directory_object(call, self.state.users, USERS_READ_ROLES, USER_DEFAULT_PROPERTIES)

    async def get_group(self, call: GraphCall) -> Response:
        return self.get_directory_object(call, self.state.groups, GROUPS_READ_ROLES, GROUP_DEFAULT_PROPERTIES)

    def list_directory(
        self, call: GraphCall, directory: Directory, roles: frozenset[str], defaults: Sequence[str], entity: str
    ) -> Response:
        call.require(roles, directory=True)
        self._only(call, "GET")
        if "filter" in call.options or "search" in call.options:
            raise GraphError(400, "Request_UnsupportedQuery", "The emulator does not implement $filter or $search.")
        top = parse_top(call.options, DIRECTORY_DEFAULT_PAGE_SIZE, DIRECTORY_MAX_PAGE_SIZE, strict=True)
        select = directory_select(directory, parse_select(call.options), defaults)
        offset = int(decode_skiptoken(self.state, entity, call.options.get("skiptoken")) or 0)
        # Only this page is generated: a million-entry directory costs one page of memory.
        entries = directory.entries(offset, offset + top)
        base = f"{call.request.url.scheme}://{call.request.url.netloc}{call.request.scope.get('root_path', '')}"
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{entity}"}
        if call.options.get("count", "").lower() == "true":
            body["@odata.count"] = directory.count
        body["value"] = [{key: entry[key] for key in select} for entry in entries]
        if offset + top < directory.count:
            token = encode_skiptoken(self.state, entity, offset + top)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        return json_response(body)

    def get_directory_object(
        self, call: GraphCall, directory: Directory, roles: frozenset[str], defaults: Sequence[str]
    ) -> Response:
        call.require(roles, directory=True)
        self._only(call, "GET")
        key = call.request.path_params["key"]
        index = directory.index_of(key)
        if index is None:
            alias = key.partition("@")[0]
            match = re.fullmatch(rf"{directory.kind}(\d+)", alias)
            index = int(match.group(1)) if match and int(match.group(1)) < directory.count else None
        if index is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        select = directory_select(directory, parse_select(call.options), defaults)
        entry = directory.entry(index)
        return json_response({key: entry[key] for key in select})


def directory_select(directory: Directory, select: list[str] | None, defaults: Sequence[str]) -> list[str]:
    if not select:
        return list(defaults)
    known = {key.casefold(): key for key in directory.entry(0)} if directory.count else {}
    chosen: list[str] = []
    for name in select:
        if name.casefold() not in known and directory.count:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{directory.kind}'.",
            )
        chosen.append(known.get(name.casefold(), name))
    return chosen
