"""Checks beyond the schema: references, ids after expansion, dependencies, scale, sources, limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchrun.manifest import load_workload
from tests.manifest.conftest import HEADER, POOL, find, problems_of


def tasks(*lines: str) -> str:
    return "job:\n  id: j\n  tasks:\n" + "".join(f"    {line}\n" for line in lines)


def test_task_ids_unique_case_insensitively(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + tasks("- {id: Merge, commandLine: a}", "- {id: merge, commandLine: b}"))
    diagnostic = find(problems_of(path), "duplicate task id 'merge'")
    assert diagnostic.line == 12 and "same as 'Merge' ignoring case" in diagnostic.message


def test_factory_ids_must_differ(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + tasks("- id: same", "  foreach: {i: [1, 2]}", "  commandLine: echo ${i}"))
    assert find(problems_of(path), "duplicate task id 'same'").line == 11


def test_expanded_task_id_rules(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + tasks("- id: t-${n}", "  foreach: {n: [ok, not ok]}", "  commandLine: echo"))
    diagnostic = find(problems_of(path), "invalid task id 't-not ok'")
    assert diagnostic.line == 11 and diagnostic.path == "job.tasks[0].id"


def test_references_resolve(write: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = write(
        HEADER
        + "storage:\n  inputs:\n    - {name: data, source: data, container: in-c}\n"
        + "packages:\n  - {id: tools, version: '1', source: data}\n"
        + POOL
        + "  packages: [tool]\n"
        + tasks("- {id: t, commandLine: echo, inputs: [date], outputs: [{pattern: x}], packages: [tols]}")
    )
    diagnostics = problems_of(path)
    assert "did you mean 'tools'?" in find(diagnostics, "no package 'tool'").hint
    assert find(diagnostics, "no package 'tool'").line == 13
    assert "did you mean 'data'?" in find(diagnostics, "no storage input named 'date'").hint
    find(diagnostics, "storage.outputs is not set")
    find(diagnostics, "no package 'tols'")


def test_job_pool_must_resolve(write: Callable[[str], Path]) -> None:
    diagnostics = problems_of(write(HEADER + "job:\n  id: j\n"))
    assert find(diagnostics, "the job has no pool").line == 5
    path = write(HEADER + POOL + "job:\n  id: j\n  poolInfo: {poolId: other}\n")
    assert find(problems_of(path), "is not the manifest's pool 'p1'").line == 10


def test_job_without_manifest_pool_may_name_an_existing_one(write: Callable[[str], Path]) -> None:
    workload = load_workload(write(HEADER + "job:\n  id: j\n  poolInfo: {poolId: shared}\n"))
    assert workload.job is not None and workload.job.properties["poolInfo"] == {"poolId": "shared"}


def test_dependency_cycle(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + tasks(
            "- {id: a, commandLine: x, dependsOn: {tasks: [c]}}",
            "- {id: b, commandLine: x, dependsOn: {tasks: [a]}}",
            "- {id: c, commandLine: x, dependsOn: {taskIds: [b]}}",
            "- {id: d, commandLine: x, dependsOn: {tasks: [a]}}",
        )
    )
    diagnostic = find(problems_of(path), "dependency cycle: a -> c -> b -> a")
    assert diagnostic.line == 11


def test_dependency_range_cycle_and_bad_range(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + tasks(
            "- {id: '1', commandLine: x, dependsOn: {ranges: [[2, 3]]}}",
            "- {id: '2', commandLine: x}",
            "- {id: '3', commandLine: x, dependsOn: {taskIdRanges: [{start: 1, end: 1}]}}",
            "- {id: '4', commandLine: x, dependsOn: {ranges: [[5, 1]]}}",
        )
    )
    diagnostics = problems_of(path)
    find(diagnostics, "dependency cycle: 1 -> 3 -> 1")
    assert find(diagnostics, "range [5, 1] has start > end").line == 14


def test_unknown_dependency_and_empty_glob(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + tasks(
            "- {id: greet, commandLine: x}", "- {id: m, commandLine: x, dependsOn: {tasks: [gret, 'x-*']}}"
        )
    )
    diagnostics = problems_of(path)
    assert "did you mean 'greet'?" in find(diagnostics, "unknown task 'gret'").hint
    assert find(diagnostics, "'x-*' matches no other task").line == 12


def test_globs_resolve_over_expanded_ids_and_set_uses_task_dependencies(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + tasks(
            "- {id: 'g-${i}', foreach: {i: {range: [1, 3]}}, commandLine: x}",
            "- {id: other, commandLine: x}",
            "- {id: merge, commandLine: x, dependsOn: {tasks: ['g-*'], ranges: [[7, 9]]}}",
            "- {id: all, commandLine: x, dependsOn: {tasks: ['*']}}",
        )
    )
    workload = load_workload(path)
    assert workload.job is not None
    by_id = {task.id: task for task in workload.job.tasks}
    assert by_id["merge"].properties["dependsOn"] == {
        "taskIds": ["g-1", "g-2", "g-3"],
        "taskIdRanges": [{"start": 7, "end": 9}],
    }
    assert by_id["all"].properties["dependsOn"]["taskIds"] == ["g-1", "g-2", "g-3", "other", "merge"]
    assert workload.job.properties["usesTaskDependencies"] is True


def test_uses_task_dependencies_false_conflicts(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + "job:\n  id: j\n  usesTaskDependencies: false\n  tasks:\n"
        + "    - {id: a, commandLine: x}\n    - {id: b, commandLine: x, dependsOn: {tasks: [a]}}\n"
    )
    assert find(problems_of(path), "usesTaskDependencies is false").line == 10


def test_fixed_scale_xor_autoscale(write: Callable[[str], Path]) -> None:
    path = write(HEADER + POOL + "  enableAutoScale: true\n  autoScaleEvaluationInterval: PT1M\n")
    diagnostics = problems_of(path)
    assert find(diagnostics, "targetDedicatedNodes cannot be combined").line == 7
    find(diagnostics, "autoscale needs an autoScaleFormula")
    assert "PT5M" in find(diagnostics, "out of range").hint
    path = write(HEADER + POOL + "  autoScaleFormula: '$TargetDedicatedNodes=1'\n")
    assert find(problems_of(path), "autoScaleFormula needs enableAutoScale: true").line == 8


def test_sources_exist_and_stay_inside(write: Callable[[str], Path], tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "sub").mkdir()
    inputs = (
        "storage:\n  inputs:\n"
        "    - {name: missing, source: ./nope, container: c-one}\n"
        f"    - {{name: out, source: ../{outside.name}, container: c-two}}\n"
        "    - {name: escape, source: sub/../.., container: c-three}\n"
        f"    - {{name: allowed, source: ../{outside.name}, container: c-four, allowOutsideSource: true}}\n"
    )
    diagnostics = problems_of(write(HEADER + inputs))
    assert find(diagnostics, "'./nope' does not exist").line == 6
    assert "allowOutsideSource: true" in find(diagnostics, f"'../{outside.name}' is outside").hint
    assert find(diagnostics, "'sub/../..' is outside").line == 8
    assert len([d for d in diagnostics if "outside" in d.message]) == 2


def test_symlink_out_of_the_folder_counts_as_outside(write: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc")
    path = write(HEADER + "storage:\n  inputs:\n    - {name: l, source: link, container: c-one}\n")
    find(problems_of(path), "'link' is outside")


def test_expansion_limit_checked_before_expanding(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + tasks(
            "- id: t-${a}-${b}",
            "  foreach: {a: {range: [1, 100000]}, b: {range: [1, 100000]}}",
            "  commandLine: x",
        )
    )
    diagnostic = find(problems_of(path), "expands to 10,000,000,000 tasks, more than the limit of 100,000")
    assert "--max-tasks" in diagnostic.hint and diagnostic.line == 11
    small = write(
        HEADER + POOL + tasks("- id: t-${a}", "  foreach: {a: {range: [1, 5]}}", "  commandLine: x")
    )
    assert "limit of 4" in find(problems_of(small, max_tasks=4), "expands to 5 tasks").message
    workload = load_workload(small, max_tasks=5)
    assert workload.job is not None and len(workload.job.tasks) == 5


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        (
            "  - {id: tools, version: '1', source: .}\n  - {id: tools, version: '1', source: .}\n",
            "listed twice",
        ),
        ("  - {id: tools, version: '1', source: manifest.yaml}\n", "is a file but not a .zip"),
    ],
)
def test_package_rules(write: Callable[[str], Path], packages: str, message: str) -> None:
    find(problems_of(write(HEADER + "packages:\n" + packages)), message)


def test_problems_of_every_stage_are_reported_together(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + "  enableAutoScale: true\n  autoScaleFormula: x\n"
        + tasks("- {id: a, commandLine: x, dependsOn: {tasks: [zz]}}", "- {id: a, commandLine: y}")
    )
    diagnostics = problems_of(path)
    find(diagnostics, "cannot be combined")
    find(diagnostics, "unknown task 'zz'")
    find(diagnostics, "duplicate task id 'a'")


def test_sections_without_schema_errors_are_still_checked(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + "storage:\n  inputs: [{name: d, source: ./nope, container: d-in}]\n"
        + "packages: [{id: tools, version: 1.10, source: .}]\n"
        + POOL
        + "  enableAutoScale: true\n  autoScaleFormula: x\n"
    )
    diagnostics = problems_of(path)
    find(diagnostics, "expected text, found the number 1.1")
    assert find(diagnostics, "'./nope' does not exist").line == 5
    assert find(diagnostics, "targetDedicatedNodes cannot be combined").line == 10


def test_a_pool_body_over_batchs_request_limit_is_refused(write: Callable[[str], Path]) -> None:
    start_task = "  startTask: {commandLine: 'echo " + "s" * 1_100_000 + "'}\n"
    diagnostic = find(problems_of(write(HEADER + POOL + start_task)), "pool p1 is 1,1")
    assert "over Batch's request limit (1,048,576 bytes)" in diagnostic.message
    assert "startTask" in diagnostic.message and diagnostic.path == "pool"


def test_a_task_over_batchs_request_limit_is_refused_with_its_largest_fields(
    write: Callable[[str], Path],
) -> None:
    env = "      environmentSettings: [{name: BIG, value: '" + "e" * 1_000_000 + "'}]\n"
    path = write(HEADER + POOL + tasks("- id: t", "  commandLine: /bin/true") + env)
    diagnostic = find(problems_of(path), "the task body is 1,0")
    assert "largest: environmentSettings 1,000," in diagnostic.message and diagnostic.line == 11


def test_factory_sizes_are_bounded_before_expansion(write: Callable[[str], Path]) -> None:
    body = tasks("- id: t-${i}", "  foreach: {i: {range: [1, 90000]}}", "  commandLine: echo ${v} ${i}")
    path = write(HEADER + 'variables: {v: "' + "v" * 20_000 + '"}\n' + POOL + body)
    find(problems_of(path), "would take up to")
