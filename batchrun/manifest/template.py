"""``${name}`` substitution, compiled once per string so that expanding 100,000 tasks stays cheap.

Syntax: ``${name}``, ``${name.attribute}``, ``${name:format-spec}`` (Python format spec, e.g. ``03d``), ``$$``
for a literal ``$``. A ``$`` followed by anything else is kept as is, so ``$HOME`` reaches the shell
untouched. A string that is exactly one ``${name}`` takes the value itself, keeping its type (a number
stays a number).

:meth:`Compiler.compile` resolves the names it knows (variables) and leaves the names given as ``deferred``
(factory axes) for :meth:`Compiled.value`, sharing every part of the value that needs no substitution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from batchrun.manifest.load import PathKey
from batchrun.manifest.suggest import did_you_mean

_TOKEN = re.compile(r"\$\$|\$\{([^{}]*)\}|\$\{")
_REFERENCE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?(?::(.*))?\s*$", re.S)


class SubstitutionError(Exception):
    """A reference that cannot be resolved or formatted; ``path`` locates it in the document."""

    def __init__(self, path: PathKey, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


class Reference(msgspec.Struct, frozen=True):
    name: str
    attribute: str | None
    spec: str | None
    text: str  # the original ``${...}``


Part = str | Reference
Render = Callable[[Mapping[str, Any]], Any]


def text_of(value: Any) -> str:
    """How a value reads inside a longer string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def plain(value: Any) -> Any:
    """Values with attributes (files of a files axis) stand for their text when used whole."""
    return str(value) if hasattr(value, "ATTRIBUTES") else value


def lookup(reference: Reference, context: Mapping[str, Any], path: PathKey) -> Any:
    value = context[reference.name]
    if reference.attribute is None:
        return plain(value)
    if isinstance(value, Mapping) and reference.attribute in value:
        return value[reference.attribute]
    attributes = getattr(value, "ATTRIBUTES", ())
    if reference.attribute in attributes:
        return getattr(value, reference.attribute)
    known = sorted(value) if isinstance(value, Mapping) else list(attributes)
    raise SubstitutionError(
        path,
        f"{reference.text}: {reference.name!r} has no attribute {reference.attribute!r}",
        did_you_mean(reference.attribute, known) or (f"available: {', '.join(known)}" if known else ""),
    )


def format_reference(reference: Reference, context: Mapping[str, Any], path: PathKey) -> str:
    value = lookup(reference, context, path)
    if not reference.spec:
        return text_of(value)
    try:
        return format(value, reference.spec)
    except (ValueError, TypeError) as error:
        raise SubstitutionError(
            path,
            f"{reference.text}: cannot format {text_of(value)!r} with ':{reference.spec}' ({error})",
            "use a format spec that fits the value, e.g. ':03d' for integers",
        ) from None


def parse(text: str, path: PathKey) -> tuple[list[Part] | None, list[SubstitutionError]]:
    """Split ``text`` into literal text and references (None when there is nothing to substitute), with every
    syntax problem found."""
    if "$" not in text:
        return None, []
    parts: list[Part] = []
    errors: list[SubstitutionError] = []
    position = 0
    found = False
    for match in _TOKEN.finditer(text):
        found = True
        if match.start() > position:
            parts.append(text[position : match.start()])
        token = match.group(0)
        position = match.end()
        if token == "$$":
            parts.append("$")
            continue
        if token == "${":
            errors.append(
                SubstitutionError(
                    path, f"unclosed '${{' in {text!r}", "close it with '}' or write '$${' for a literal"
                )
            )
            continue
        reference = _REFERENCE.match(match.group(1))
        if reference is None:
            errors.append(
                SubstitutionError(
                    path,
                    f"{token!r} is not a valid reference",
                    "write ${name}, ${name.attribute} or ${name:format}; write $$ for a literal $",
                )
            )
            continue
        parts.append(Reference(reference.group(1), reference.group(2), reference.group(3), token))
    if not found:
        return None, []
    if position < len(text):
        parts.append(text[position:])
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged, errors


class Compiled(msgspec.Struct, frozen=True):
    """A value after variable substitution: either constant, or rendered per factory combination."""

    constant: Any = None
    render: Render | None = None
    items: Mapping[str, Compiled] | None = None  # a rendered mapping's values, compiled

    @property
    def is_constant(self) -> bool:
        return self.render is None

    def item(self, key: str) -> Compiled:
        """The compiled value of ``key`` of a mapping (KeyError when it has none)."""
        if self.items is not None:
            return self.items[key]
        return Compiled(self.constant[key])

    def value(self, context: Mapping[str, Any]) -> Any:
        return self.constant if self.render is None else self.render(context)


class Compiler:
    """Compiles values against known ``variables``; names in ``deferred`` are resolved later by ``render``."""

    def __init__(
        self,
        variables: Mapping[str, Any],
        deferred: frozenset[str] = frozenset(),
        text_only: Callable[[PathKey], bool] = lambda path: False,
    ) -> None:
        self.variables = variables
        self.deferred = deferred
        # Where the schema accepts only text, a lone ${name} is written as text instead of keeping its type.
        self.text_only = text_only
        self.errors: list[SubstitutionError] = []

    def compile(self, value: Any, path: PathKey) -> Compiled:
        if isinstance(value, str):
            return self.compile_string(value, path)
        if isinstance(value, dict):
            compiled_items = [(key, self.compile(item, (*path, key))) for key, item in value.items()]
            if all(item.is_constant for _, item in compiled_items):
                return Compiled({key: item.constant for key, item in compiled_items})
            return Compiled(render=_dict_renderer(compiled_items), items=dict(compiled_items))
        if isinstance(value, list):
            compiled_list = [self.compile(item, (*path, index)) for index, item in enumerate(value)]
            if all(item.is_constant for item in compiled_list):
                return Compiled([item.constant for item in compiled_list])
            return Compiled(render=_list_renderer(compiled_list))
        return Compiled(value)

    def compile_string(self, text: str, path: PathKey) -> Compiled:
        parts, errors = parse(text, path)
        if parts is None:
            return Compiled(text)
        if len(parts) == 1 and isinstance(parts[0], Reference) and self.text_only(path):
            only = parts[0]
            spec = only.spec if only.spec is not None else ""  # "" formats as text: no type is kept
            parts = [Reference(only.name, only.attribute, spec, only.text)]
        resolved: list[Part] = []
        for part in parts:
            if not isinstance(part, Reference) or part.name in self.deferred:
                resolved.append(part)
                continue
            if part.name not in self.variables:
                errors.append(self.unknown(part, path))
                continue
            try:
                if len(parts) == 1 and part.spec is None:
                    if not errors:
                        return Compiled(lookup(part, self.variables, path))
                    lookup(part, self.variables, path)
                    continue
                resolved.append(format_reference(part, self.variables, path))
            except SubstitutionError as error:
                errors.append(error)
        if errors:
            self.errors.extend(errors)
            return Compiled(text)
        if all(isinstance(part, str) for part in resolved):
            return Compiled("".join(part for part in resolved if isinstance(part, str)))
        return Compiled(render=_string_renderer(resolved, path))

    def unknown(self, reference: Reference, path: PathKey) -> SubstitutionError:
        known = sorted({*self.variables, *self.deferred})
        suggestion = did_you_mean(reference.name, known)
        hint = f"{suggestion}; " if suggestion else ""
        hint += (
            f"define it under 'variables', or write $${{{reference.name}}} "
            "if the ${...} is meant for the shell"
        )
        return SubstitutionError(path, f"unknown name {reference.name!r} in {reference.text}", hint)


def _dict_renderer(items: list[tuple[str, Compiled]]) -> Render:
    def render(context: Mapping[str, Any]) -> Any:
        return {key: item.constant if item.render is None else item.render(context) for key, item in items}

    return render


def _list_renderer(items: list[Compiled]) -> Render:
    def render(context: Mapping[str, Any]) -> Any:
        return [item.constant if item.render is None else item.render(context) for item in items]

    return render


class Context(dict[str, Any]):
    """One factory combination: axis name -> value, plus ``text``, the same values as they read inside a
    string (booleans as true/false, lists as JSON), ready for ``str.format_map``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        # Most values (numbers, text, files) read as themselves. (Not ``self``: a context referring to
        # itself would be freed only by the garbage collector, and a plan makes one per task.)
        self.text: Mapping[str, Any] = values
        if any(map(_reads_otherwise, values.values())):
            self.text = {
                name: text_of(value) if _reads_otherwise(value) else value for name, value in values.items()
            }


def _reads_otherwise(value: Any) -> bool:
    """A value that reads inside a string as other text than ``str`` gives (see :func:`text_of`)."""
    return value is None or isinstance(value, (bool, list, dict))


def _format_template(parts: list[Part]) -> str | None:
    """``parts`` as a ``str.format`` template, or None when a format spec cannot be carried over."""
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part.replace("{", "{{").replace("}", "}}"))
            continue
        if part.spec and ("{" in part.spec or "}" in part.spec):
            return None
        field = part.name if part.attribute is None else f"{part.name}.{part.attribute}"
        pieces.append("{" + field + (f":{part.spec}" if part.spec else "") + "}")
    return "".join(pieces)


def _string_renderer(parts: list[Part], path: PathKey) -> Render:
    if len(parts) == 1 and isinstance(parts[0], Reference) and parts[0].spec is None:
        only = parts[0]
        if only.attribute is None:
            name = only.name
            return lambda context: plain(context[name])
        return lambda context: lookup(only, context, path)

    def render_slowly(context: Mapping[str, Any]) -> str:
        return "".join(
            part if isinstance(part, str) else format_reference(part, context, path) for part in parts
        )

    template = _format_template(parts)
    if template is None:
        return render_slowly
    format_map = template.format_map

    def render(context: Mapping[str, Any]) -> str:
        # str.format_map does the whole string in C; anything unusual (a bad spec, a missing attribute) takes
        # the slow path, which either renders it or raises a SubstitutionError that says what is wrong.
        text = context.text if type(context) is Context else None
        if text is not None:
            try:
                return format_map(text)
            except (ValueError, TypeError, KeyError, AttributeError, IndexError):
                pass
        return render_slowly(context)

    return render
