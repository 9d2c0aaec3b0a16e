"""The workload digest made a chunk of tasks at a time is the digest of the whole desired document."""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec.structs import replace

from batchrun.manifest.render import (
    TASKS_PER_CHUNK,
    TaskDigest,
    canonical_digest,
    desired_document,
    workload_digest,
)
from batchrun.model import JobSpec, PoolSpec, StorageInput, StorageOutputs, TaskOutput, TaskSpec, Workload


def task(index: int) -> TaskSpec:
    return TaskSpec(
        f"t-{index}",
        {
            "commandLine": f'/bin/sh -c "echo {index} \\"quoted\\" é ✓ \\u2028"',
            "environmentSettings": [{"name": "N", "value": str(index)}],
            "constraints": {"maxTaskRetryCount": index % 3},
        },
        inputs=("data",) if index % 2 else (),
        outputs=(TaskOutput("*.txt", f"out/{index}/"),) if index % 3 else (),
        input_paths={"data": (f"file-{index}.txt",)} if index % 4 == 1 else {},
        output_inputs=("greet/",) if index % 5 == 0 else (),
    )


def workload(*task_counts: int) -> Workload:
    jobs = [
        JobSpec(f"job-{number}", {"poolInfo": {"poolId": "p"}}, tuple(task(i) for i in range(count)))
        for number, count in enumerate(task_counts)
    ]
    return Workload(
        name="digest",
        manifest_path=Path("/nowhere/digest.yaml"),
        digest="",
        labels={"team": "ünï"},
        inputs=(StorageInput("data", Path("/nowhere/data"), "in", "data/"),),
        outputs=StorageOutputs("out"),
        pool=PoolSpec("p", {"vmSize": "standard_d2s_v3"}),
        job=jobs[0] if jobs else None,
        more_jobs=tuple(jobs[1:]),
    )


@pytest.mark.parametrize(
    "task_counts",
    [
        (),
        (0,),
        (1,),
        (TASKS_PER_CHUNK,),
        (TASKS_PER_CHUNK + 1,),
        (2 * TASKS_PER_CHUNK + 500,),
        (3, 0, TASKS_PER_CHUNK + 7),
    ],
)
def test_chunked_digest_is_the_whole_documents(task_counts: tuple[int, ...]) -> None:
    wl = workload(*task_counts)
    assert workload_digest(wl) == canonical_digest(desired_document(wl))
    if len(wl.jobs) == 1:  # hashed as the tasks go by (as loading a manifest does): the same digest
        assert wl.job is not None
        streamed = TaskDigest(replace(wl, job=replace(wl.job, tasks=())))
        for item in wl.job.tasks:
            streamed.add(item)
        assert streamed.hexdigest() == canonical_digest(desired_document(wl))


def test_a_loaded_manifest_digest_is_its_whole_documents(tmp_path: Path) -> None:
    """Without dependencies the digest is hashed as the tasks are checked;
    with, from the tasks read again once their dependsOn is resolved: the whole document's digest each way."""
    from batchrun.manifest import load_workload

    for depends in ("", ", dependsOn: {tasks: [first]}"):
        path = tmp_path / f"m{len(depends)}.yaml"
        path.write_text(
            "apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: d}\n"
            "pool: {id: p, vmSize: standard_d2s_v3, targetDedicatedNodes: 0}\n"
            "job:\n  id: j\n  tasks:\n    - {id: first, commandLine: 'true'}\n"
            "    - {id: 't-${i}', foreach: {i: {range: [1, 2500]}}, commandLine: 'echo ${i} é'"
            + depends
            + "}\n",
            encoding="utf-8",
        )
        loaded = load_workload(path)
        assert loaded.digest == canonical_digest(desired_document(loaded))


def test_a_full_manifest_is_hashed_as_its_tasks_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage, packages, a schedule, labels and job properties: hashed in the one pass over the tasks, the
    same digest as the whole document's."""
    from batchrun.manifest import load_workload, render

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "run.sh").write_text("true")
    path = tmp_path / "full.yaml"
    path.write_text(
        "apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: full, labels: {team: ünï}}\n"
        "storage:\n  inputs: [{name: data, source: data, container: inputs}]\n  outputs: {container: out}\n"
        "packages: [{id: tool, version: '1.0', source: pkg}]\n"
        "pool: {id: p, vmSize: standard_d2s_v3, targetDedicatedNodes: 0}\n"
        "schedule: {recurrenceInterval: PT1H}\n"
        "job:\n  id: j\n  priority: 5\n  constraints: {maxTaskRetryCount: 2}\n  tasks:\n"
        "    - {id: 't-${i}', foreach: {i: {range: [1, 1500]}}, commandLine: 'echo ${i}', inputs: [data],"
        " packages: [tool], outputs: [{pattern: o.txt}]}\n",
        encoding="utf-8",
    )
    added: list[str] = []
    original = render.TaskDigest.add

    def counted(self: render.TaskDigest, task: TaskSpec) -> None:
        added.append(task.id)
        original(self, task)

    monkeypatch.setattr(render.TaskDigest, "add", counted)
    loaded = load_workload(path)
    assert len(added) == 1500  # the one pass: the digest did not read the tasks again
    assert loaded.digest == canonical_digest(desired_document(loaded))


def test_digest_follows_any_task_change() -> None:
    wl = workload(TASKS_PER_CHUNK + 2)
    assert wl.job is not None
    tasks = list(wl.job.tasks)
    tasks[-1] = TaskSpec(tasks[-1].id, {**tasks[-1].properties, "commandLine": "other"})
    edited = replace(wl, job=JobSpec(wl.job.id, wl.job.properties, tuple(tasks)))
    assert workload_digest(edited) != workload_digest(wl)
    assert workload_digest(edited) == canonical_digest(desired_document(edited))
