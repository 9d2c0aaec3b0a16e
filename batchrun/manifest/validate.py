"""Structural validation against schemas/manifest.schema.json, with messages people can act on.

jsonschema finds the problems; this module says them in the manifest's terms: the key's line and column,
"did you mean" for misspelt keys and enum values, and the YAML 1.1 traps (``1.10`` read as a number, ``on`` as
a boolean).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchrun.errors import Diagnostic
from batchrun.manifest.load import Document, PathKey
from batchrun.manifest.schema_compiled import CompiledSchema, compile_schema
from batchrun.manifest.suggest import did_you_mean

if TYPE_CHECKING:
    import jsonschema  # type: ignore[import-untyped]

_MAX_SHOWN = 60


def schema_path() -> Path:
    """The schema file: inside an installed wheel (batchrun/_schemas) or at the root of a source checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_schemas" / "manifest.schema.json"
    if packaged.is_file():
        return packaged
    return package.parent / "schemas" / "manifest.schema.json"


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


def shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (empty value)"
    if isinstance(value, bool):
        return f"the boolean {shown(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


class SchemaChecker:
    """Validates instances against the manifest schema (or one of its definitions).

    A valid instance is recognised by the compiled schema (batchrun.manifest.schema_compiled) without
    importing jsonschema; jsonschema's validator is built only to find and explain the errors of an invalid
    one.
    """

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        self.schema = schema if schema is not None else load_schema()
        self.compiled: CompiledSchema | None = compile_schema(self.schema)
        self._validator: jsonschema.Draft202012Validator | None = None

    @property
    def validator(self) -> jsonschema.Draft202012Validator:
        if self._validator is None:
            import jsonschema

            self._validator = jsonschema.Draft202012Validator(self.schema)
        return self._validator

    def check(self, document: Document, instance: Any, base: PathKey = ()) -> list[Diagnostic]:
        """Diagnostics for ``instance`` (the document's data, or the part of it at ``base``)."""
        if self.compiled is not None and self.compiled.is_valid(instance):
            return []
        problems: dict[tuple[Any, ...], Diagnostic] = {}
        for error in self.validator.iter_errors(instance):
            for diagnostic in self.explain(document, error, base):
                problems.setdefault((diagnostic.line, diagnostic.column, diagnostic.message), diagnostic)
        return list(problems.values())

    def explain(
        self, document: Document, error: jsonschema.ValidationError, base: PathKey
    ) -> Iterable[Diagnostic]:
        path: PathKey = (*base, *error.absolute_path)
        validator = error.validator
        instance = error.instance
        schema = error.schema if isinstance(error.schema, dict) else {}
        if validator == "additionalProperties" and isinstance(instance, dict):
            allowed = list(schema.get("properties", {}))
            for key in instance:
                if key in allowed:
                    continue
                hint = did_you_mean(key, allowed) or (
                    f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
                )
                yield document.diagnostic((*path, key), f"unknown key {key!r}", hint, key=True)
            return
        if validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            if isinstance(instance, dict) and any(
                isinstance(key, str) and did_you_mean(key, [missing]) for key in instance
            ):
                return  # a misspelt key is there: its "unknown key ...; did you mean" says it all
            yield document.diagnostic(path, f"missing required key {missing!r}", f"add '{missing}: ...'")
            return
        if validator == "type":
            expected = schema.get("type")
            expected_list = expected if isinstance(expected, list) else [expected]
            words = " or ".join(_TYPE_WORDS.get(str(item), str(item)) for item in expected_list)
            message = f"expected {words}, found {type_name(instance)}"
            hint = ""
            raw = document.plain_scalars.get(path)
            if raw is not None and "string" in expected_list:
                hint = f'YAML read {raw} as {type_name(instance)}; quote it to keep it as text: "{raw}"'
            elif instance is None:
                hint = "give it a value or remove the key"
            yield document.diagnostic(path, message, hint)
            return
        if validator == "enum":
            options = [str(option) for option in schema.get("enum", [])]
            hint = did_you_mean(str(instance), options) or f"use one of: {', '.join(options)}"
            yield document.diagnostic(path, f"{shown(instance)} is not an accepted value", hint)
            return
        if validator == "const":
            yield document.diagnostic(path, f"must be {shown(schema.get('const'))}, found {shown(instance)}")
            return
        if validator == "pattern":
            title = schema.get("title", "the expected form")
            yield document.diagnostic(
                path, f"{shown(instance)} is not a valid {title}", str(schema.get("x-hint", ""))
            )
            return
        if validator == "propertyNames" and isinstance(instance, dict):
            import jsonschema

            for key in instance:
                if not isinstance(key, str) or not jsonschema.Draft202012Validator(error.schema).is_valid(
                    {key: 0}
                ):
                    yield document.diagnostic(
                        (*path, key),
                        f"{key!r} is not a valid name",
                        "names start with a letter or '_' and hold only letters, digits and '_'",
                        key=True,
                    )
            return
        if validator in ("minimum", "maximum") and isinstance(schema, dict):
            low, high = schema.get("minimum"), schema.get("maximum")
            if low is not None and high is not None:
                limits = f"from {low} to {high}"
            else:
                limits = f"at least {low}" if low is not None else f"at most {high}"
            yield document.diagnostic(path, f"{shown(instance)} is out of range", f"use a value {limits}")
            return
        if validator in ("oneOf", "anyOf"):
            yield from self.explain_alternatives(document, error, path, base)
            return
        message = error.message
        if len(message) > 200:
            message = message[:197] + "..."
        yield document.diagnostic(path, message)

    def explain_alternatives(
        self, document: Document, error: jsonschema.ValidationError, path: PathKey, base: PathKey
    ) -> Iterable[Diagnostic]:
        """Report the errors of the one alternative whose shape the value has, or list the alternatives."""
        by_branch: dict[int, list[jsonschema.ValidationError]] = {}
        for sub in error.context or []:
            by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        fitting = [
            errors
            for errors in by_branch.values()
            if not any(not sub.relative_path and sub.validator in ("type", "required") for sub in errors)
        ]
        if len(fitting) == 1:
            for sub in fitting[0]:
                yield from self.explain(document, sub, base)
            return
        branches = error.schema.get(error.validator, []) if isinstance(error.schema, dict) else []
        titles = [str(branch.get("title", "")) for branch in branches if isinstance(branch, dict)]
        description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
        yield document.diagnostic(
            path,
            f"{shown(error.instance)} does not have any of the accepted forms ({', '.join(titles)})",
            str(description),
        )


class SchemaPaths:
    """Answers "does the schema accept only text here?" for a path, so ``"${n}"`` becomes ``"3"`` there."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.cache: dict[tuple[Any, ...], bool] = {}

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            reference = str(node["$ref"])
            if not reference.startswith("#/$defs/"):
                return None
            node = self.schema["$defs"].get(reference[len("#/$defs/") :])
        return node

    def subschema(self, path: PathKey) -> Any:
        node = self._resolve(self.schema)
        for part in path:
            if not isinstance(node, dict):
                return None
            if isinstance(part, int):
                node = self._resolve(node.get("items"))
            else:
                properties = node.get("properties", {})
                child = properties[part] if part in properties else node.get("additionalProperties")
                node = self._resolve(child)
        return node

    def text_only(self, path: PathKey) -> bool:
        # Cache by the path without list indexes: every task of a factory shares the answer.
        key = tuple("[]" if isinstance(part, int) else part for part in path)
        found = self.cache.get(key)
        if found is None:
            node = self.subschema(path)
            found = isinstance(node, dict) and node.get("type") == "string"
            self.cache[key] = found
        return found
