"""Graph's query rules for users and groups: $filter, $orderby, $search and $count, basic and advanced.

Advanced queries need the ``ConsistencyLevel: eventual`` header and, except for ``$search``,
``$count=true`` (https://learn.microsoft.com/graph/aad-advanced-queries). Without them Graph
refuses ``$count``, ``$search``, the ``ne`` / ``not`` / ``endsWith`` operators, null comparisons
and sorting a filtered result; the errors below are the ones Graph answers with. Graph's
per-property tables are simplified to these per-operator rules (docs/testing-your-dags.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, not_implemented
from airflow_provider_graphcert.testing.emulator.graph.directory import Directory
from airflow_provider_graphcert.testing.emulator.graph.odata_filter import (
    Comparison,
    Expression,
    Function,
    Lambda,
    Literal,
    Not,
    OrderBy,
    evaluate,
    parse_filter,
    parse_orderby,
    properties_of,
    sort_entities,
    walk,
)

# Properties Graph sorts by without advanced queries (users: both; groups: displayName).
BASIC_ORDERBY = {"user": frozenset({"displayname", "userprincipalname"}), "group": frozenset({"displayname"})}
# Properties $search tokenizes (the user and group resource pages).
SEARCHABLE = {
    "user": frozenset({"displayname", "givenname", "surname", "mail", "userprincipalname", "mailnickname"}),
    "group": frozenset({"displayname", "description", "mail", "mailnickname"}),
}
_SEARCH_CLAUSE = re.compile(r'\s*"([^":]+):([^"]*)"\s*')


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def count_not_supported() -> GraphError:
    return GraphError(400, "Request_BadRequest", "$count is not currently supported.")


def search_needs_header() -> GraphError:
    return unsupported_query(
        "Request with $search query parameter only works through MSGraph with a special request header: "
        "'ConsistencyLevel: eventual'"
    )


@dataclass(frozen=True)
class SearchClause:
    property: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class DirectoryQuery:
    """A checked query over one directory: which entries match, in which order, and whether to count."""

    directory: Directory
    filter: Expression | None
    orderby: list[OrderBy]
    search: list[list[SearchClause]]  # OR of AND groups
    count: bool

    @property
    def plain(self) -> bool:
        """No filter, search or sort: entries come straight from their index, one page at a time."""
        return self.filter is None and not self.orderby and not self.search

    def matches(self, entry: Mapping[str, Any]) -> bool:
        known = {key.casefold(): key for key in entry}

        def get(path: str) -> Any:
            return entry.get(known.get(path.casefold(), path))

        if self.filter is not None and not evaluate(self.filter, get):
            return False
        return not self.search or any(all(_search_hit(clause, get) for clause in group) for group in self.search)

    def indexes(self) -> list[int]:
        """Indexes of the matching entries, in the requested order."""
        matching = [(i, entry) for i in range(self.directory.count) if self.matches(entry := self.directory.entry(i))]
        if not self.orderby:
            return [i for i, _ in matching]

        def get(pair: tuple[int, dict[str, Any]], path: str) -> Any:
            known = {key.casefold(): key for key in pair[1]}
            return pair[1].get(known.get(path.casefold(), path))

        return [i for i, _ in sort_entities(matching, self.orderby, get)]


def directory_query(directory: Directory, options: Mapping[str, str], headers: Mapping[str, str]) -> DirectoryQuery:
    """Parse and check the query options of /users or /groups the way Graph does."""
    eventual = headers.get("consistencylevel", "").strip().lower() == "eventual"
    count = options.get("count", "").strip().lower() == "true"
    advanced = eventual and count
    if "skip" in options:
        raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
    if "expand" in options:
        raise not_implemented(f"$expand on {directory.kind}s")
    if count and not eventual:
        raise count_not_supported()
    search = _parse_search(directory, options["search"]) if "search" in options else []
    if search and not eventual:
        raise search_needs_header()
    expression = parse_filter(options["filter"]) if options.get("filter") else None
    if expression is not None:
        _check_filter(directory, expression, advanced=advanced)
    orderby = parse_orderby(options["orderby"]) if options.get("orderby") else []
    _check_orderby(directory, orderby, filtered=expression is not None or bool(search), advanced=advanced)
    return DirectoryQuery(directory, expression, orderby, search, count)


def _resource_name(directory: Directory) -> str:
    return "User" if directory.kind == "user" else "Group"


def _known_properties(directory: Directory) -> dict[str, str]:
    sample = directory.sample_entry()
    return {key.casefold(): key for key in sample}


def _check_filter(directory: Directory, expression: Expression, *, advanced: bool) -> None:
    known = _known_properties(directory)
    for path in properties_of(expression):
        if path.split("/")[0].casefold() not in known:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{path}' on type 'microsoft.graph.{directory.kind}'.",
            )
    if advanced:
        return
    for node in walk(expression):
        subject = _subject(node)
        needs_advanced = (
            isinstance(node, Not)
            or (isinstance(node, Comparison) and node.operator == "ne")
            or (isinstance(node, Function) and node.name == "endswith")
            or (isinstance(node, Comparison) and isinstance(node.right, Literal) and node.right.value is None)
        )
        if needs_advanced:
            raise unsupported_query(
                f"Unsupported or invalid query filter clause specified for property '{subject}' "
                f"of resource '{_resource_name(directory)}'."
            )


def _subject(node: Expression) -> str:
    if isinstance(node, Comparison):
        return getattr(node.left, "path", "")
    if isinstance(node, Function):
        return node.subject.path
    if isinstance(node, Lambda):
        return node.collection.path
    if isinstance(node, Not):
        return _subject(node.operand)
    return ""


def _check_orderby(directory: Directory, orderby: list[OrderBy], *, filtered: bool, advanced: bool) -> None:
    if not orderby:
        return
    known = _known_properties(directory)
    for key in orderby:
        if key.path.casefold() not in known:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{key.path}' on type 'microsoft.graph.{directory.kind}'.",
            )
    if advanced:
        return
    basic = BASIC_ORDERBY[directory.kind]
    if filtered or any(key.path.casefold() not in basic for key in orderby):
        raise unsupported_query("Sorting not supported for current query.")


def _parse_search(directory: Directory, text: str) -> list[list[SearchClause]]:
    """'"displayName:ad" AND "mail:x" OR "surname:y"' -> [[displayName, mail], [surname]]."""
    groups: list[list[SearchClause]] = [[]]
    position = 0
    while True:
        match = _SEARCH_CLAUSE.match(text, position)
        if match is None:
            raise unsupported_query(
                f"Invalid $search value '{text}': use quoted clauses such as \"displayName:value\"."
            )
        name = match.group(1).strip()
        if name.casefold() not in SEARCHABLE[directory.kind]:
            raise unsupported_query(f"The property '{name}' does not support $search.")
        groups[-1].append(SearchClause(name, tuple(_words(match.group(2)))))
        position = match.end()
        if position >= len(text):
            return groups
        operator = re.compile(r"(AND|OR)\b").match(text, position)
        if operator is None:
            raise unsupported_query(f"Invalid $search value '{text}': join clauses with AND or OR.")
        if operator.group(1) == "OR":
            groups.append([])
        position = operator.end()


def _words(text: str) -> list[str]:
    """Search tokenizes on spaces, case and punctuation: 'Adele Vance' -> ['adele', 'vance']."""
    return [word.casefold() for word in re.split(r"[^\w]+", text) if word]


def _search_hit(clause: SearchClause, get: Any) -> bool:
    value = get(clause.property)
    if not isinstance(value, str):
        return False
    words = _words(value)
    # Every searched token must start some token of the property (Graph's prefix matching).
    return all(any(word.startswith(term) for word in words) for term in clause.terms)
