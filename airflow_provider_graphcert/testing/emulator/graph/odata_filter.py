"""The OData ``$filter`` and ``$orderby`` expressions Graph accepts on users, groups and list items.

Expressions are parsed into a small tree, checked by the resource's rules (which properties
exist, which operators need Graph's advanced queries), then evaluated against plain dicts. What
the grammar has but this engine does not (other functions, arithmetic, casts) answers 501 naming
it, so a test never passes on a filter that was silently dropped.

https://learn.microsoft.com/graph/filter-query-parameter and
https://learn.microsoft.com/graph/aad-advanced-queries
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, not_implemented

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
FUNCTIONS = frozenset({"startswith", "endswith"})
LAMBDAS = frozenset({"any", "all"})
# Every function OData v4 defines: named in the 501 so the user knows what was not evaluated.
OTHER_ODATA_FUNCTIONS = frozenset(
    {"contains", "substring", "indexof", "length", "tolower", "toupper", "trim", "concat", "year", "month",
     "day", "hour", "minute", "second", "date", "time", "now", "round", "floor", "ceiling", "cast", "isof",
     "has", "matchespattern"}
)  # fmt: skip

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_@][\w.@]*(?:/[A-Za-z_][\w.]*)*)
      | (?P<punct>[(),:/])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Property:
    path: str  # 'displayName', 'fields/Status', or 'x' / 'x/prop' inside a lambda


@dataclass(frozen=True)
class Comparison:
    operator: str
    left: Property | Literal
    right: Property | Literal


@dataclass(frozen=True)
class InList:
    subject: Property
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Function:
    name: str
    subject: Property
    argument: Any


@dataclass(frozen=True)
class Lambda:
    kind: str  # any / all
    collection: Property
    variable: str
    body: Expression


@dataclass(frozen=True)
class Logical:
    operator: str  # and / or
    left: Expression
    right: Expression


@dataclass(frozen=True)
class Not:
    operand: Expression


Expression: TypeAlias = Comparison | InList | Function | Lambda | Logical | Not


def filter_syntax_error(text: str, detail: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {detail} in '{text}'.")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(self._tokenize(text))
        self.position = 0

    def _tokenize(self, text: str) -> Iterator[tuple[str, str]]:
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    return
                raise filter_syntax_error(text, f"unexpected character at position {position}")
            kind = match.lastgroup
            assert kind is not None
            yield kind, match.group(kind)
            position = match.end()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise filter_syntax_error(self.text, "the expression ends too early")
        self.position += 1
        return token

    def expect(self, value: str) -> None:
        _, found = self.take()
        if found.lower() != value:
            raise filter_syntax_error(self.text, f"expected '{value}', found '{found}'")

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1].lower() in words:
            self.position += 1
            return token[1].lower()
        return None

    def parse(self) -> Expression:
        expression = self.or_expression()
        if self.peek() is not None:
            raise filter_syntax_error(self.text, f"unexpected '{self.peek()[1]}'")  # type: ignore[index]
        return expression

    def or_expression(self) -> Expression:
        left = self.and_expression()
        while self.keyword("or"):
            left = Logical("or", left, self.and_expression())
        return left

    def and_expression(self) -> Expression:
        left = self.unary()
        while self.keyword("and"):
            left = Logical("and", left, self.unary())
        return left

    def unary(self) -> Expression:
        if self.keyword("not"):
            return Not(self.unary())
        token = self.peek()
        if token == ("punct", "("):
            self.take()
            inner = self.or_expression()
            self.expect(")")
            return inner
        return self.predicate()

    def predicate(self) -> Expression:
        kind, value = self.take()
        if kind != "name":
            raise filter_syntax_error(self.text, f"a clause must start with a property, found '{value}'")
        if "/" in value and value.rsplit("/", 1)[1].lower() in LAMBDAS:
            return self.lambda_(value)
        if self.peek() == ("punct", "("):
            return self.call(value)
        subject = Property(value)
        operator = self.keyword(*COMPARISONS, "in")
        if operator is None:
            following = self.peek()
            found = following[1] if following else "the end"
            if following and following[0] == "name" and following[1].lower() in {"add", "sub", "mul", "div", "mod"}:
                raise not_implemented(f"arithmetic ('{following[1]}') in $filter")
            raise filter_syntax_error(self.text, f"expected an operator after '{value}', found '{found}'")
        if operator == "in":
            self.expect("(")
            values = [self.literal()]
            while self.peek() == ("punct", ","):
                self.take()
                values.append(self.literal())
            self.expect(")")
            return InList(subject, tuple(values))
        return Comparison(operator, subject, Literal(self.literal()))

    def call(self, name: str) -> Expression:
        lowered = name.lower()
        if lowered not in FUNCTIONS:
            if lowered in OTHER_ODATA_FUNCTIONS:
                raise not_implemented(f"the '{name}' function in $filter")
            raise filter_syntax_error(self.text, f"unknown function '{name}'")
        self.expect("(")
        kind, subject = self.take()
        if kind != "name":
            raise filter_syntax_error(self.text, f"{name}() needs a property first")
        self.expect(",")
        argument = self.literal()
        self.expect(")")
        # startswith(...) eq true is the long form of the same test.
        if self.keyword("eq") and self.literal() is not True:
            raise not_implemented(f"comparing {name}() with anything but true")
        return Function(lowered, Property(subject), argument)

    def lambda_(self, path: str) -> Expression:
        collection, _, kind = path.rpartition("/")
        self.expect("(")
        kind_, variable = self.take()
        if kind_ != "name":
            raise filter_syntax_error(self.text, f"{kind}() needs a range variable")
        self.expect(":")
        body = self.or_expression()
        self.expect(")")
        return Lambda(kind.lower(), Property(collection), variable, body)

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "datetime":
            return dt.datetime.fromisoformat(value)
        if kind == "guid":
            return value
        if kind == "name" and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if kind == "name" and value.lower() == "null":
            return None
        raise filter_syntax_error(self.text, f"expected a value, found '{value}'")


def parse_filter(text: str) -> Expression:
    return _Parser(text).parse()


def walk(expression: Expression) -> Iterator[Expression]:
    """Every node of the tree, for the resource's checks (properties, advanced operators)."""
    yield expression
    if isinstance(expression, Logical):
        yield from walk(expression.left)
        yield from walk(expression.right)
    elif isinstance(expression, Not):
        yield from walk(expression.operand)
    elif isinstance(expression, Lambda):
        yield from walk(expression.body)


def properties_of(expression: Expression) -> list[str]:
    """The resource properties a filter reads (lambda range variables excluded)."""
    found: list[str] = []
    for node in walk(expression):
        if isinstance(node, Comparison) and isinstance(node.left, Property):
            found.append(node.left.path)
        elif isinstance(node, InList | Function):
            found.append(node.subject.path)
        elif isinstance(node, Lambda):
            found.append(node.collection.path)
    lambda_variables = {node.variable for node in walk(expression) if isinstance(node, Lambda)}
    return [path for path in found if path.split("/")[0] not in lambda_variables]


Getter = Callable[[str], Any]


def evaluate(expression: Expression, get: Getter) -> bool:
    """Whether the entity whose property values ``get(path)`` returns matches."""
    if isinstance(expression, Logical):
        if expression.operator == "and":
            return evaluate(expression.left, get) and evaluate(expression.right, get)
        return evaluate(expression.left, get) or evaluate(expression.right, get)
    if isinstance(expression, Not):
        return not evaluate(expression.operand, get)
    if isinstance(expression, Comparison):
        assert isinstance(expression.left, Property) and isinstance(expression.right, Literal)
        return compare(expression.operator, get(expression.left.path), expression.right.value)
    if isinstance(expression, InList):
        value = get(expression.subject.path)
        return any(compare("eq", value, candidate) for candidate in expression.values)
    if isinstance(expression, Function):
        value = get(expression.subject.path)
        if not isinstance(value, str) or not isinstance(expression.argument, str):
            return False
        if expression.name == "startswith":
            return value.casefold().startswith(expression.argument.casefold())
        return value.casefold().endswith(expression.argument.casefold())
    collection = get(expression.collection.path) or []
    prefix = expression.variable

    def bound(element: Any) -> Getter:
        def lookup(path: str) -> Any:
            if path == prefix:
                return element
            if path.startswith(prefix + "/"):
                return element.get(path[len(prefix) + 1 :]) if isinstance(element, dict) else None
            return get(path)

        return lookup

    results = (evaluate(expression.body, bound(element)) for element in collection)
    return any(results) if expression.kind == "any" else all(results)


def sort_key(value: Any) -> tuple[int, Any]:
    """Nulls first (as Graph sorts them ascending), then strings without regard to case."""
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value).casefold())


def compare(operator: str, value: Any, literal: Any) -> bool:
    if isinstance(literal, dt.datetime) and isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return False
    if isinstance(value, str) and isinstance(literal, int | float) and not isinstance(literal, bool):
        try:
            value = float(value)
        except ValueError:
            return False
    if isinstance(value, str) and isinstance(literal, str):
        value, literal = value.casefold(), literal.casefold()
    if isinstance(value, bool) and isinstance(literal, int) and not isinstance(literal, bool):
        value = int(value)
    if operator == "eq":
        return bool(value == literal)
    if operator == "ne":
        return bool(value != literal)
    if value is None or literal is None:
        return False
    try:
        ordering = int(value > literal) - int(value < literal)
    except TypeError:
        return False
    return {"gt": ordering > 0, "ge": ordering >= 0, "lt": ordering < 0, "le": ordering <= 0}[operator]


@dataclass(frozen=True)
class OrderBy:
    path: str
    descending: bool


def parse_orderby(text: str) -> list[OrderBy]:
    """'displayName desc, id' -> [OrderBy('displayName', True), OrderBy('id', False)]."""
    keys: list[OrderBy] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in {"asc", "desc"}):
            raise GraphError(400, "BadRequest", f"Invalid $orderby clause '{part.strip()}'.")
        keys.append(OrderBy(words[0], len(words) == 2 and words[1].lower() == "desc"))
    return keys


def sort_entities(entities: Sequence[Any], keys: Sequence[OrderBy], get: Callable[[Any, str], Any]) -> list[Any]:
    """A stable sort by several keys, each ascending or descending."""
    ordered = list(entities)
    for key in reversed(keys):

        def by_key(entity: Any, path: str = key.path) -> tuple[int, Any]:
            return sort_key(get(entity, path))

        ordered.sort(key=by_key, reverse=key.descending)
    return ordered
