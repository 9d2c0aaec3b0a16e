"""Reading a YAML manifest into plain JSON-like data, remembering where every value and key came from.

Only the YAML features a manifest needs are accepted: mappings with string keys, sequences, scalars, anchors,
aliases and merge keys. Everything else (duplicate keys, several documents, custom tags, alias bombs, cycles,
binary data) is reported as a :class:`~batchrun.errors.Diagnostic` with its line and column.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import yaml
from msgspec import field

from batchrun.errors import Diagnostic, ManifestError

PathKey = tuple["str | int", ...]

MAX_NODES = 2_000_000  # values after alias expansion; a manifest needs far fewer, an alias bomb far more
MAX_FILE_BYTES = 64 * 1024 * 1024
# Characters of text (values and keys) after alias expansion. A document without aliases stays under it
# (it is the file size limit); a 100 KB string aliased 100,000 times (10 GB) is stopped after 640 copies.
MAX_EXPANDED_CHARS = MAX_FILE_BYTES
# Nesting levels of mappings and sequences. Ours, not the YAML parser's: parsers differ (libyaml refuses deep
# flow nesting itself since PyYAML 6.0.2, the pure-Python parser recurses), and a manifest needs about 10.
MAX_DEPTH = 100

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    _STR_TAG,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


def format_path(path: PathKey) -> str:
    """``("job", "tasks", 2, "id")`` -> ``job.tasks[2].id``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class Document(msgspec.Struct):
    """One loaded manifest: its data, and the 1-based (line, column) of each value and mapping key."""

    file: str  # as the user named it, for messages
    path: Path  # absolute
    data: Any
    value_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    # Raw text of plain (unquoted) scalars YAML turned into a non-string (yes/no/on/off, 1.10, null, ...).
    plain_scalars: dict[PathKey, str] = field(default_factory=dict)

    def position(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Where ``path`` is, or its nearest ancestor that is (values created by substitution have none)."""
        if key and path in self.key_positions:
            return self.key_positions[path]
        probe = path
        while True:
            found = self.value_positions.get(probe)
            if found is not None:
                return found
            if not probe:
                return (0, 0)
            probe = probe[:-1]

    def diagnostic(self, path: PathKey, message: str, hint: str = "", *, key: bool = False) -> Diagnostic:
        line, column = self.position(path, key=key)
        return Diagnostic(self.file, line, column, message, format_path(path), hint)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed YAML node graph into plain data, recording positions and every problem."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.problems: list[Diagnostic] = []
        self.node_count = 0
        self.chars = 0  # text seen so far, aliases counted each time they are used
        self.active: set[int] = set()  # nodes on the current branch, to catch recursive aliases
        self.depth = 0
        self.scalars: Any = yaml.constructor.SafeConstructor()

    def problem(self, node: yaml.Node, message: str, path: PathKey, hint: str = "") -> None:
        line, column = _mark(node)
        self.problems.append(Diagnostic(self.document.file, line, column, message, format_path(path), hint))

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise _TooLarge(node)
        self.document.value_positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            self.problem(
                node, "an alias refers to a node that contains it (a cycle)", path, "remove the alias"
            )
            return None
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != "tag:yaml.org,2002:seq":
                    self.problem(node, f"unsupported YAML tag {node.tag}", path, "remove the tag")
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            if node.tag != "tag:yaml.org,2002:map":
                self.problem(node, f"unsupported YAML tag {node.tag}", path, "remove the tag")
            return self.mapping(node, path)
        finally:
            self.depth -= 1
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        self.chars += len(node.value)
        if self.chars > MAX_EXPANDED_CHARS:
            raise _TooLarge(node)
        if node.tag not in _SCALAR_TAGS:
            self.problem(node, f"unsupported YAML tag {node.tag}", path, "remove the tag or quote the value")
            return node.value
        if node.tag in (_STR_TAG, "tag:yaml.org,2002:timestamp"):
            return node.value  # timestamps stay text: manifests carry them to Batch as strings
        # Call the tag's constructor directly: construct_object would cache every node for the whole load.
        value = self.scalars.yaml_constructors[node.tag](self.scalars, node)
        if not node.style:  # plain: None from the Python parser, "" from libyaml
            self.document.plain_scalars[path] = node.value
        if isinstance(value, float) and value != value:  # NaN compares unequal to itself
            self.problem(node, "'.nan' is not a usable value", path, "quote it if you mean the text")
        return value

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "a mapping key must be a plain string", path, "use a string key")
                continue
            key: Any = self.scalar(key_node, (*path, "<key>"))
            self.document.plain_scalars.pop((*path, "<key>"), None)
            if not isinstance(key, str):
                shown = "true/false" if isinstance(key, bool) else type(key).__name__
                self.problem(
                    key_node,
                    f"key {key_node.value!r} was read by YAML as {shown}, not as text",
                    path,
                    f'quote it: "{key_node.value}"',
                )
                continue
            if key in seen:
                first_line = seen[key].start_mark.line + 1
                self.problem(
                    key_node,
                    f"duplicate key {key!r} (first defined on line {first_line})",
                    (*path, key),
                    "keep only one of them",
                )
                continue
            seen[key] = key_node
            key_path: PathKey = (*path, key)
            self.document.key_positions[key_path] = _mark(key_node)
            result[key] = self.build(value_node, key_path)
        if not merges:
            return result
        merged: dict[str, Any] = {}
        for merge_node in merges:
            self.merge(merge_node, path, merged)
        merged.update(result)  # explicit keys win over merged ones
        return merged

    def merge(self, node: yaml.Node, path: PathKey, into: dict[str, Any]) -> None:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problem(source, "a merge key '<<' needs a mapping or a list of mappings", path)
                continue
            merged = self.build(source, path)
            for key, value in merged.items():
                into.setdefault(key, value)


class _TooLarge(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


class _TooDeep(_TooLarge):
    pass


def _too_deep(display: str, line: int, column: int) -> ManifestError:
    return ManifestError(
        [
            Diagnostic(
                display,
                line,
                column,
                f"the document is nested too deeply (more than {MAX_DEPTH} levels)",
                "",
                "flatten the structure",
            )
        ]
    )


def read_text(path: Path, display: str) -> str:
    """The file's text, or a ManifestError saying why it cannot be read."""

    def fail(message: str, hint: str, line: int = 0, column: int = 0) -> ManifestError:
        return ManifestError([Diagnostic(display, line, column, message, "", hint)])

    if not path.exists():
        raise fail("no such file", "check the path")
    if path.is_dir():
        raise fail("is a directory, not a manifest file", "name a .yaml file inside it")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail(
                f"file is too large ({size} bytes)", f"a manifest must be under {MAX_FILE_BYTES} bytes"
            )
        raw = path.read_bytes()
    except PermissionError:
        raise fail("permission denied", "make the file readable") from None
    except OSError as error:
        raise fail(f"cannot read the file: {error.strerror or error}", "check the path") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise fail(
            f"not valid UTF-8 (byte 0x{raw[error.start]:02x})", "save the file as UTF-8", line, column
        ) from None
    return text


def _compose(text: str, display: str) -> Iterator[yaml.Node]:
    try:
        yield from yaml.compose_all(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        if "nesting depth" in str(error.problem):  # libyaml's own limit, worded by the parser's release
            raise _too_deep(display, line, column) from None
        message = "invalid YAML: " + " ".join(part for part in (error.context, error.problem) if part)
        raise ManifestError(
            [
                Diagnostic(
                    display, line, column, message, "", "fix the YAML syntax (indentation, quotes, colons)"
                )
            ]
        ) from None
    except yaml.YAMLError as error:
        raise ManifestError(
            [Diagnostic(display, 0, 0, f"invalid YAML: {error}", "", "fix the YAML syntax")]
        ) from None
    except RecursionError:  # the pure-Python parser recurses once per level
        raise _too_deep(display, 0, 0) from None


def load_document(path: Path, display: str | None = None) -> Document:
    """Load one YAML file holding exactly one mapping. Raises ManifestError."""
    display = display if display is not None else str(path)
    text = read_text(path, display)
    documents = _compose(text, display)
    root = next(documents, None)
    second = next(documents, None)
    if second is not None:
        line, column = _mark(second)
        raise ManifestError(
            [
                Diagnostic(
                    display,
                    line,
                    column,
                    "a manifest holds one YAML document, found a second",
                    "",
                    "remove the '---' separator or split the file",
                )
            ]
        )
    document = Document(display, Path(os.path.abspath(path)), None)
    if root is None:
        raise ManifestError([Diagnostic(display, 1, 1, "the file is empty", "", "write a manifest")])
    builder = _Builder(document)
    try:
        document.data = builder.build(root, ())
    except _TooDeep as error:
        raise _too_deep(display, *_mark(error.node)) from None
    except _TooLarge as error:
        line, column = _mark(error.node)
        raise ManifestError(
            [
                Diagnostic(
                    display,
                    line,
                    column,
                    f"the document expands to more than {MAX_NODES:,} values or {MAX_EXPANDED_CHARS:,} "
                    "characters of text (anchors and aliases repeat too much)",
                    "",
                    "use fewer aliases",
                )
            ]
        ) from None
    if builder.problems:
        raise ManifestError(builder.problems)
    if not isinstance(document.data, dict):
        line, column = _mark(root)
        kind = "empty" if document.data is None else f"a {type(document.data).__name__}"
        raise ManifestError(
            [
                Diagnostic(
                    display,
                    line,
                    column,
                    f"the manifest must be a mapping, found {kind}",
                    "",
                    "start with 'apiVersion: batchrun/v1'",
                )
            ]
        )
    return document
