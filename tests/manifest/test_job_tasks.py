"""A manifest job's tasks are made from their templates when read: the same tasks whichever way they are
read, and a loaded workload holds none of them."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from batchrun.manifest import load_workload
from batchrun.manifest.factories import combination_at, combinations
from batchrun.manifest.job_tasks import ManifestTasks
from batchrun.model import task_ids, tasks_with_dependencies
from batchrun.model.by_position import Joined, Made
from tests.manifest.conftest import HEADER, POOL

JOB = HEADER + POOL + "job:\n  id: j\n  tasks:\n"  # then the task entries

RICH = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: rich}
variables: {flag: true}
storage:
  inputs:
    - {name: data, source: data, container: inputs}
  outputs: {container: outputs}
packages:
  - {id: tool, version: "1.0", source: pkg}
pool:
  id: p1
  vmSize: standard_d2s_v3
  targetDedicatedNodes: 1
job:
  id: j
  tasks:
    - id: first
      commandLine: echo first
    - id: grid-${x}-${y:02d}
      foreach: {x: [a, b], y: {range: [10, 4, -3]}}
      commandLine: run ${x} ${y} ${flag}
      inputs: [{name: data, paths: [a.txt]}]
      outputs: [{pattern: "out-${x}.txt"}, {pattern: "*.log", uploadCondition: taskfailure}]
      packages: [tool]
      environmentSettings: [{name: X, value: "${x}"}]
    - id: pair-${p}
      foreach: {p: [1, 2, 3], q: [u, v, w]}
      zip: true
      commandLine: pair ${p} ${q}
      dependsOn: {tasks: [first]}
    - id: file-${f.stem}
      foreach: {f: {files: data}}
      commandLine: cat ${f} ${f.index}
      inputs: [{name: data, paths: ["${f.path}"]}, {outputs: grid/}]
    - id: "${i}"
      foreach: {i: {range: [1, 5]}}
      commandLine: number ${i}
    - id: merge
      commandLine: merge
      dependsOn: {tasks: ["grid-*", "pair-1"], ranges: [[2, 4]]}
"""


def _rich(tmp_path: Path) -> ManifestTasks:
    for name in ("a.txt", "b.txt", "sub/c.csv"):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_text(name)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "run.sh").write_text("true\n")
    path = tmp_path / "manifest.yaml"
    path.write_text(RICH)
    job = load_workload(path).job
    assert job is not None and isinstance(job.tasks, ManifestTasks)
    return job.tasks


@pytest.mark.parametrize(
    ("axes", "zipped"),
    [
        ({}, False),
        ({"x": ["a", "b", "c"]}, False),
        ({"x": ["a", "b"], "y": range(10, 3, -3), "z": [True, None]}, False),
        ({"x": range(1, 100_001, 7), "y": ["u", "v"]}, False),
        ({"x": [1, 2, 3], "y": ["u", "v", "w", "extra"]}, True),
    ],
)
def test_a_combination_by_its_number_is_the_one_expansion_gives(
    axes: dict[str, Sequence[Any]], zipped: bool
) -> None:
    expanded = list(itertools.islice(combinations(axes, zipped), 5000))
    assert expanded, "every case has combinations"
    for number, combination in enumerate(expanded):
        assert combination_at(axes, zipped, number) == combination
        assert list(combination_at(axes, zipped, number)) == list(axes)  # the axes' order, for rendering


def test_tasks_read_by_position_are_the_tasks_read_in_order(tmp_path: Path) -> None:
    tasks = _rich(tmp_path)
    in_order = list(tasks)
    assert [task.id for task in in_order] == [
        "first",
        *(f"grid-{x}-{y:02d}" for x in "ab" for y in (10, 7, 4)),
        "pair-1",
        "pair-2",
        "pair-3",
        "file-a",
        "file-b",
        "file-c",
        "1",
        "2",
        "3",
        "4",
        "5",
        "merge",
    ]
    assert [tasks[position] for position in range(len(tasks))] == in_order
    assert tasks[-1] == in_order[-1] and tasks[-len(tasks)] == in_order[0]
    assert tasks[3:9] == tuple(in_order[3:9])
    assert tasks == tuple(in_order) and tasks == in_order
    with pytest.raises(IndexError):
        tasks[len(tasks)]


def test_the_ids_are_read_without_making_the_tasks(tmp_path: Path) -> None:
    tasks = _rich(tmp_path)
    expected = [task.id for task in tasks]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ManifestTasks, "_made", lambda *args: pytest.fail("a task was made for its id"))
        assert list(tasks.ids()) == expected
        assert [tasks.id_at(position) for position in range(len(tasks))] == expected
        assert list(task_ids(tasks)) == expected


def test_zip_without_foreach_is_one_task_like_any_entry(write: Callable[[str], Path]) -> None:
    path = write(
        JOB + "    - {id: a, commandLine: 'true', zip: true}\n"
        "    - {id: b, commandLine: 'true'}\n"
        "    - {id: c, commandLine: 'true', dependsOn: {tasks: [b]}}\n"
    )
    job = load_workload(path).job
    assert job is not None
    assert [task.id for task in job.tasks] == ["a", "b", "c"] == [job.tasks[i].id for i in range(3)]
    assert "dependsOn" not in job.tasks[1].properties and "zip" not in job.tasks[0].properties
    assert job.tasks[2].properties["dependsOn"] == {"taskIds": ["b"]}
    assert [task.id for task in tasks_with_dependencies(job.tasks)] == ["c"]


def test_each_task_is_made_as_the_manifest_says(tmp_path: Path) -> None:
    tasks = {task.id: task for task in _rich(tmp_path)}
    grid = tasks["grid-b-07"]
    assert grid.properties["commandLine"] == "run b 7 true"
    assert grid.properties["environmentSettings"] == [{"name": "X", "value": "b"}]
    assert grid.properties["applicationPackageReferences"] == [{"applicationId": "tool", "version": "1.0"}]
    assert grid.inputs == ("data",) and grid.input_paths == {"data": ("a.txt",)}
    assert [(output.pattern, output.path, output.upload_condition) for output in grid.outputs] == [
        ("out-b.txt", "j/grid-b-07/out-b.txt", "taskcompletion"),
        ("*.log", "j/grid-b-07/", "taskfailure"),
    ]
    assert tasks["pair-3"].properties["commandLine"] == "pair 3 w"
    assert tasks["pair-3"].properties["dependsOn"] == {"taskIds": ["first"]}
    assert tasks["file-c"].properties["commandLine"] == "cat sub/c.csv 2"
    assert tasks["file-c"].input_paths == {"data": ("sub/c.csv",)}
    assert tasks["file-c"].output_inputs == ("grid/",)
    merge = tasks["merge"].properties["dependsOn"]
    assert merge["taskIds"] == [*(f"grid-{x}-{y:02d}" for x in "ab" for y in (10, 7, 4)), "pair-1"]
    assert merge["taskIdRanges"] == [{"start": 2, "end": 4}]
    assert "dependsOn" not in tasks["first"].properties and "zip" not in tasks["pair-1"].properties


def test_the_tasks_that_wait_are_found_without_reading_the_others(tmp_path: Path) -> None:
    tasks = _rich(tmp_path)
    waiting = [task for task in tasks if task.properties.get("dependsOn")]
    assert [task.id for task in waiting] == ["pair-1", "pair-2", "pair-3", "merge"]
    assert tasks_with_dependencies(tasks) == waiting
    made: list[int] = []
    original = ManifestTasks._at

    def counting(self: ManifestTasks, position: int) -> Any:
        made.append(position)
        return original(self, position)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ManifestTasks, "_at", counting)
        assert tasks_with_dependencies(tasks) == waiting
    assert len(made) == len(waiting)


def test_a_loaded_manifest_holds_none_of_its_tasks(write: Callable[[str], Path]) -> None:
    path = write(
        JOB + "    - id: task-${i:06d}\n"
        "      foreach: {i: {range: [1, 10000]}}\n"
        "      commandLine: /bin/echo ${i} with some words to make the task bigger\n"
    )
    load_workload(path)  # imports and caches settle before measuring
    gc.collect()
    tracemalloc.start()
    try:
        workload = load_workload(path)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert workload.job is not None and len(workload.job.tasks) == 10_000
    # Held as tasks, 10,000 of them took about 4 MB (400 bytes each); made when read, a few kilobytes.
    assert held < 500_000, f"{held:,} bytes held after loading"
    assert workload.job.tasks[9_999].properties["commandLine"].startswith("/bin/echo 10000 ")


def test_making_tasks_leaves_nothing_for_the_garbage_collector(tmp_path: Path) -> None:
    """A plan makes each task a few times: what making one leaves behind must be freed at once (a reference
    cycle, such as a context referring to itself, waits for the collector: 240 MiB at 100,000 tasks)."""
    tasks = _rich(tmp_path)
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            list(tasks)
            [tasks[position] for position in range(len(tasks))]
            [tasks.id_at(position) for position in range(len(tasks))]
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "index",
    [
        slice(None),
        slice(0, 100),
        slice(95, 205),  # across three parts
        slice(100, 103),  # a part's first items
        slice(-7, None),
        slice(250, 400),  # past the end
        slice(40, 10),  # empty
        slice(3, 200, 7),  # with a step: item by item
        slice(None, None, -1),
    ],
)
def test_joined_sequences_sliced_are_the_slices_of_their_items(index: slice) -> None:
    made = Made(101, lambda position: f"made-{position}")  # answers its slice in one call
    parts = ([f"list-{n}" for n in range(3)], (), made, tuple(f"tuple-{n}" for n in range(120)))
    joined = Joined(parts)
    whole = [item for part in parts for item in part]
    assert len(joined) == len(whole) == 224
    assert joined[index] == tuple(whole[index])
    assert joined[-1] == whole[-1] and joined[103] == whole[103]
