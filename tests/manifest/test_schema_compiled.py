"""The compiled schema (batchrun.manifest.schema_compiled) says "valid" exactly when jsonschema does.

It lets a valid manifest skip importing jsonschema, so a yes that jsonschema would not give would hide an
error.
Compared over every manifest of the repository (workloads/, the README's and docs' examples), thousands of
broken variants of them (every value replaced by values of other types and shapes, keys removed, unknown and
known keys added), and keyword cases where JSON Schema's semantics differ from Python's (``True`` is not
``1``, ``1.0`` is an integer, ``re.search`` is not a full match).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from batchrun.errors import ManifestError
from batchrun.manifest import load_workload
from batchrun.manifest.schema_compiled import compile_schema
from batchrun.manifest.validate import SchemaChecker, SchemaPaths, load_schema

REPO = Path(__file__).resolve().parents[2]

SAMPLES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.0,
    1.5,
    10**12,
    "",
    "x",
    "1.10",
    "a b",
    "standard_d2s_v3",
    [],
    ["x"],
    [1, 1],
    ["x", "x"],
    {},
    {"x": 1},
    {1: "x"},
]


def _example_manifests(tmp: Path) -> list[Path]:
    """workloads/*.yaml and every fenced YAML block of the README and docs/ that is a manifest."""
    paths = sorted((REPO / "workloads").glob("*.yaml"))
    fence = re.compile(r"```ya?ml\n(.*?)```", re.S)
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for number, block in enumerate(fence.findall(doc.read_text(encoding="utf-8"))):
            if "apiVersion: batchrun/v1" in block:
                path = tmp / f"{doc.stem}-{number}.yaml"
                path.write_text(block, encoding="utf-8")
                paths.append(path)
    return paths


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """What the schema checks for each example manifest (its data after variable substitution)."""
    captured: list[Any] = []
    original = SchemaChecker.check

    def capture(self: SchemaChecker, document: Any, instance: Any, base: Any = ()) -> Any:
        captured.append(copy.deepcopy(instance))
        return original(self, document, instance, base)

    tmp = tmp_path_factory.mktemp("examples")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SchemaChecker, "check", capture)
        for path in _example_manifests(tmp):
            # An example may name files that are not there: its schema check ran before that is found.
            with contextlib.suppress(ManifestError):
                load_workload(path, {}, (), 100_000)
    assert len(captured) >= 6
    return captured


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _replaced(instance: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    result = copy.deepcopy(instance)
    parent = result
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return result


def _without(instance: Any, path: tuple[Any, ...], key: Any) -> Any:
    result = copy.deepcopy(instance)
    parent = result
    for part in path:
        parent = parent[part]
    del parent[key]
    return result


def _mutants(instance: Any, paths: SchemaPaths, depth: int = 100) -> Iterator[Any]:
    for path, node in _paths(instance):
        if len(path) > depth:
            continue
        for sample in SAMPLES:
            yield _replaced(instance, path, sample)
        if isinstance(node, dict):
            for key in node:
                yield _without(instance, path, key)
            yield _replaced(instance, path, {**node, "unknownKey": 1})
            schema = paths.subschema(path)
            known = schema.get("properties", {}) if isinstance(schema, dict) else {}
            for key in known:
                if key not in node:
                    for sample in ("x", 1, {}, ["x"], True):
                        yield _replaced(instance, path, {**node, key: sample})
        if isinstance(node, list) and node:
            yield _replaced(instance, path, [*node, copy.deepcopy(node[0])])


def _generated(schema: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """An instance shaped by ``node`` (every property, the first alternative), valid or nearly so."""
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if not isinstance(node, dict):
        return {}
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    for alternatives in ("oneOf", "anyOf"):
        if alternatives in node:
            return _generated(schema, node[alternatives][0], depth + 1)
    kind = node.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        if depth > 3:
            return {}
        properties = node.get("properties", {})
        return {name: _generated(schema, child, depth + 1) for name, child in properties.items()}
    if kind == "array":
        return [_generated(schema, node.get("items", {}), depth + 1)] * max(1, node.get("minItems", 1))
    if kind == "integer":
        return node.get("minimum", 1)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(1, node.get("minLength", 1))


def _verdicts(schema: dict[str, Any], instance: Any) -> tuple[bool, bool]:
    compiled = compile_schema(schema)
    assert compiled is not None
    return compiled.is_valid(instance), jsonschema.Draft202012Validator(schema).is_valid(instance)


def test_the_manifest_schema_compiles() -> None:
    assert compile_schema(load_schema()) is not None


def test_same_verdict_as_jsonschema_on_every_example_and_its_broken_variants(views: list[Any]) -> None:
    schema = load_schema()
    compiled = compile_schema(schema)
    assert compiled is not None
    reference = jsonschema.Draft202012Validator(schema)
    paths = SchemaPaths(schema)
    seen: set[str] = set()
    valid = invalid = 0
    for view in views:
        assert compiled.is_valid(view) == reference.is_valid(view)
        for mutant in _mutants(view, paths):
            key = json.dumps(mutant, sort_keys=True, default=repr)
            if key in seen:
                continue
            seen.add(key)
            expected = reference.is_valid(mutant)
            assert compiled.is_valid(mutant) == expected, key[:2000]
            valid += expected
            invalid += not expected
    # The variants reach both answers, many times.
    assert valid > 200 and invalid > 2000, (valid, invalid)


def test_same_verdict_as_jsonschema_for_every_definition_and_its_broken_variants() -> None:
    schema = load_schema()
    checked = 0
    for name in schema["$defs"]:
        part = {"$schema": schema["$schema"], "$ref": f"#/$defs/{name}", "$defs": schema["$defs"]}
        compiled = compile_schema(part)
        assert compiled is not None
        reference = jsonschema.Draft202012Validator(part)
        instance = _generated(schema, part)
        seen: set[str] = set()
        # Two levels deep: deeper definitions are checked on their own.
        for mutant in [instance, *_mutants(instance, SchemaPaths(part), depth=2)]:
            key = json.dumps(mutant, sort_keys=True, default=repr)
            if key not in seen:
                seen.add(key)
                assert compiled.is_valid(mutant) == reference.is_valid(mutant), (name, key[:2000])
        checked += len(seen)
    assert checked > 10_000, checked


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"enum": [1, "a"]}, True),  # True is not 1 for JSON Schema
        ({"enum": [1, "a"]}, 1.0),  # but 1.0 is 1
        ({"enum": [[1]]}, [True]),
        ({"enum": [{"a": 0}]}, {"a": False}),
        ({"const": False}, 0),
        ({"const": "1"}, 1),
        ({"type": "integer"}, 1.0),
        ({"type": "integer"}, 1.5),
        ({"type": "integer"}, True),
        ({"type": "number"}, False),
        ({"type": ["string", "null"]}, None),
        ({"type": "object"}, []),
        ({"minimum": 1}, "0"),  # bounds apply to numbers only
        ({"minimum": 1}, True),
        ({"maximum": 1}, float("nan")),
        ({"exclusiveMinimum": 1}, 1),
        ({"exclusiveMaximum": 1}, 0.5),
        ({"minLength": 2}, "é"),
        ({"maxLength": 1}, "é"),
        ({"minItems": 1}, {}),
        ({"maxProperties": 1}, {"a": 1, "b": 2}),
        ({"pattern": "b"}, "abc"),  # a search, not a full match
        ({"pattern": "^b"}, "abc"),
        ({"pattern": "^b"}, 5),
        ({"uniqueItems": True}, [1, True]),
        ({"uniqueItems": True}, [1, 1.0]),
        ({"uniqueItems": True}, [[1], [True]]),
        ({"uniqueItems": True}, [{"a": 1}, {"a": 1}]),
        ({"uniqueItems": True}, ["a", 1, "a"]),
        ({"required": ["a"]}, "not an object"),
        ({"required": ["a"]}, {1: "x"}),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {1: "x"}),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"Ab": "x"}),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}),
        ({"additionalProperties": {"type": "string"}, "properties": {"a": {}}}, {"a": 1, "b": "2"}),
        ({"additionalProperties": False, "patternProperties": {"^x-": {}}}, {"x-a": 1}),
        ({"patternProperties": {"^x-": {"type": "string"}}}, {"x-a": 1}),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1),
        ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, 1),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, None),
        ({"allOf": [{"minimum": 0}, {"maximum": 2}]}, 3),
        ({"not": {"required": ["a", "b"]}}, {"a": 1, "b": 2}),
        ({"not": {"required": ["a", "b"]}}, {"a": 1}),
        ({"dependentRequired": {"a": ["b"]}}, {"a": 1}),
        ({"format": "date-time"}, "not a date"),  # formats are not asserted
        ({"x-hint": "ignored", "title": "t"}, 1),
        ({"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}, [[[]]]),
        ({"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}, [[1]]),
        ({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "minLength": 2}, "a"),  # $ref and siblings
        (True, object()),
        (False, None),
    ],
)
def test_keyword_semantics_match_jsonschema(schema: Any, instance: Any) -> None:
    if isinstance(schema, bool):
        compiled = compile_schema({"$ref": "#/$defs/b", "$defs": {"b": schema}})
        assert compiled is not None
        assert compiled.is_valid(instance) is schema
        return
    fast, expected = _verdicts(schema, instance)
    assert fast == expected


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"if": {"type": "string"}, "then": {"minLength": 1}},
        {"$ref": "https://example.com/other.json"},
        {"$ref": "#/$defs/a~1b", "$defs": {"a/b": {}}},
        {"properties": {"a": {"$id": "https://example.com/a", "type": "string"}}},
        {"type": "strnig"},
        {"properties": {"a": {"pattern": "("}}},
        {"unevaluatedProperties": False},
    ],
)
def test_a_schema_with_what_is_not_compiled_is_left_to_jsonschema(schema: dict[str, Any]) -> None:
    compiled = compile_schema(schema)
    assert compiled is None or not compiled.is_valid({"a": "b"})


def test_a_definition_that_cannot_be_compiled_turns_every_answer_into_no() -> None:
    compiled = compile_schema(
        {"properties": {"a": {"$ref": "#/$defs/d"}}, "$defs": {"d": {"if": {"type": "string"}}}}
    )
    assert compiled is not None
    assert compiled.is_valid({})  # the definition is not reached
    assert not compiled.is_valid({"a": 1})  # reached: jsonschema decides
    assert not compiled.is_valid({})  # and from then on, for everything
