"""The manifest schema compiled into a yes/no check with jsonschema's Draft 2020-12 semantics, without it.

Importing jsonschema (with referencing, rpds and attrs) costs more than everything else ``batchrun validate``
does on a small manifest, and a valid manifest needs only a yes. So the schema is compiled into nested checks
of the keywords it uses, with jsonschema's semantics: its type checker (booleans are not numbers, ``1.0`` is
an integer), its equality for ``enum``/``const``/``uniqueItems`` (``True`` is not ``1``), ``re.search`` for
patterns, formats not asserted (the validator is built without a format checker), unknown keywords ignored.
jsonschema is imported only to explain a no: a no is never reported on its own, the caller asks jsonschema
for the errors. A check that is too strict therefore costs time, never a wrong answer; one too lenient would
hide errors, which tests/manifest/test_schema_compiled.py rules out by comparing both verdicts over every
manifest of the repository and many broken variants of them.

A schema that uses a Draft 2020-12 keyword not compiled here, a ``$ref`` other than ``#/$defs/<name>``, or a
nested ``$id``/``$anchor`` (which change what a reference means) is not compiled: :func:`compile_schema`
returns None and every check goes to jsonschema. Definitions are compiled on first use, so a manifest pays
only for the parts of the schema its keys reach.
"""

from __future__ import annotations

import itertools
import numbers
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any

Check = Callable[[Any], bool]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Draft 2020-12 keywords jsonschema evaluates but this module does not compile: their presence means "use
# jsonschema". Every other keyword outside _KEYWORDS (title, description, x-hint, ...) is an annotation that
# jsonschema ignores, and so is it here.
_NOT_COMPILED = frozenset(
    {
        "$dynamicRef",
        "$dynamicAnchor",
        "$anchor",
        "$recursiveRef",
        "$recursiveAnchor",
        "$vocabulary",
        "contains",
        "dependentSchemas",
        "if",
        "multipleOf",
        "prefixItems",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)


class Unsupported(Exception):
    """The schema uses something this module does not compile."""


def compile_schema(schema: Any) -> CompiledSchema | None:
    """The compiled check of a whole schema, or None when it uses what is not compiled here."""
    if not isinstance(schema, dict) or schema.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
        return None
    try:
        return CompiledSchema(schema)
    except Unsupported:
        return None


class CompiledSchema:
    """A schema compiled into closures, one per keyword of each node; ``$ref`` targets on first use."""

    def __init__(self, schema: dict[str, Any]) -> None:
        defs = schema.get("$defs", {})
        if not isinstance(defs, dict):
            raise Unsupported("$defs")
        self._defs: dict[str, Any] = defs
        self._compiled: dict[str, Check] = {}
        self._broken = False
        self._check = self._compile(schema, root=True)

    def is_valid(self, instance: Any) -> bool:
        """True only when jsonschema finds no error in ``instance``; False when it may find one."""
        if self._broken:
            return False
        try:
            return self._check(instance)
        except Unsupported:  # a definition reached for the first time uses what is not compiled here
            self._broken = True
            return False
        except Exception:  # anything unforeseen: jsonschema decides (a no is always safe)
            return False

    # -- compilation -------------------------------------------------------------------------------------

    def _compile(self, node: Any, root: bool = False) -> Check:
        if node is True:
            return _always
        if node is False:
            return _never
        if not isinstance(node, dict):
            raise Unsupported(repr(node)[:40])
        if not root and ("$id" in node or "$schema" in node):
            raise Unsupported("$id")
        checks: list[Check] = []
        for keyword, value in node.items():
            if keyword in _NOT_COMPILED:
                raise Unsupported(keyword)
            build = _KEYWORDS.get(keyword)
            if build is not None:
                check = build(self, value, node)
                if check is not None:
                    checks.append(check)
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return _all_of_checks(tuple(checks))

    def _reference(self, ref: Any, _node: dict[str, Any]) -> Check:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise Unsupported(f"$ref {ref!r}")
        name = ref[len("#/$defs/") :]
        if not name or any(mark in name for mark in "/~%") or name not in self._defs:
            raise Unsupported(f"$ref {ref!r}")

        def check(instance: Any) -> bool:
            # Compiled when first reached (compiling only builds closures, so a definition that refers to
            # itself is compiled once).
            compiled = self._compiled.get(name)
            if compiled is None:
                compiled = self._compiled[name] = self._compile(self._defs[name])
            return compiled(instance)

        return check


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:  # jsonschema would fail on it when validating: let it
        raise Unsupported(f"pattern {pattern!r}") from error


def _always(_instance: Any) -> bool:
    return True


def _never(_instance: Any) -> bool:
    return False


def _all_of_checks(checks: tuple[Check, ...]) -> Check:
    def check(instance: Any) -> bool:
        return all(each(instance) for each in checks)

    return check


# -- jsonschema's type checker and equality (jsonschema._types, jsonschema._utils) -----------------------


def _is_number(instance: Any) -> bool:
    return not isinstance(instance, bool) and isinstance(instance, numbers.Number)


def _is_integer(instance: Any) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


_TYPES: dict[str, Check] = {
    "array": lambda instance: isinstance(instance, list),
    "boolean": lambda instance: isinstance(instance, bool),
    "integer": _is_integer,
    "null": lambda instance: instance is None,
    "number": _is_number,
    "object": lambda instance: isinstance(instance, dict),
    "string": lambda instance: isinstance(instance, str),
}

_TRUE = object()
_FALSE = object()


def _unbool(element: Any) -> Any:
    if element is True:
        return _TRUE
    if element is False:
        return _FALSE
    return element


def equal(one: Any, two: Any) -> bool:
    """jsonschema's equality: booleans differ from numbers, at any depth; ``1 == 1.0``."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(equal(i, j) for i, j in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(
            key in two and equal(value, two[key]) for key, value in one.items()
        )
    return bool(_unbool(one) == _unbool(two))


def _unique(container: list[Any]) -> bool:
    """jsonschema's ``uniq``: sorted neighbours compared when the items sort, else every pair."""
    try:
        ordered = sorted(_unbool(item) for item in container)
        for i, j in zip(ordered, itertools.islice(ordered, 1, None), strict=False):
            if equal(i, j):
                return False
    except (NotImplementedError, TypeError):
        seen: list[Any] = []
        for item in container:
            item = _unbool(item)
            if any(equal(other, item) for other in seen):
                return False
            seen.append(item)
    return True


# -- keywords: each returns the check of one keyword of a schema node (None when it never fails) ---------

Builder = Callable[[CompiledSchema, Any, dict[str, Any]], "Check | None"]


def _type(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    names = value if isinstance(value, list) else [value]
    if not names or any(not isinstance(name, str) or name not in _TYPES for name in names):
        raise Unsupported(f"type {value!r}")
    tests = tuple(_TYPES[name] for name in names)
    if len(tests) == 1:
        return tests[0]
    return lambda instance: any(test(instance) for test in tests)


def _enum(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    if not isinstance(value, list):
        raise Unsupported("enum")
    options = tuple(value)
    if all(isinstance(option, str) for option in options):
        strings = frozenset(options)
        return lambda instance: isinstance(instance, str) and instance in strings
    return lambda instance: any(equal(option, instance) for option in options)


def _const(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    return lambda instance: equal(instance, value)


def _properties(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check | None:
    if not isinstance(value, dict):
        raise Unsupported("properties")
    children = tuple((name, compiler._compile(schema)) for name, schema in value.items())
    if not children:
        return None

    def check(instance: Any) -> bool:
        return not isinstance(instance, dict) or all(
            name not in instance or child(instance[name]) for name, child in children
        )

    return check


def _pattern_properties(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check | None:
    if not isinstance(value, dict) or not all(isinstance(pattern, str) for pattern in value):
        raise Unsupported("patternProperties")
    children = tuple((_regex(pattern), compiler._compile(schema)) for pattern, schema in value.items())
    if not children:
        return None

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for key, item in instance.items():
            if not isinstance(key, str):
                return False  # jsonschema fails on it (re.search of a non-string): let it say how
            for pattern, child in children:
                if pattern.search(key) and not child(item):
                    return False
        return True

    return check


def _additional_properties(compiler: CompiledSchema, value: Any, node: dict[str, Any]) -> Check | None:
    if value is True:
        return None
    known = node.get("properties", {})
    patterns = node.get("patternProperties", {})
    if not isinstance(known, dict) or not isinstance(patterns, dict):
        raise Unsupported("additionalProperties")
    names = frozenset(name for name in known if isinstance(name, str))
    if len(names) != len(known):
        raise Unsupported("properties")
    joined = _regex("|".join(patterns)) if patterns else None
    child = compiler._compile(value)

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for key, item in instance.items():
            if key in names:
                continue
            if joined is not None:
                if not isinstance(key, str):
                    return False  # as in _pattern_properties
                if joined.search(key):
                    continue
            if not child(item):
                return False
        return True

    return check


def _required(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check | None:
    if not isinstance(value, list):
        raise Unsupported("required")
    names = tuple(value)
    if not names:
        return None
    return lambda instance: not isinstance(instance, dict) or all(name in instance for name in names)


def _property_names(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    child = compiler._compile(value)
    return lambda instance: not isinstance(instance, dict) or all(child(key) for key in instance)


def _count(kind: type[Sized], compare: Callable[[int, Any], bool]) -> Builder:
    def build(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
        if not _is_number(value):
            raise Unsupported("a count that is not a number")
        return lambda instance: not isinstance(instance, kind) or compare(len(instance), value)

    return build


def _bound(compare: Callable[[Any, Any], bool]) -> Builder:
    def build(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
        if not _is_number(value):
            raise Unsupported("a bound that is not a number")
        return lambda instance: not _is_number(instance) or compare(instance, value)

    return build


def _items(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check | None:
    if value is True:
        return None
    child = compiler._compile(value)
    return lambda instance: not isinstance(instance, list) or all(child(item) for item in instance)


def _unique_items(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check | None:
    if not value:
        return None
    return lambda instance: not isinstance(instance, list) or _unique(instance)


def _pattern(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    if not isinstance(value, str):
        raise Unsupported("pattern")
    search = _regex(value).search
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _dependent_required(_compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    if not isinstance(value, dict) or not all(isinstance(names, list) for names in value.values()):
        raise Unsupported("dependentRequired")
    rules = tuple((name, tuple(names)) for name, names in value.items())
    return lambda instance: (
        not isinstance(instance, dict)
        or all(name not in instance or all(other in instance for other in others) for name, others in rules)
    )


def _subschemas(compiler: CompiledSchema, value: Any) -> tuple[Check, ...]:
    if not isinstance(value, list) or not value:
        raise Unsupported("a list of subschemas")
    return tuple(compiler._compile(schema) for schema in value)


def _all_of(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    return _all_of_checks(_subschemas(compiler, value))


def _any_of(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    branches = _subschemas(compiler, value)
    return lambda instance: any(branch(instance) for branch in branches)


def _one_of(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    branches = _subschemas(compiler, value)
    return lambda instance: sum(1 for branch in branches if branch(instance)) == 1


def _not(compiler: CompiledSchema, value: Any, _node: dict[str, Any]) -> Check:
    child = compiler._compile(value)
    return lambda instance: not child(instance)


def _annotation(_compiler: CompiledSchema, _value: Any, _node: dict[str, Any]) -> None:
    return None  # "format" without a format checker, as SchemaChecker builds jsonschema's validator


_KEYWORDS: dict[str, Builder] = {
    "$ref": lambda compiler, value, node: compiler._reference(value, node),
    "additionalProperties": _additional_properties,
    "allOf": _all_of,
    "anyOf": _any_of,
    "const": _const,
    "dependentRequired": _dependent_required,
    "enum": _enum,
    "exclusiveMaximum": _bound(lambda instance, limit: instance < limit),
    "exclusiveMinimum": _bound(lambda instance, limit: instance > limit),
    "format": _annotation,
    "items": _items,
    "maxItems": _count(list, lambda size, limit: not size > limit),
    "maxLength": _count(str, lambda size, limit: not size > limit),
    "maxProperties": _count(dict, lambda size, limit: not size > limit),
    "maximum": _bound(lambda instance, limit: not instance > limit),
    "minItems": _count(list, lambda size, limit: not size < limit),
    "minLength": _count(str, lambda size, limit: not size < limit),
    "minProperties": _count(dict, lambda size, limit: not size < limit),
    "minimum": _bound(lambda instance, limit: not instance < limit),
    "not": _not,
    "oneOf": _one_of,
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "properties": _properties,
    "propertyNames": _property_names,
    "required": _required,
    "type": _type,
    "uniqueItems": _unique_items,
}
