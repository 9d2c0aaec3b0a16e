"""``status``'s differences as data cases: an interrupted apply that left a job of the workload with too few
tasks is named, for each of the workload's jobs."""

from __future__ import annotations

from pathlib import Path

from batchrun.model import JobSpec, TaskSpec, Workload
from batchrun.plan.live import TaskResult
from batchrun.watch.snapshot import JobSnapshot, TaskCounts
from batchrun.watch.status import WorkloadStatus

MARKS = {"batchrun.workload": "w", "batchrun.digest": "d"}


def job(job_id: str, count: int) -> JobSpec:
    return JobSpec(job_id, {}, tuple(TaskSpec(f"{job_id}-t{i}", {"commandLine": "x"}) for i in range(count)))


def status(
    first_total: int, second_total: int, results: dict[str, TaskResult] | None = None
) -> WorkloadStatus:
    workload = Workload(
        name="w", manifest_path=Path("w.yaml"), digest="d", job=job("a", 2), more_jobs=(job("b", 3),)
    )
    return WorkloadStatus(
        workload,
        None,
        None,
        JobSnapshot("a", True, "active", metadata=MARKS),
        TaskCounts(active=first_total),
        dict(results or {}),
        ((JobSnapshot("b", True, "active", metadata=MARKS), TaskCounts(active=second_total)),),
    )


def test_each_job_short_of_tasks_is_named() -> None:
    assert status(2, 3).differences() == []
    assert status(2, 1).differences() == [
        "job/b has 1 of the manifest's 3 tasks (an interrupted apply? run `batchrun apply` again)"
    ]
    assert len(status(0, 0).differences()) == 2


def test_tasks_on_record_count_for_their_own_job_only() -> None:
    done = TaskResult("digest", "success", 0, "2026-12-02T00:00:00Z", "b")
    # b's tasks on record make b whole, but do not make up for a's missing task.
    results = {f"b-t{i}": done for i in range(3)}
    assert status(1, 0, results).differences() == [
        "job/a has 1 of the manifest's 2 tasks (an interrupted apply? run `batchrun apply` again)"
    ]


def test_the_revision_shown_is_the_one_the_manifests_last_apply_wrote() -> None:
    # An edit to the first job's task restamps that job only; the other job keeps the older revision.
    current = {**MARKS, "batchrun.revision": "B"}
    older = {"batchrun.workload": "w", "batchrun.digest": "old", "batchrun.revision": "A"}
    workload = Workload(
        name="w", manifest_path=Path("w.yaml"), digest="d", job=job("a", 1), more_jobs=(job("b", 1),)
    )
    shown = WorkloadStatus(
        workload,
        None,
        None,
        JobSnapshot("a", True, "active", metadata=current),
        TaskCounts(active=1),
        {},
        ((JobSnapshot("b", True, "active", metadata=older), TaskCounts(active=1)),),
    )
    assert shown.live_revision == "B" and shown.differences() == []
