"""End-to-end reconciliation through the Python API against the local target (real SDKs, real emulator)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from msgspec.structs import replace

import batchrun
from batchrun.errors import PlanError
from batchrun.model import StorageInput, TaskSpec, Workload
from batchrun.plan.actions import Action, Plan
from tests.reconcile.conftest import RequestCounter, make_workload, tasks


def job_of(state: Any) -> Any:
    """The job of a Workload or LiveState, known to be there."""
    assert state.job is not None
    return state.job


def pool_of(state: Any) -> Any:
    assert state.pool is not None
    return state.pool


if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.target import Target


def by_action(plan: Plan, kind: str = "task") -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in plan.changes:
        if change.kind == kind:
            counts[change.action.value] = counts.get(change.action.value, 0) + 1
    return counts


def creation_times(batch_client: BatchClient, job_id: str) -> dict[str, Any]:
    return {t.id: t.creation_time for t in batch_client.list_tasks(job_id, select=["id", "creationTime"])}


def test_edit_one_command_line_replaces_only_that_task(target: Target, batch_client: BatchClient) -> None:
    workload = make_workload("e2e-edit", tasks(5))
    batchrun.apply(workload, target=target)
    before = creation_times(batch_client, "e2e-edit-job")
    edited_tasks = tasks(5)
    edited_tasks[2] = TaskSpec("t00002", {"commandLine": "/bin/echo changed"})
    edited = replace(workload, job=replace(job_of(workload), tasks=tuple(edited_tasks)))
    plan = batchrun.plan(edited, target=target)
    assert by_action(plan) == {"no-op": 4, "replace": 1}
    replaced = next(c for c in plan.changes if c.action is Action.REPLACE)
    assert [(f.path, f.before, f.after) for f in replaced.fields] == [
        ("commandLine", "/bin/true", "/bin/echo changed")
    ]
    time.sleep(0.01)
    batchrun.apply(plan, target=target)
    after = creation_times(batch_client, "e2e-edit-job")
    assert set(after) == set(before)
    assert [t for t in after if after[t] != before[t]] == ["t00002"]
    assert batch_client.get_task("e2e-edit-job", "t00002").command_line == "/bin/echo changed"
    assert not batchrun.plan(edited, target=target).has_changes
    batchrun.destroy(edited, target=target, confirm_replace=True)


def test_ten_more_tasks_on_a_thousand_adds_exactly_ten(
    target: Target, batch_client: BatchClient, requests_counter: RequestCounter
) -> None:
    workload = make_workload("e2e-add", tasks(1000))  # a pool without nodes: tasks wait, nothing runs
    batchrun.apply(workload, target=target)
    grown = replace(workload, job=replace(job_of(workload), tasks=tuple(tasks(1010))))
    requests_counter.reset()
    plan = batchrun.plan(grown, target=target)
    planning = requests_counter.snapshot()
    assert planning["writes"] == 0 and planning["total"] < 30, planning
    assert by_action(plan) == {"no-op": 1000, "create": 10}
    requests_counter.reset()
    batchrun.apply(plan, target=target)
    applying = requests_counter.snapshot()["by_route"]
    adds = {
        route: n
        for route, n in applying.items()
        if "addtaskcollection" in route or route.startswith("POST /jobs/{jobId}/tasks")
    }
    assert sum(adds.values()) == 1, applying
    assert len(creation_times(batch_client, "e2e-add-job")) == 1010
    batchrun.destroy(grown, target=target, confirm_replace=True)


def test_a_first_plan_asks_for_no_job_tasks_or_pool_that_the_listings_show_missing(
    target: Target, requests_counter: RequestCounter
) -> None:
    """The listings of every job and pool (read for the orphans) say the workload's job and pool are not
    there: a first plan does not ask for them, nor for the job's tasks. Once they are there, it does."""

    def named_reads() -> set[str]:
        routes = requests_counter.snapshot()["by_route"]
        assert {"GET /jobs", "GET /pools", "GET /jobschedules"} <= set(routes), routes
        return {route for route in routes if route.startswith(("GET /jobs/", "GET /pools/"))}

    workload = make_workload("e2e-first", tasks(5))
    requests_counter.reset()
    assert by_action(batchrun.plan(workload, target=target)) == {"create": 5}
    assert named_reads() == set()
    batchrun.apply(workload, target=target)
    requests_counter.reset()
    assert by_action(batchrun.plan(workload, target=target)) == {"no-op": 5}
    assert {"GET /jobs/{jobId}", "GET /jobs/{jobId}/tasks", "GET /pools/{poolId}"} <= named_reads()
    batchrun.destroy(workload, target=target, confirm_replace=True)


def test_vm_size_change_replaces_the_pool_only_after_confirmation(
    target: Target, batch_client: BatchClient
) -> None:
    workload = make_workload("e2e-vm", [TaskSpec("sleeper", {"commandLine": "/bin/sleep 60"})], nodes=1)
    batchrun.apply(workload, target=target)
    deadline = time.monotonic() + 60
    while batch_client.get_task("e2e-vm-job", "sleeper").state != "running":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.5)
    old = batch_client.get_pool("e2e-vm-pool")
    bigger = replace(
        workload,
        pool=replace(
            pool_of(workload), properties={**pool_of(workload).properties, "vmSize": "standard_d4s_v3"}
        ),
    )
    blocked = batchrun.plan(bigger, target=target)
    change = next(c for c in blocked.changes if c.kind == "pool")
    assert change.action is Action.BLOCKED and "--confirm-replace" in change.unblock
    with pytest.raises(PlanError, match="blocked"):
        batchrun.apply(blocked, target=target)
    assert batch_client.get_pool("e2e-vm-pool").creation_time == old.creation_time

    confirmed = batchrun.plan(bigger, target=target, confirm_replace=True)
    change = next(c for c in confirmed.changes if c.kind == "pool")
    assert change.action is Action.REPLACE
    assert [f.path for f in change.fields if f.forces_replacement] == ["vmSize"]
    batchrun.apply(confirmed, target=target)
    new = batch_client.get_pool("e2e-vm-pool")
    assert new.vm_size.lower() == "standard_d4s_v3" and new.creation_time != old.creation_time
    batchrun.destroy(bigger, target=target, confirm_replace=True)


class InterruptAfter:
    """Hooks that stop an apply part-way, as a Ctrl-C or a crash would."""

    def __init__(self, added: int) -> None:
        self.added = added

    def step_started(self, address: str, operation: str) -> None:
        return None

    def step_finished(self, address: str, operation: str) -> None:
        return None

    def tasks_progress(self, job_id: str, verb: str, done: int, total: int) -> None:
        if verb == "added" and done >= self.added:
            raise KeyboardInterrupt


def test_interrupted_apply_converges_on_rerun(target: Target, batch_client: BatchClient) -> None:
    total = 2000  # 20 add requests: more than the threads, so an interruption leaves some unsent
    workload = make_workload("e2e-stop", tasks(total), onAllTasksComplete="terminatejob")
    with pytest.raises(KeyboardInterrupt):
        batchrun.apply(workload, target=target, hooks=InterruptAfter(100))
    partial = len(creation_times(batch_client, "e2e-stop-job"))
    assert 0 < partial < total
    job = batch_client.get_job("e2e-stop-job").as_dict()
    assert job["onAllTasksComplete"] == "noaction"  # never switched before all tasks are in
    resumed = batchrun.plan(workload, target=target)
    assert by_action(resumed).get("create", 0) == total - partial
    batchrun.apply(resumed, target=target)
    assert len(creation_times(batch_client, "e2e-stop-job")) == total
    assert batch_client.get_job("e2e-stop-job").as_dict()["onAllTasksComplete"] == "terminatejob"
    assert not batchrun.plan(workload, target=target).has_changes
    batchrun.destroy(workload, target=target, confirm_replace=True)


def test_unowned_job_is_blocked_until_adopted(target: Target, batch_client: BatchClient) -> None:
    from azure.batch import models

    batch_client.create_job(
        models.BatchJobCreateOptions({"id": "e2e-own-job", "poolInfo": {"poolId": "e2e-own-pool"}})
    )
    workload = make_workload("e2e-own", tasks(2))
    plan = batchrun.plan(workload, target=target)
    assert next(c for c in plan.changes if c.kind == "job").action is Action.BLOCKED
    assert (
        batchrun.destroy(workload, target=target).counts()["delete"] == 0
    )  # no pool yet; the job is not ours
    batch_client.get_job("e2e-own-job")  # destroy left the unowned job alone
    adopted = batchrun.plan(workload, target=target, adopt=True)
    assert next(c for c in adopted.changes if c.kind == "job").action is Action.UPDATE
    batchrun.apply(adopted, target=target)
    assert not batchrun.plan(workload, target=target).has_changes
    batchrun.destroy(workload, target=target, confirm_replace=True)


def test_storage_uploads_by_content_hash_not_mtime(target: Target, tmp_path: Path, blob_service: Any) -> None:
    source = tmp_path / "data"
    source.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (source / name).write_text(f"content of {name}\n")
    workload = Workload(
        name="e2e-store",
        manifest_path=tmp_path / "m.yaml",
        digest="x",
        inputs=(StorageInput("data", source, "e2e-store-in", "in/"),),
    )
    first = batchrun.apply(workload, target=target)
    assert by_action(first, "storage.input") == {"create": 1}
    (source / "a.txt").write_text("new content\n")
    later = time.time() + 100
    import os

    os.utime(source / "b.txt", (later, later))  # newer mtime, same content: not a change
    plan = batchrun.plan(workload, target=target)
    upload = next(op for c in plan.changes for op in c.operations if op.name == "storage.upload")
    assert [f["blob"] for f in upload.args["files"]] == ["in/a.txt"]
    batchrun.apply(plan, target=target)
    assert not batchrun.plan(workload, target=target).has_changes
    container = blob_service.get_container_client("e2e-store-in")
    assert container.download_blob("in/a.txt").readall() == b"new content\n"
    (source / "c.txt").unlink()
    kept = batchrun.plan(workload, target=target)
    assert not kept.has_changes  # the extra blob stays without --prune
    pruned = batchrun.apply(workload, target=target, prune=True)
    assert by_action(pruned, "storage.input") == {"update": 1}
    assert sorted(b.name for b in container.list_blobs()) == ["in/a.txt", "in/b.txt"]
    batchrun.destroy(workload, target=target, containers=True)


def test_job_pool_change_and_autoscale_round_trip(target: Target) -> None:
    workload = make_workload("e2e-move", tasks(3))
    batchrun.apply(workload, target=target)
    moved = replace(
        workload,
        pool=replace(pool_of(workload), id="e2e-move-pool2"),
        job=replace(job_of(workload), properties={"poolInfo": {"poolId": "e2e-move-pool2"}}),
    )
    plan = batchrun.plan(moved, target=target)
    job_change = next(c for c in plan.changes if c.kind == "job")
    assert [op.name for op in job_change.operations][:3] == ["job.disable", "job.patch", "job.enable"]
    batchrun.apply(plan, target=target)
    assert not batchrun.plan(moved, target=target).has_changes

    fixed_props = {k: v for k, v in pool_of(moved).properties.items() if k != "targetDedicatedNodes"}
    auto_props = {**fixed_props, "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes=1;"}
    autoscaled = replace(moved, pool=replace(pool_of(moved), properties=auto_props))
    batchrun.apply(autoscaled, target=target)
    assert not batchrun.plan(autoscaled, target=target).has_changes
    back = replace(moved, pool=replace(pool_of(moved), properties={**fixed_props, "targetDedicatedNodes": 0}))
    plan = batchrun.plan(back, target=target)
    pool_change = next(c for c in plan.changes if c.kind == "pool")
    assert [op.name for op in pool_change.operations] == ["pool.disable_autoscale", "pool.resize"]
    batchrun.apply(plan, target=target)
    assert not batchrun.plan(back, target=target).has_changes
    batchrun.destroy(back, target=target, confirm_replace=True)
    batchrun.destroy(workload, target=target, confirm_replace=True)  # the first pool, still owned
