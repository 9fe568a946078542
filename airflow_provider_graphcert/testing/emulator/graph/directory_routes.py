"""Users and groups (/users, /groups, /users/$count) with paging, $select, $filter, $orderby,
$search and $count under Graph's rules (``directory_query``)."""

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
    not_implemented,
)
from airflow_provider_graphcert.testing.emulator.graph.directory import (
    GROUP_DEFAULT_PROPERTIES,
    USER_DEFAULT_PROPERTIES,
    Directory,
)
from airflow_provider_graphcert.testing.emulator.graph.directory_query import DirectoryQuery, directory_query
from airflow_provider_graphcert.testing.emulator.graph.odata import (
    check_options,
    context_url,
    decode_skiptoken,
    encode_skiptoken,
    link_with,
    parse_select,
    parse_top,
)
from airflow_provider_graphcert.testing.emulator.graph.render import json_response

# Graph's answer to /me (and /me/...) with an application token: there is no signed-in user.
ME_WITH_APP_TOKEN = "/me request is only valid with delegated authentication flow."


class DirectoryRoutes(RouteBase):
    """/users, /groups and /me."""

    async def list_users(self, call: GraphCall) -> Response:
        return self.list_directory(call, self.state.users, USERS_READ_ROLES, USER_DEFAULT_PROPERTIES, "users")

    async def list_groups(self, call: GraphCall) -> Response:
        return self.list_directory(call, self.state.groups, GROUPS_READ_ROLES, GROUP_DEFAULT_PROPERTIES, "groups")

    async def count_users(self, call: GraphCall) -> Response:
        return self.count_directory(call, self.state.users, USERS_READ_ROLES)

    async def count_groups(self, call: GraphCall) -> Response:
        return self.count_directory(call, self.state.groups, GROUPS_READ_ROLES)

    async def get_user(self, call: GraphCall) -> Response:
        return self.get_directory_object(call, self.state.users, USERS_READ_ROLES, USER_DEFAULT_PROPERTIES)

    async def get_group(self, call: GraphCall) -> Response:
        return self.get_directory_object(call, self.state.groups, GROUPS_READ_ROLES, GROUP_DEFAULT_PROPERTIES)

    async def directory_relation(self, call: GraphCall) -> Response:
        """/users/{id}/memberOf, /groups/{id}/members, ...: relations the emulator does not model."""
        entity = call.request.url.path.split("/v1.0/", 1)[-1].split("/")[0]
        raise not_implemented(f"/{entity}/{{id}}/{call.request.path_params['rest']}")

    async def me(self, call: GraphCall) -> Response:
        if "scp" not in call.claims:
            raise GraphError(400, "BadRequest", ME_WITH_APP_TOKEN)
        raise not_implemented("/me (the emulator issues application tokens only)")

    def list_directory(
        self, call: GraphCall, directory: Directory, roles: frozenset[str], defaults: Sequence[str], entity: str
    ) -> Response:
        call.require(roles, directory=True)
        self._only(call, "GET")
        # $skip and $expand are in the set: directory_query answers them the way Graph does.
        supported = {"select", "top", "skiptoken", "filter", "orderby", "count", "search", "skip", "expand"}
        check_options(call.options, supported, entity)
        query = directory_query(directory, call.options, call.request.headers)
        top = parse_top(call.options, DIRECTORY_DEFAULT_PAGE_SIZE, DIRECTORY_MAX_PAGE_SIZE, strict=True)
        select = directory_select(directory, parse_select(call.options), defaults)
        offset = int(decode_skiptoken(self.state, entity, call.options.get("skiptoken")) or 0)
        total, entries = self._page(directory, query, offset, top)
        body: dict[str, Any] = {"@odata.context": context_url(call.request, entity)}
        if query.count:
            body["@odata.count"] = total
        if offset + top < total:
            # Before "value", where Graph writes it for directory collections
            # (docs/microsoft-rules.md §B3).
            token = encode_skiptoken(self.state, entity, offset + top)
            body["@odata.nextLink"] = link_with(call.request, {"$skiptoken": token})
        body["value"] = [{key: entry[key] for key in select} for entry in entries]
        return json_response(body)

    @staticmethod
    def _page(directory: Directory, query: DirectoryQuery, offset: int, top: int) -> tuple[int, list[dict[str, Any]]]:
        if query.plain:
            # Only this page is generated: a million-entry directory costs one page of memory.
            return directory.count, directory.entries(offset, offset + top)
        indexes = query.indexes()
        return len(indexes), [directory.entry(i) for i in indexes[offset : offset + top]]

    def count_directory(self, call: GraphCall, directory: Directory, roles: frozenset[str]) -> Response:
        """/users/$count: a plain-text number, an advanced query (ConsistencyLevel: eventual)."""
        call.require(roles, directory=True)
        self._only(call, "GET")
        if call.request.headers.get("consistencylevel", "").strip().lower() != "eventual":
            raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
        options = {**call.options, "count": "true"}
        query = directory_query(directory, options, call.request.headers)
        total = directory.count if query.plain else len(query.indexes())
        return Response(str(total), media_type="text/plain")

    def get_directory_object(
        self, call: GraphCall, directory: Directory, roles: frozenset[str], defaults: Sequence[str]
    ) -> Response:
        call.require(roles, directory=True)
        self._only(call, "GET")
        if "expand" in call.options:
            raise not_implemented(f"$expand on a {directory.kind}")
        check_options(call.options, {"select"}, f"a {directory.kind}")
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
    known = {key.casefold(): key for key in directory.sample_entry()}
    chosen: list[str] = []
    for name in select:
        if name.casefold() not in known:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{directory.kind}'.",
            )
        chosen.append(known[name.casefold()])
    return chosen
