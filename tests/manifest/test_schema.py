"""Structural checks from schemas/manifest.schema.json, reported with positions and "did you mean"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.manifest.conftest import HEADER, POOL, find, problems_of

JOB = "job:\n  id: j\n  tasks:\n    - {id: t, commandLine: echo}\n"


def test_misspelt_pool_key_suggests_the_right_one(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + "  taskSlotPerNode: 2\n" + JOB)
    diagnostic = find(problems_of(path), "unknown key 'taskSlotPerNode'")
    assert (diagnostic.line, diagnostic.column) == (8, 3)
    assert diagnostic.path == "pool.taskSlotPerNode"
    assert "did you mean 'taskSlotsPerNode'?" in diagnostic.hint


def test_misspelt_key_deep_inside_a_batch_object(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER + POOL + "job:\n  id: j\n  tasks:\n    - id: t\n      commandLine: echo\n"
        "      resourceFiles:\n        - {httpUrl: 'https://x/y', filepath: y}\n"
    )
    diagnostic = find(problems_of(path), "unknown key 'filepath'")
    assert diagnostic.line == 14
    assert "did you mean 'filePath'?" in diagnostic.hint


def test_misspelt_top_level_and_task_keys(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "pools: {}\n" + POOL + "job:\n  id: j\n  tasks:\n    - {id: t, comandLine: echo}\n")
    diagnostics = problems_of(path)
    assert find(diagnostics, "unknown key 'pools'").line == 4
    assert "did you mean 'pool'?" in find(diagnostics, "'pools'").hint
    task = find(diagnostics, "unknown key 'comandLine'")
    assert task.line == 12 and "did you mean 'commandLine'?" in task.hint
    # The misspelt key's "did you mean" already says what is missing: no second message for it.
    assert not [d for d in diagnostics if "missing required key 'commandLine'" in d.message]


def test_wrong_type_reports_expected_and_found(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + "  taskSlotsPerNode: two\n" + JOB)
    diagnostic = find(problems_of(path), "taskSlotsPerNode")
    assert diagnostic.line == 8
    assert "expected an integer, found text" in diagnostic.message


def test_empty_section(write: Callable[[str], Path]) -> None:
    path = write(HEADER + "pool:\n" + JOB)
    diagnostic = find(problems_of(path), "(at pool)")
    assert "found nothing" in diagnostic.message and diagnostic.line == 4


def test_enum_value_in_other_case_suggests_the_batch_spelling(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + "job:\n  id: j\n  onAllTasksComplete: terminateJob\n")
    diagnostic = find(problems_of(path), "terminateJob")
    assert diagnostic.line == 10 and "did you mean 'terminatejob'?" in diagnostic.hint


def test_wrong_api_version_and_missing_metadata(write: Callable[[str], Path]) -> None:
    path = write("apiVersion: batchrun/v2\nkind: Workload\n")
    diagnostics = problems_of(path)
    assert find(diagnostics, "must be 'batchrun/v1'").line == 1
    find(diagnostics, "missing required key 'metadata'")


def test_batch_id_rules(write: Callable[[str], Path]) -> None:
    long_id = "p" * 65
    path = write(HEADER + POOL.replace("id: p1", f"id: {long_id}") + "job:\n  id: bad.job\n")
    diagnostics = problems_of(path)
    assert find(diagnostics, "is not a valid Batch id (at pool.id)").line == 5
    assert "at most 64" in find(diagnostics, "'bad.job'").hint


def test_container_name_rules(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER + "storage:\n  inputs:\n"
        "    - {name: a, source: ., container: ab}\n"
        "    - {name: b, source: ., container: has--double}\n"
        "    - {name: c, source: ., container: -edge}\n"
        "    - {name: d, source: ., container: Upper}\n"
        "    - {name: e, source: ., container: fine-name-1}\n"
        "  outputs: {container: out_bad}\n"
    )
    diagnostics = problems_of(path)
    for line, name in [(6, "'ab'"), (7, "'has--double'"), (8, "'-edge'"), (9, "'Upper'"), (11, "'out_bad'")]:
        assert find(diagnostics, f"{name} is not a valid Storage container name").line == line
    assert not [d for d in diagnostics if "fine-name-1" in str(d)]


def test_iso8601_durations(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER + POOL + "  resizeTimeout: 15 minutes\n"
        "job:\n  id: j\n  constraints: {maxWallClockTime: PT1H30M}\n"
        "  tasks:\n    - {id: t, commandLine: echo, constraints: {retentionTime: P1DT}}\n"
    )
    diagnostics = problems_of(path)
    assert "PT30S" in find(diagnostics, "'15 minutes' is not a valid ISO-8601 duration").hint
    assert find(diagnostics, "'P1DT'").line == 13
    assert not [d for d in diagnostics if "PT1H30M" in str(d)]


def test_axis_of_unknown_form(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER + POOL + "job:\n  id: j\n  tasks:\n    - id: t-${i}\n      foreach: {i: {rnage: [1, 3]}}\n"
        "      commandLine: echo\n"
    )
    diagnostics = problems_of(path)
    assert find(diagnostics, "does not have any of the accepted forms").line == 12


def test_range_axis_error_is_explained_in_its_own_terms(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + "job:\n  id: j\n  tasks:\n    - id: t-${i}\n      foreach: {i: {range: [1, 2, 3, 4]}}\n"
        "      commandLine: echo\n"
    )
    diagnostic = find(problems_of(path), "foreach.i.range")
    assert (
        "too long" in diagnostic.message or "is not valid" in diagnostic.message or "4" in diagnostic.message
    )


def test_counts_batch_rejects_are_out_of_range_before_any_request(write: Callable[[str], Path]) -> None:
    pool = POOL.replace("targetDedicatedNodes: 1", "targetDedicatedNodes: -1")
    path = write(
        HEADER + pool + "  taskSlotsPerNode: 0\n"
        "job:\n  id: j\n  priority: 2000\n  constraints: {maxTaskRetryCount: -2}\n"
        "  tasks:\n    - {id: t, commandLine: echo, constraints: {maxTaskRetryCount: -1}}\n"
    )
    diagnostics = problems_of(path)
    nodes = find(diagnostics, "(at pool.targetDedicatedNodes)")
    assert nodes.line == 7 and "-1 is out of range" in nodes.message
    assert nodes.hint == "use a value at least 0"
    assert find(diagnostics, "(at pool.taskSlotsPerNode)").hint == "use a value from 1 to 256"
    assert find(diagnostics, "(at job.priority)").hint == "use a value from -1000 to 1000"
    assert find(diagnostics, "(at job.constraints.maxTaskRetryCount)").hint == "use a value at least -1"
    assert len(diagnostics) == 4  # -1 retries (unlimited) is valid
