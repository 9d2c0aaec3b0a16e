"""OData query options Batch supports on list operations: ``$filter``, ``$select``, ``maxresults`` and paging.

``$filter`` forms understood: ``<field> eq|ne '<value>'`` (strings, numbers, true/false),
``startswith(<field>, '<prefix>')``, combined with ``and`` / ``or`` and parentheses. ``<field>`` is a property
path like ``state`` or
``executionInfo/result``, restricted per resource kind. Anything else is a 400 naming the clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from batchrun.emulator.errors import invalid_query

Predicate = Callable[[Mapping[str, Any]], bool]
MAX_RESULTS = 1000

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z0-9_./$:-]+))")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise invalid_query("$filter", text, f"unexpected text at '{text[position : position + 20]}'")
        tokens.append(match.group(match.lastgroup or "word"))
        position = match.end()
    return tokens


def _lookup(body: Mapping[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.split("/"):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class _Parser:
    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0
        self.fields = fields

    def fail(self, reason: str) -> Exception:
        return invalid_query("$filter", self.text, reason)

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("the filter ends too early")
        self.position += 1
        return token

    def expect(self, token: str) -> None:
        found = self.take()
        if found != token:
            raise self.fail(f"expected '{token}' but found '{found}'")

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise self.fail(f"unsupported clause starting at '{self.peek()}'")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda body: any(part(body) for part in parts))

    def conjunction(self) -> Predicate:
        parts = [self.clause()]
        while self.peek() == "and":
            self.take()
            parts.append(self.clause())
        return parts[0] if len(parts) == 1 else (lambda body: all(part(body) for part in parts))

    def field(self) -> str:
        name = self.take()
        if name not in self.fields:
            raise self.fail(
                f"filtering on '{name}' is not supported here (supported: {', '.join(sorted(self.fields))})"
            )
        return name

    def literal(self) -> Any:
        token = self.take()
        if token.startswith("'"):
            return token[1:-1].replace("''", "'")
        if token in ("true", "false"):
            return token == "true"
        try:
            return int(token)
        except ValueError:
            raise self.fail(f"'{token}' is not a quoted string, number or boolean") from None

    def clause(self) -> Predicate:
        token = self.peek()
        if token == "(":
            self.take()
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token == "startswith":
            self.take()
            self.expect("(")
            name = self.field()
            self.expect(",")
            prefix = self.literal()
            self.expect(")")
            if not isinstance(prefix, str):
                raise self.fail("startswith needs a quoted string prefix")
            return lambda body: str(_lookup(body, name) or "").startswith(prefix)
        name = self.field()
        operator = self.take()
        if operator not in ("eq", "ne"):
            raise self.fail(f"operator '{operator}' is not supported (use eq, ne or startswith)")
        value = self.literal()
        if operator == "eq":
            return lambda body: _lookup(body, name) == value
        return lambda body: _lookup(body, name) != value


def parse_filter(text: str | None, fields: Iterable[str]) -> Predicate | None:
    if not text or not text.strip():
        return None
    return _Parser(text, frozenset(fields)).parse()


def parse_select(text: str | None) -> list[str] | None:
    if not text or not text.strip():
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
            raise invalid_query("$select", text, f"'{name}' is not a top-level property name")
    return names


def apply_select(body: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if names is None:
        return body
    return {name: body[name] for name in names if name in body}


def parse_max_results(text: str | None) -> int:
    if text is None or text == "":
        return MAX_RESULTS
    try:
        value = int(text)
    except ValueError:
        raise invalid_query("maxresults", text, "must be an integer between 1 and 1000") from None
    if not 1 <= value <= MAX_RESULTS:
        raise invalid_query("maxresults", text, "must be an integer between 1 and 1000")
    return value


class Page(msgspec.Struct, frozen=True):
    items: list[dict[str, Any]]
    next_marker: str | None


def paginate(ordered: Iterator[tuple[str, dict[str, Any]]], predicate: Predicate | None, limit: int) -> Page:
    """Take up to ``limit`` matching items from ``(key, body)`` pairs; the marker is the last key."""
    items: list[dict[str, Any]] = []
    last_key: str | None = None
    for key, body in ordered:
        if predicate is not None and not predicate(body):
            continue
        if len(items) == limit:
            return Page(items, last_key)
        items.append(body)
        last_key = key
    return Page(items, None)


def next_link(base_url: str, path: str, query: Mapping[str, str], marker: str) -> str:
    params = {name: value for name, value in query.items() if name != "$skiptoken"}
    params["$skiptoken"] = marker
    return f"{base_url}{path}?{urlencode(params)}"
