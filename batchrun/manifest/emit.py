"""Fast YAML and JSON writers for plain JSON-like data, for renders of 100,000 tasks.

PyYAML's dumper (even with libyaml) spends ~30 s on such a render, and ``json.dumps(indent=2)`` falls back to
pure Python; these writers do one pass with no intermediate copies. Key order: a dict of type :class:`Ordered`
keeps its insertion order; any other dict is written ``id`` first, then alphabetically, so renders are stable
whatever order the manifest used. Strings are written plain only when YAML reads them back as the same string,
otherwise single-quoted, or double-quoted in JSON syntax (which YAML reads too) when they hold control
characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_quote: Callable[[str], str] = json.encoder.encode_basestring
# YAML treats some non-ASCII characters (U+2028, U+0085) as line breaks even inside quotes: escape them all.
_quote_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii
_PLAIN = re.compile(r"[A-Za-z_/$][A-Za-z0-9_ ./$=()+;<>~^?-]*")
# Words YAML 1.1 resolves to booleans or null; written quoted so they stay text.
_RESERVED = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


class Ordered(dict[str, Any]):
    """A dict whose keys are written in insertion order."""


def _key_order(key: str) -> tuple[bool, str]:
    return (key != "id", key)


class _KeyOrders:
    """Key order per distinct key set: 100,000 tasks share a handful of shapes, so each is sorted once."""

    def __init__(self) -> None:
        self.orders: dict[tuple[str, ...], list[str]] = {}

    def items(self, mapping: dict[str, Any]) -> list[tuple[str, Any]]:
        if type(mapping) is Ordered:
            return list(mapping.items())
        keys = tuple(mapping)
        order = self.orders.get(keys)
        if order is None:
            order = sorted(keys, key=_key_order)
            self.orders[keys] = order
        return [(key, mapping[key]) for key in order]


def yaml_scalar(value: Any) -> str:
    if type(value) is str:
        if (
            _PLAIN.fullmatch(value)
            and value[-1] != " "
            and (len(value) > 5 or value.lower() not in _RESERVED)
        ):
            return value
        if value.isprintable():
            return "'" + value.replace("'", "''") + "'"
        return _quote_ascii(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML 1.1 needs a dot to read a float ("1e-05" would come back as text).
        return text if "." in text else text.replace("e", ".0e", 1)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _quote_ascii(str(value))


def to_yaml(data: Any) -> str:
    """Block-style YAML (sequences not indented under their key, like PyYAML's default)."""
    out: list[str] = []
    orders = _KeyOrders()
    keys: dict[str, str] = {}

    def mapping(value: dict[str, Any], first: str, rest: str) -> None:
        lead = first
        for key, item in orders.items(value):
            key_text = keys.get(key)
            if key_text is None:
                key_text = keys[key] = yaml_scalar(key)
            if isinstance(item, dict) and item:
                out.append(f"{lead}{key_text}:\n")
                mapping(item, rest + "  ", rest + "  ")
            elif isinstance(item, list) and item:
                out.append(f"{lead}{key_text}:\n")
                sequence(item, rest)
            else:
                out.append(f"{lead}{key_text}: {yaml_scalar(item)}\n")
            lead = rest

    def sequence(value: list[Any], pad: str) -> None:
        for item in value:
            if isinstance(item, dict) and item:
                mapping(item, pad + "- ", pad + "  ")
            elif isinstance(item, list) and item:
                out.append(f"{pad}-\n")
                sequence(item, pad + "  ")
            else:
                out.append(f"{pad}- {yaml_scalar(item)}\n")

    if isinstance(data, dict) and data:
        mapping(data, "", "")
    elif isinstance(data, list) and data:
        sequence(data, "")
    else:
        out.append(yaml_scalar(data) + "\n")
    return "".join(out)


def to_json(data: Any) -> str:
    """JSON indented by two spaces, like ``json.dumps(indent=2, ensure_ascii=False)``, in the order above."""
    out: list[str] = []
    scalar = json.dumps
    orders = _KeyOrders()

    def write(value: Any, pad: str) -> None:
        if isinstance(value, dict):
            if not value:
                out.append("{}")
                return
            inner = pad + "  "
            out.append("{\n")
            first = True
            for key, item in orders.items(value):
                if not first:
                    out.append(",\n")
                first = False
                out.append(f"{inner}{_quote(key)}: ")
                write(item, inner)
            out.append(f"\n{pad}}}")
        elif isinstance(value, list):
            if not value:
                out.append("[]")
                return
            inner = pad + "  "
            out.append("[\n")
            first = True
            for item in value:
                if not first:
                    out.append(",\n")
                first = False
                out.append(inner)
                write(item, inner)
            out.append(f"\n{pad}]")
        elif type(value) is str:
            out.append(_quote(value))
        else:
            out.append(scalar(value, ensure_ascii=False))

    write(data, "")
    out.append("\n")
    return "".join(out)
