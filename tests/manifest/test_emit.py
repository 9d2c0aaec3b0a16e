"""The fast YAML/JSON writers produce what YAML and JSON readers read back as the same data."""

from __future__ import annotations

import json

import yaml

from batchrun.manifest.emit import Ordered, to_json, to_yaml

TRICKY = [
    "",
    " ",
    " lead",
    "trail ",
    "yes",
    "No",
    "on",
    "OFF",
    "null",
    "~",
    "true",
    "y",
    "1.10",
    "1e3",
    "0x1F",
    "0o17",
    "2024-01-01",
    "12:30",
    "-",
    "- x",
    "? x",
    "a: b",
    "a:b",
    "#x",
    "x #y",
    "&a",
    "*a",
    "!t",
    "%x",
    "@x",
    "`x",
    "|",
    ">",
    "{x}",
    "[x]",
    "x,y",
    "'q'",
    '"dq"',
    "back\\slash",
    "tab\there",
    "line\nbreak",
    "é ü ß",
    "日本",
    "\u2028",
    ".inf",
    "-.inf",
    ".nan",
    "=",
    "<<",
    "$HOME",
    '/bin/sh -c "echo a > b"',
    "a  b",
    "x-",
    "_x",
    "/",
    "$",
    "=x",
    "ok",
    "id",
]


def test_round_trip_of_tricky_values() -> None:
    data = Ordered(
        strings=TRICKY,
        mapping={value or "empty": value for value in TRICKY if value},
        numbers=[0, -1, 10**20, 1.5, 1e-05, -2.5e300, float("inf")],
        flags=[True, False, None],
        empty={"list": [], "dict": {}},
        nested=[[1, [2, []]], [{"a": {"b": [{}]}}]],
    )
    from_yaml = yaml.safe_load(to_yaml(data))
    assert from_yaml == data
    assert json.loads(to_json({**data, "numbers": data["numbers"][:-1]})) == {
        **data,
        "numbers": data["numbers"][:-1],
    }


def test_key_order_id_first_then_sorted_unless_ordered() -> None:
    text = to_yaml(Ordered(z=1, a={"b": 1, "id": 2, "a": 3}))
    assert text == "z: 1\na:\n  id: 2\n  a: 3\n  b: 1\n"
    assert to_json({"b": 1, "id": "x"}) == '{\n  "id": "x",\n  "b": 1\n}\n'
