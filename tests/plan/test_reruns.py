"""Rerunning exactly what changed: task identities over content, the record of results, reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec.structs import replace

from batchrun.model import JobSpec, PoolSpec, StorageInput, StorageOutputs, TaskSpec, Workload
from batchrun.plan.actions import Action, Change, Plan
from batchrun.plan.bodies import Ownership, input_bindings, metadata_list
from batchrun.plan.build import contents_of, make_plan
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.live import (
    LiveInput,
    LiveJob,
    LivePackage,
    LivePool,
    LiveState,
    LiveTask,
    LocalFile,
    PreparedInput,
    PreparedPackage,
    TaskResult,
)
from batchrun.plan.render import render_text
from batchrun.plan.task_identity import parse_digest, task_graph

OWNER = Ownership("demo", "d1", "")
FILES = ("a.txt", "b.txt", "c.txt")


def workload(*, merge_command: str = "cat", pool_version: str = "1.0") -> Workload:
    """One task per file (each reading only its file), one reading the whole input, and a merge of all."""
    per_file = tuple(
        TaskSpec(f"count-{name[0]}", {"commandLine": f"wc {name}"}, ("raw",), (), {"raw": (name,)})
        for name in FILES
    )
    whole = TaskSpec("all", {"commandLine": "wc -l raw/*"}, ("raw",))
    merge = TaskSpec(
        "merge",
        {"commandLine": merge_command, "dependsOn": {"taskIds": [t.id for t in (*per_file, whole)]}},
    )
    return Workload(
        name="demo",
        manifest_path=Path("/nowhere/demo.yaml"),
        digest="d1",
        inputs=(StorageInput("raw", Path("/nowhere/raw"), "demo-in", "raw/"),),
        outputs=StorageOutputs("demo-out"),
        pool=PoolSpec(
            "p1",
            {
                "vmSize": "standard_d2s_v3",
                "targetDedicatedNodes": 1,
                "applicationPackageReferences": [{"applicationId": "tool", "version": pool_version}],
            },
        ),
        job=JobSpec(
            "j1",
            {
                "poolInfo": {"poolId": "p1"},
                "onAllTasksComplete": "terminatejob",
                "usesTaskDependencies": True,
            },
            (*per_file, whole, merge),
        ),
    )


def prepared(md5s: dict[str, str] | None = None) -> PreparedInput:
    md5s = md5s or {}
    files = tuple(
        LocalFile(f"raw/{name}", f"/nowhere/raw/{name}", md5s.get(name, f"md5-{name}"), 1) for name in FILES
    )
    return PreparedInput("raw", "demo-in", "raw/", files)


def package(version: str = "1.0", sha: str = "sha-1") -> PreparedPackage:
    return PreparedPackage("tool", version, "/nowhere/tool", sha)


def completed_live(wl: Workload, inputs: PreparedInput, pkg: PreparedPackage, job_state: str) -> LiveState:
    """Live state once ``wl`` ran to success with these contents."""
    assert wl.job is not None
    graph = task_graph(wl.job, input_bindings(wl), "demo-out", contents_of(wl, [inputs], [pkg]))
    tasks = {key: LiveTask(digest, "completed", {}, "success", 0) for key, digest in graph.digests.items()}
    blobs = {f.blob: (f.md5, True) for f in inputs.files}
    pool_props = {
        "id": "p1",
        "vmSize": "standard_d2s_v3",
        "targetDedicatedNodes": 1,
        "allocationState": "steady",
        "applicationPackageReferences": [{"applicationId": "tool", "version": pkg.version}],
        "metadata": metadata_list([], OWNER),
    }
    job_props = {
        "id": "j1",
        "poolInfo": {"poolId": "p1"},
        "onAllTasksComplete": "terminatejob",
        "usesTaskDependencies": True,
    }
    return LiveState(
        inputs={"raw": LiveInput("raw", True, blobs)},
        packages={
            f"tool@{pkg.version}": LivePackage("tool", pkg.version, True, True, "Active", pkg.sha256),
        },
        pool=LivePool("p1", pool_props, {"batchrun.workload": "demo"}, "active", "steady"),
        job=LiveJob("j1", job_props, {"batchrun.workload": "demo"}, job_state, "p1"),
        tasks=tasks,
    )


def plan_of(
    wl: Workload,
    live: LiveState,
    inputs: PreparedInput | None = None,
    pkg: PreparedPackage | None = None,
    options: PlanOptions | None = None,
) -> Plan:
    return make_plan(
        wl, live, [inputs or prepared()], [pkg or package()], OWNER, options or PlanOptions(), "Target: test"
    )


def running(plan: Plan) -> dict[str, str]:
    """Task id -> reason, for the tasks the plan runs."""
    return {c.address.split("/", 2)[2]: c.reason for c in plan.changes if c.runs}


def task_change(plan: Plan, task_id: str) -> Change:
    return next(c for c in plan.changes if c.address == f"task/j1/{task_id}")


def test_nothing_changed_runs_nothing() -> None:
    wl = workload()
    plan = plan_of(wl, completed_live(wl, prepared(), package(), "completed"))
    assert not plan.has_changes, render_text(plan)


def test_one_file_changed_reruns_the_tasks_reading_it_and_their_dependents() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    plan = plan_of(wl, live, prepared({"b.txt": "new-md5"}))
    assert running(plan) == {
        "count-b": "input raw/b.txt changed",
        "all": "input raw/b.txt changed",
        "merge": "upstream count-b and 1 more rerun",
    }
    job = next(c for c in plan.changes if c.kind == "job")
    assert job.action is Action.REPLACE  # completed: a new job holds just the tasks that run
    assert task_change(plan, "count-a").reason == "succeeded in an earlier run"


def test_dependencies_on_carried_over_tasks_are_left_out_of_the_body() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    plan = plan_of(wl, live, prepared({"b.txt": "new-md5"}))
    add = task_change(plan, "merge").operations[0]
    assert add.args["body"]["dependsOn"] == {"taskIds": ["count-b", "all"]}


def test_per_file_inputs_reach_the_task_body_as_paths() -> None:
    wl = workload()
    plan = plan_of(wl, LiveState())
    add = task_change(plan, "count-a").operations[0]
    assert add.args["inputs"] == ["raw"] and add.args["inputPaths"] == {"raw": ["a.txt"]}


def test_package_content_with_a_version_bump_reruns_the_tasks_that_can_use_it() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    bumped = workload(pool_version="1.1")
    plan = plan_of(bumped, live, pkg=package("1.1", "sha-2"))
    assert set(running(plan)) == {"count-a", "count-b", "count-c", "all", "merge"}
    assert task_change(plan, "count-a").reason == "package tool 1.0 -> 1.1"


def test_definition_change_reruns_that_task_only() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    plan = plan_of(workload(merge_command="cat -n"), live)
    assert running(plan) == {"merge": "definition changed"}


def test_job_level_edit_on_a_completed_job_changes_nothing() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    assert wl.job is not None
    edited = replace(wl, job=replace(wl.job, properties={**wl.job.properties, "priority": 5}))
    plan = plan_of(edited, live)
    assert not plan.has_changes
    assert all(not c.operations for c in plan.changes if c.kind in ("job", "task"))


def record_of(live: LiveState) -> dict[str, TaskResult]:
    return {
        key: TaskResult(task.digest, task.result, task.exit_code, "2026-12-01T00:00:00Z", "j1")
        for key, task in live.tasks.items()
    }


def test_the_record_carries_results_over_once_the_job_is_gone() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    gone = replace(live, job=None, tasks={}, results=record_of(live))
    plan = plan_of(wl, gone)
    assert not plan.has_changes, render_text(plan)
    job = next(c for c in plan.changes if c.kind == "job")
    assert job.action is Action.NOOP and "current" in job.reason
    changed = plan_of(wl, gone, prepared({"c.txt": "x"}))
    assert set(running(changed)) == {"count-c", "all", "merge"}
    assert next(c for c in changed.changes if c.kind == "job").action is Action.CREATE


def failed_state(wl: Workload) -> LiveState:
    live = completed_live(wl, prepared(), package(), "active")
    tasks = dict(live.tasks)
    tasks["count-a"] = tasks["count-a"]._replace(result="failure", exit_code=3)
    tasks["merge"] = tasks["merge"]._replace(state="active", result="", exit_code=None)
    return replace(live, tasks=tasks)


def test_a_failed_task_is_not_rerun_and_its_dependents_are_named() -> None:
    wl = workload()
    plan = plan_of(wl, failed_state(wl))
    assert not plan.has_changes
    assert task_change(plan, "count-a").reason == "failed (exit 3); --rerun-failed reruns it"
    assert "1 task(s) failed and will not run again: count-a" in render_text(plan)


def test_rerun_failed_reruns_it_and_what_depends_on_it() -> None:
    wl = workload()
    plan = plan_of(wl, failed_state(wl), options=PlanOptions(rerun_failed=True))
    assert set(running(plan)) == {"count-a", "merge"}
    replaced = task_change(plan, "count-a")
    assert replaced.action is Action.REPLACE  # the job is still active: replaced within it
    assert [op.name for op in replaced.operations] == ["task.delete", "task.add"]


def test_a_task_that_must_run_behind_a_failed_one_is_held_back() -> None:
    wl = workload()
    live = failed_state(wl)
    live = replace(live, job=replace(live.job, state="completed") if live.job else None)
    plan = plan_of(workload(merge_command="cat -n"), live)
    merge = task_change(plan, "merge")
    assert merge.action is Action.NOOP
    assert merge.reason == "waits for failed count-a (--rerun-failed reruns it)"


def test_rerun_glob_forces_matching_tasks_and_their_dependents() -> None:
    wl = workload()
    live = completed_live(wl, prepared(), package(), "completed")
    plan = plan_of(wl, live, options=PlanOptions(rerun=("COUNT-C",)))
    assert running(plan) == {"count-c": "forced (--rerun)", "merge": "upstream count-c reruns"}


def test_digest_parts_say_what_changed() -> None:
    wl = workload()
    assert wl.job is not None
    before = task_graph(wl.job, input_bindings(wl), "demo-out", contents_of(wl, [prepared()], [package()]))
    after = task_graph(
        wl.job, input_bindings(wl), "demo-out", contents_of(wl, [prepared({"a.txt": "x"})], [package()])
    )
    old = parse_digest(before.digests["count-a"])
    assert after.identity("count-a").differing(old) == ["inputs"]
    assert after.digests["count-b"] == before.digests["count-b"]
    assert after.identity("merge").differing(before.identity("merge")) == ["upstream"]
    assert parse_digest("not-a-digest") is None


def test_ten_thousand_tasks_one_edit_reruns_two() -> None:
    sweep = tuple(TaskSpec(str(i), {"commandLine": f"run {i}"}) for i in range(1, 10_001))
    merge = TaskSpec(
        "merge", {"commandLine": "m", "dependsOn": {"taskIdRanges": [{"start": 1, "end": 10_000}]}}
    )
    wl = Workload(
        name="demo",
        manifest_path=Path("/nowhere/sweep.yaml"),
        digest="d",
        job=JobSpec("j1", {"poolInfo": {"poolId": "p1"}, "usesTaskDependencies": True}, (*sweep, merge)),
    )
    assert wl.job is not None
    graph = task_graph(wl.job, {}, None, contents_of(wl, [], []))
    results: dict[str, Any] = {
        key: TaskResult(digest, "success", 0, "", "j1") for key, digest in graph.digests.items()
    }
    edited_tasks = (*sweep[:41], TaskSpec("42", {"commandLine": "run 42 again"}), *sweep[42:], merge)
    edited = replace(wl, job=replace(wl.job, tasks=edited_tasks))
    plan = make_plan(edited, LiveState(results=results), [], [], OWNER, PlanOptions(), "Target: test")
    assert running(plan) == {"42": "definition changed", "merge": "upstream 42 reruns"}
    add = task_change(plan, "merge").operations[0]
    assert add.args["body"]["dependsOn"] == {"taskIds": ["42"]}
