"""Robust loading: every unreadable or malformed file is a clean ManifestError with its position."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from batchrun.manifest.load import load_document
from tests.manifest.conftest import HEADER, POOL, find, problems_of


def test_malformed_yaml_reports_line_and_column(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "pool:\n  id: [unclosed\n  vmSize: x\n")
    diagnostic = find(problems_of(path), "invalid YAML")
    assert diagnostic.line in (5, 6)
    assert diagnostic.column > 0


def test_unquoted_colon_in_command_is_invalid_yaml(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + "job:\n  id: j\n  tasks:\n    - id: a\n      commandLine: echo 'a: b'\n")
    assert find(problems_of(path), "mapping values are not allowed").line == 12


def test_duplicate_keys_are_errors(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + "  vmSize: other\n")
    diagnostic = find(problems_of(path), "duplicate key 'vmSize'")
    assert (diagnostic.line, diagnostic.column) == (8, 3)
    assert "first defined on line 6" in diagnostic.message


def test_alias_bomb_is_refused(write: Callable[[str], Path]) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        previous = f"*a{level - 1}"
        levels.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    path = write(HEADER + "\n".join(levels) + "\n")
    find(problems_of(path), "expands to more than")


def test_recursive_alias_is_refused(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "labels: &loop [*loop]\n")
    assert find(problems_of(path), "a cycle").line == 4


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "is a directory" in find(problems_of(tmp_path), "directory").message


def test_missing_file(tmp_path: Path) -> None:
    find(problems_of(tmp_path / "nope.yaml"), "no such file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(write: Callable[[str], Path]) -> None:
    path = write(HEADER)
    path.chmod(0)
    try:
        find(problems_of(path), "permission denied")
    finally:
        path.chmod(0o644)


def test_non_utf8_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(HEADER.encode() + b"variables: {name: caf\xe9}\n")
    diagnostic = find(problems_of(path), "not valid UTF-8")
    assert (diagnostic.line, diagnostic.column) == (4, 22)


def test_empty_file(write: Callable[[str], Path]) -> None:
    assert find(problems_of(write("# only a comment\n")), "empty").line == 1


def test_multiple_documents(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "---\n" + HEADER)
    assert find(problems_of(path), "second").line == 5  # where the second document's content starts


def test_top_level_list(write: Callable[[str], Path]) -> None:
    find(problems_of(write("- a\n- b\n")), "must be a mapping")


def test_yaml11_boolean_key_gets_quote_hint(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "variables:\n  on: 1\n")
    diagnostic = find(problems_of(path), "key 'on'")
    assert diagnostic.line == 5
    assert 'quote it: "on"' in diagnostic.hint


def test_yaml11_version_float_gets_quote_hint(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "packages:\n  - {id: tools, version: 1.10, source: .}\n")
    diagnostic = find(problems_of(path), "packages[0].version")
    assert diagnostic.line == 5
    assert "expected text, found the number 1.1" in diagnostic.message
    assert 'quote it to keep it as text: "1.10"' in diagnostic.hint


def test_custom_tags_are_refused(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "variables: !!python/object:os.system {}\n")
    assert find(problems_of(path), "unsupported YAML tag").line == 4


def test_merge_keys_work(write: Callable[[str], Path]) -> None:
    from batchrun.manifest import load_workload

    path = write(
        HEADER
        + "variables:\n  base: &base {a: 1}\n  more: {<<: *base, b: 2}\n"
        + POOL
        + "job:\n  id: j\n  tasks:\n    - {id: t, commandLine: 'echo ${more}'}\n"
    )
    workload = load_workload(path)
    assert workload.job is not None
    assert workload.job.tasks[0].properties["commandLine"] == 'echo {"a":1,"b":2}'


@pytest.mark.parametrize("levels", [150, 3000])
def test_deep_nesting_is_refused_cleanly(write: Callable[[str], Path], levels: int) -> None:
    """Refused by our own limit (150) or by the YAML parser's (3000), with the same message either way."""
    path = write(HEADER + "variables:\n  x: " + "[" * levels + "]" * levels + "\n")
    problem = find(problems_of(path), "nested too deeply (more than 100 levels)")
    assert problem.line == HEADER.count("\n") + 2


def test_nesting_within_the_limit_loads(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "variables:\n  x: " + "[" * 90 + "]" * 90 + "\n")
    assert load_document(path).data["variables"]["x"] is not None


def test_alias_expansion_is_bounded_in_characters_not_only_in_values(write: Callable[[str], Path]) -> None:
    # 2,000 aliases of a 100,000-character string: far under the value cap, 200 MB of text once expanded.
    text = "x" * 100_000
    path = write(HEADER + f'variables: {{big: &big "{text}"}}\nlabels:\n' + "  - *big\n" * 2_000)
    diagnostic = find(problems_of(path), "characters of text")
    assert diagnostic.line == 4  # the anchored value
