"""Job and task decisions as data cases, plus whole-plan cases through make_plan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from batchrun.model import JobSpec, PoolSpec, StorageInput, StorageOutputs, TaskOutput, TaskSpec, Workload
from batchrun.plan.actions import Action, Plan
from batchrun.plan.bodies import Ownership, input_bindings, job_body, metadata_list
from batchrun.plan.build import contents_of, make_plan
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_job import decide_job
from batchrun.plan.live import LiveJob, LivePool, LiveState, LiveTask, TakenOnce
from batchrun.plan.plan_json import plan_from_json, plan_to_json
from batchrun.plan.render import render_text
from batchrun.plan.task_identity import task_graph


def job_of(state: Any) -> Any:
    """The job of a Workload or LiveState, known to be there."""
    assert state.job is not None
    return state.job


def pool_of(state: Any) -> Any:
    assert state.pool is not None
    return state.pool


OWNER = Ownership("demo", "d1", "")


def job_spec(**props: Any) -> JobSpec:
    properties: dict[str, Any] = {"poolInfo": {"poolId": "p1"}, "priority": 0}
    properties.update(props)
    return JobSpec("j1", properties)


def live_job(
    state: str = "active", owner: str | None = "demo", active: int = 0, running: int = 0, **props: Any
) -> LiveJob:
    properties: dict[str, Any] = {
        "id": "j1",
        "state": state,
        "poolInfo": {"poolId": "p1"},
        "priority": 0,
        "maxParallelTasks": -1,
        "allowTaskPreemption": False,
        "onAllTasksComplete": "noaction",
        "onTaskFailure": "noaction",
        "usesTaskDependencies": False,
        "constraints": {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "maxTaskRetryCount": 0},
        "executionInfo": {"startTime": "2026-11-21T10:00:00Z", "poolId": "p1"},
    }
    properties.update(props)
    metadata = {"batchrun.workload": owner} if owner else {}
    return LiveJob("j1", properties, metadata, state, "p1", active, running)


@dataclass
class JobCase:
    name: str
    spec: JobSpec
    live: LiveJob | None
    action: Action
    operations: list[str] = field(default_factory=list)
    final: str = "noaction"
    tasks_change: bool = False
    tasks_run: bool = False
    options: PlanOptions = field(default_factory=PlanOptions)


JOB_CASES = [
    JobCase(
        "absent -> create then final patch",
        job_spec(),
        None,
        Action.CREATE,
        ["job.create", "job.patch"],
        final="terminatejob",
        tasks_run=True,
    ),
    JobCase(
        "absent, noaction -> created with its marks, no patch after the tasks",
        job_spec(),
        None,
        Action.CREATE,
        ["job.create"],
        tasks_run=True,
    ),
    JobCase("absent, every result current -> not created", job_spec(), None, Action.NOOP),
    JobCase("live defaults are not drift", job_spec(maxParallelTasks=-1), live_job(), Action.NOOP),
    JobCase(
        "priority -> PATCH", job_spec(priority=10), live_job(), Action.UPDATE, ["job.patch", "job.patch"]
    ),
    JobCase(
        "constraints -> PATCH",
        job_spec(constraints={"maxTaskRetryCount": 2}),
        live_job(),
        Action.UPDATE,
        ["job.patch", "job.patch"],
    ),
    JobCase(
        "pool change -> disable, patch, enable",
        job_spec(poolInfo={"poolId": "p2"}),
        live_job(),
        Action.UPDATE,
        ["job.disable", "job.patch", "job.enable", "job.patch"],
    ),
    JobCase(
        "onAllTasksComplete -> patched after tasks",
        job_spec(),
        live_job(),
        Action.UPDATE,
        ["job.patch"],
        final="terminatejob",
    ),
    JobCase(
        "terminatejob -> noaction cannot be patched: replace",
        job_spec(),
        live_job(onAllTasksComplete="terminatejob"),
        Action.REPLACE,
        ["results.save", "job.delete", "job.create"],
        tasks_run=True,
    ),
    JobCase(
        "create-only field -> replace",
        job_spec(displayName="new"),
        live_job(displayName="old"),
        Action.REPLACE,
        ["results.save", "job.delete", "job.create"],
        tasks_run=True,
    ),
    JobCase(
        "create-only field, nothing to run -> left for the next run",
        job_spec(displayName="new"),
        live_job(displayName="old"),
        Action.NOOP,
    ),
    JobCase(
        "completed job, job-level edit, nothing to run -> no-op, never a write",
        job_spec(constraints={"maxTaskRetryCount": 2}, priority=5),
        live_job(state="completed"),
        Action.NOOP,
    ),
    JobCase(
        "create-only field with active tasks -> blocked",
        job_spec(displayName="new"),
        live_job(displayName="old", active=3),
        Action.BLOCKED,
        tasks_run=True,
    ),
    JobCase(
        "completed job with new tasks -> replace",
        job_spec(),
        live_job(state="completed"),
        Action.REPLACE,
        ["results.save", "job.delete", "job.create"],
        tasks_change=True,
        tasks_run=True,
    ),
    JobCase("completed job, nothing to run -> no-op", job_spec(), live_job(state="completed"), Action.NOOP),
    JobCase(
        "completed job, only a prune -> no replace, no patch",
        job_spec(),
        live_job(state="completed"),
        Action.NOOP,
        [],
        tasks_change=True,
    ),
    JobCase(
        "only tasks change -> job no-op with metadata refresh",
        job_spec(),
        live_job(),
        Action.NOOP,
        ["job.patch"],
        tasks_change=True,
        tasks_run=True,
    ),
    JobCase("unowned -> blocked", job_spec(), live_job(owner=None), Action.BLOCKED),
    JobCase(
        "unowned with --adopt -> update",
        job_spec(),
        live_job(owner=None),
        Action.UPDATE,
        ["job.patch", "job.patch"],
        options=PlanOptions(adopt=True),
    ),
    JobCase(
        "being deleted -> wait, create",
        job_spec(),
        live_job(state="deleting"),
        Action.CREATE,
        ["job.wait_deleted", "job.create"],
        tasks_run=True,
    ),
]


@pytest.mark.parametrize("case", JOB_CASES, ids=[c.name for c in JOB_CASES])
def test_job_decision(case: JobCase) -> None:
    body = job_body(case.spec, OWNER)
    decision = decide_job(body, case.final, case.live, OWNER, case.options, case.tasks_change, case.tasks_run)
    assert decision.change.action is case.action, decision.change
    assert [op.name for op in decision.change.operations] == case.operations


def test_job_is_created_with_noaction_and_patched_to_the_requested_value() -> None:
    body = job_body(job_spec(onAllTasksComplete="terminatejob"), OWNER)
    decision = decide_job(body, "terminatejob", None, OWNER, PlanOptions(), True, True)
    create, final = decision.change.operations
    assert create.args["body"]["onAllTasksComplete"] == "noaction"
    assert final.args["body"]["onAllTasksComplete"] == "terminatejob"
    assert final.stage > create.stage


# -- whole plans: tasks, storage, prune ---------------------------------------------------------------------


def workload(tasks: list[TaskSpec], **job_props: Any) -> Workload:
    return Workload(
        name="demo",
        manifest_path=Path("/nowhere/demo.yaml"),
        digest="d1",
        inputs=(StorageInput("data", Path("/nowhere/data"), "demo-in", "data/"),),
        outputs=StorageOutputs("demo-out"),
        pool=PoolSpec("p1", {"vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1}),
        job=JobSpec("j1", {"poolInfo": {"poolId": "p1"}, **job_props}, tuple(tasks)),
    )


def task(index: int, command: str = "echo hi", **props: Any) -> TaskSpec:
    return TaskSpec(
        f"t{index}",
        {"commandLine": command, **props},
        inputs=("data",),
        outputs=(TaskOutput("out.txt", f"t{index}/out.txt"),),
    )


def live_for(wl: Workload, state: str = "completed") -> LiveState:
    """The live state right after applying ``wl``: what a second plan sees."""
    assert wl.job is not None and wl.pool is not None
    graph = task_graph(wl.job, input_bindings(wl), "demo-out", contents_of(wl, [], []))
    tasks = {
        t.id.lower(): LiveTask(
            graph.digests[t.id.lower()],
            state,
            {
                "maxWallClockTime": "P10675199DT2H48M5.4775807S",
                "retentionTime": "P7D",
                "maxTaskRetryCount": 0,
            },
            "success" if state == "completed" else "",
            0 if state == "completed" else None,
        )
        for t in wl.job.tasks
    }
    pool_props = {
        "id": "p1",
        "vmSize": "STANDARD_D2S_V3",
        "targetDedicatedNodes": 1,
        "allocationState": "steady",
        "metadata": metadata_list([], OWNER),
    }
    job_props = {
        "id": "j1",
        "poolInfo": {"poolId": "p1"},
        "onAllTasksComplete": "noaction",
        "state": "active",
    }
    return LiveState(
        pool=LivePool("p1", pool_props, {"batchrun.workload": "demo"}, "active", "steady"),
        job=LiveJob("j1", job_props, {"batchrun.workload": "demo"}, "active", "p1"),
        tasks=tasks,
    )


def make(wl: Workload, live: LiveState, options: PlanOptions | None = None) -> Plan:
    return make_plan(wl, live, [], [], OWNER, options or PlanOptions(), "Target: test")


def actions(plan: Plan, kind: str) -> dict[str, str]:
    return {c.address: c.action.value for c in plan.changes if c.kind == kind}


def test_second_plan_is_all_noop() -> None:
    wl = workload([task(i) for i in range(3)])
    plan = make(wl, live_for(wl))
    assert not plan.has_changes, render_text(plan)
    assert all(not c.operations for c in plan.changes)


def test_sas_rotation_is_not_drift() -> None:
    """Digests exclude SAS URLs: the plan holds none, so a new signature can never differ."""
    wl = workload([task(1)])
    plan = make(wl, live_for(wl))
    assert "sig=" not in str(plan_to_json(plan))
    fresh = make(wl, LiveState())
    add = next(c for c in fresh.changes if c.kind == "task").operations[0]
    assert add.args["inputs"] == ["data"] and "resourceFiles" not in add.args["body"]


def test_changed_command_replaces_only_that_task() -> None:
    wl = workload([task(i) for i in range(3)])
    live = live_for(wl)
    edited = replace(wl, job=replace(job_of(wl), tasks=(task(0), task(1, "echo changed"), task(2))))
    plan = make(edited, live)
    assert actions(plan, "task") == {"task/j1/t0": "no-op", "task/j1/t1": "replace", "task/j1/t2": "no-op"}
    assert actions(plan, "job") == {"job/j1": "no-op"}


def test_completed_job_with_a_changed_task_runs_only_that_task_in_a_new_job() -> None:
    wl = workload([task(i) for i in range(3)], onAllTasksComplete="terminatejob")
    live = live_for(wl)
    live = replace(live, job=replace(job_of(live), state="completed"))
    edited = replace(wl, job=replace(job_of(wl), tasks=(task(0), task(1, "echo changed"), task(2))))
    plan = make(edited, live)
    assert actions(plan, "job") == {"job/j1": "replace"}
    job_ops = [op.name for c in plan.changes if c.kind == "job" for op in c.operations]
    assert job_ops[:2] == ["results.save", "job.delete"]  # results are recorded before the job goes
    assert actions(plan, "task") == {"task/j1/t0": "no-op", "task/j1/t1": "create", "task/j1/t2": "no-op"}
    carried = next(c for c in plan.changes if c.address == "task/j1/t0")
    assert carried.reason == "succeeded in an earlier run"


def test_changed_command_on_active_job_replaces_task_in_place() -> None:
    wl = workload([task(i) for i in range(3)])
    live = live_for(wl, state="active")
    edited = replace(wl, job=replace(job_of(wl), tasks=(task(0), task(1, "echo changed"), task(2))))
    plan = make(edited, live)
    assert actions(plan, "job") == {"job/j1": "no-op"}
    replaced = next(c for c in plan.changes if c.address == "task/j1/t1")
    assert [op.name for op in replaced.operations] == ["task.delete", "task.add"]


def test_constraints_change_in_place() -> None:
    wl = workload([task(1)])
    live = live_for(wl, state="active")
    edited = replace(wl, job=replace(job_of(wl), tasks=(task(1, constraints={"maxTaskRetryCount": 3}),)))
    plan = make(edited, live)
    change = next(c for c in plan.changes if c.kind == "task")
    assert change.action is Action.UPDATE
    assert change.operations[0].name == "task.update_constraints"
    assert change.operations[0].args["constraints"]["maxTaskRetryCount"] == 3


def test_constraints_compared_once_per_pair_still_tell_each_task_apart() -> None:
    """Tasks sharing constraints are compared once; a task with other constraints (after many that agree), or
    with a value that cannot be a memo key, still gets its own update."""
    same = [task(i, constraints={"maxTaskRetryCount": 0}) for i in range(3)]
    odd = task(3, constraints={"maxTaskRetryCount": 4})
    unhashable = task(4, constraints={"maxTaskRetryCount": 0, "x": ["not", "a", "key"]})
    wl = workload([*same, odd, unhashable])
    plan = make(wl, live_for(wl, state="active"))
    assert actions(plan, "task") == {
        "task/j1/t0": "no-op",
        "task/j1/t1": "no-op",
        "task/j1/t2": "no-op",
        "task/j1/t3": "update",
        "task/j1/t4": "no-op",
    }
    update = next(c for c in plan.changes if c.address == "task/j1/t3")
    assert update.operations[0].args["constraints"]["maxTaskRetryCount"] == 4


def test_new_tasks_are_added_and_extra_tasks_kept_without_prune() -> None:
    wl = workload([task(i) for i in range(3)])
    live = live_for(wl, state="active")
    edited = replace(wl, job=replace(job_of(wl), tasks=(task(1), task(2), task(3))))
    plan = make(edited, live)
    assert actions(plan, "task") == {
        "task/j1/t1": "no-op",
        "task/j1/t2": "no-op",
        "task/j1/t3": "create",
        "task/j1/t0": "no-op",
    }
    assert "--prune" in render_text(plan)
    pruned = make(edited, live, PlanOptions(prune=True))
    assert actions(pruned, "task")["task/j1/t0"] == "delete"


def test_blocked_job_blocks_its_task_changes() -> None:
    wl = workload([task(1)])
    live = live_for(wl)
    unowned = LiveState(pool=live.pool, job=replace(job_of(live), metadata={}), tasks={})
    plan = make(wl, unowned)
    assert {c.action for c in plan.changes if c.kind in ("job", "task")} == {Action.BLOCKED}


def test_plan_json_round_trip() -> None:
    wl = workload([task(i) for i in range(2)], onAllTasksComplete="terminatejob")
    plan = make(wl, LiveState())
    assert plan_from_json(plan_to_json(plan)) == plan


def test_many_tasks_render_as_a_summary() -> None:
    wl = workload([task(i) for i in range(500)])
    text = render_text(make(wl, LiveState()))
    assert "500 to add" in text
    assert "... and 495 more to create" in text
    assert "why they run: 500 new" in text
    assert len(text.splitlines()) < 40


def test_sas_lifetime_follows_job_wall_clock() -> None:
    wl = workload([task(1)], constraints={"maxWallClockTime": "PT2H"})
    assert make(wl, LiveState()).sas_expiry_seconds == 2 * 3600 + 86400


def test_labels_are_recorded_but_never_drift() -> None:
    labelled = Ownership("demo", "d2", "abc", (("team", "viz"),))
    assert labelled.metadata()["batchrun.labels"] == '{"team":"viz"}'
    body = job_body(job_spec(), labelled)
    decision = decide_job(body, "noaction", live_job(), labelled, PlanOptions(), False, False)
    assert decision.change.action is Action.NOOP  # live has no labels or digest: marks are not drift


class TakenFromDict(TakenOnce):
    """Live tasks taken once each, as a plan takes them from a listing (ArrivingTasks)."""

    def __init__(self, tasks: dict[str, LiveTask]) -> None:
        self.tasks = dict(tasks)
        self.taken: list[str] = []

    def take(self, key: str) -> LiveTask | None:
        self.taken.append(key)
        return self.tasks.pop(key, None)

    def __getitem__(self, key: str) -> LiveTask:
        return self.tasks[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


def _mixed_live(wl: Workload, job_state: str) -> LiveState:
    """t0 succeeded, t1 still runs, t2 failed, t9 is no longer in the manifest."""
    live = live_for(wl)
    tasks = dict(live.tasks)
    tasks["t1"] = tasks["t1"]._replace(state="running", result="", exit_code=None)
    tasks["t2"] = tasks["t2"]._replace(result="failure", exit_code=3)
    tasks["t9"] = tasks["t0"]._replace(digest="0" * 16)
    return replace(live, job=replace(job_of(live), state=job_state), tasks=tasks)


@pytest.mark.parametrize(
    ("case", "job_state", "edit", "options"),
    [
        ("no change", "active", {}, PlanOptions()),
        ("a changed task, orphan kept", "active", {1: "echo changed"}, PlanOptions()),
        ("a changed task, orphan pruned", "active", {3: "echo new"}, PlanOptions(prune=True)),
        (
            "completed job replaced: running task waits, success carried",
            "completed",
            {2: "echo fixed"},
            PlanOptions(),
        ),
        ("failed task rerun", "active", {}, PlanOptions(rerun_failed=True)),
    ],
)
def test_tasks_taken_as_decided_give_the_same_plan(
    case: str, job_state: str, edit: dict[int, str], options: PlanOptions
) -> None:
    """A plan takes each live task as it decides it (so 100,000 of them are not all held): the plan is the one
    made from a plain mapping, even when the job is replaced and the tasks are decided a second time; what
    is left untaken is the task the manifest no longer has."""
    wl = workload([task(i) for i in range(3)], onAllTasksComplete="terminatejob")
    live = _mixed_live(wl, job_state)
    tasks = [task(i, edit.get(i, "echo hi")) for i in range(4 if 3 in edit else 3)]
    edited = replace(wl, job=replace(job_of(wl), tasks=tuple(tasks)))
    plain = make(edited, live, options)
    taken = TakenFromDict(dict(live.tasks))
    assert make(edited, replace(live, tasks=taken), options) == plain, case
    assert sorted(taken.taken) == sorted(t.id for t in tasks), "each task of the manifest is taken once"
    assert list(taken.tasks) == ["t9"]
    if job_state == "completed":
        assert actions(plain, "job") == {"job/j1": "replace"}
        assert actions(plain, "task")["task/j1/t1"] == "create"  # it had not finished in the old job
        carried = next(c for c in plain.changes if c.address == "task/j1/t0")
        assert carried.reason == "succeeded in an earlier run"


class ListedTwice(TakenFromDict):
    """A listing whose later page brings t0 again, after the plan took it."""

    def take(self, key: str) -> LiveTask | None:
        found = super().take(key)
        if key == "t0" and found is not None:
            self.tasks[key] = found
        return found


def test_a_task_the_listing_brings_twice_is_not_an_orphan() -> None:
    """What is left once the manifest's tasks are taken is checked against the manifest: a task listed twice
    is not deleted by --prune."""
    wl = workload([task(i) for i in range(3)])
    live = live_for(wl, state="active")
    plan = make(wl, replace(live, tasks=ListedTwice(dict(live.tasks))), PlanOptions(prune=True))
    assert actions(plan, "task") == {f"task/j1/t{i}": "no-op" for i in range(3)}
    assert not plan.has_changes


@pytest.mark.parametrize(
    ("case", "creates"),
    [
        ("job missing, nothing recorded", True),
        ("job live", False),
        ("job missing, results recorded", False),
        ("job missing, no tasks", False),
        ("a schedule's jobs", False),
        ("no job", False),
    ],
)
def test_an_apply_is_sure_to_write_when_it_creates_its_job(case: str, creates: bool) -> None:
    """The apply lock is taken while the plan is decided only when the live state alone shows a write."""
    from batchrun.plan.decide_job import creates_a_job
    from batchrun.plan.live import TaskResult

    tasks = () if case == "job missing, no tasks" else (TaskSpec("t1", {"commandLine": "true"}),)
    workload = Workload(
        name="w",
        manifest_path=Path("w.yaml"),
        digest="d",
        job=None if case == "no job" else JobSpec("j1", {"poolInfo": {"poolId": "p1"}}, tasks),
        schedule={"recurrenceInterval": "PT1H"} if case == "a schedule's jobs" else None,
    )
    live = LiveState(
        job=LiveJob("j1", {}, {}, "active", "p1") if case == "job live" else None,
        results={"t1": TaskResult("d", "success", 0, "", "j0")} if case.endswith("results recorded") else {},
    )
    assert creates_a_job(workload, live) is creates


def test_constraints_of_the_task_before_answer_only_the_same_pair_that_agreed() -> None:
    """Live tasks share one constraints object, as the listing makes them: a task whose constraints equal
    the agreeing task's before takes its answer; one that differs, and each of a run that disagrees, is
    updated."""
    from batchrun.plan.task_constraints import constraints_checker

    shared = {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "retentionTime": "P7D"}
    shared["maxTaskRetryCount"] = 1
    check = constraints_checker({})
    desired = [{"maxTaskRetryCount": 1}, {"maxTaskRetryCount": 1}, {"maxTaskRetryCount": 2}]
    desired += [{"maxTaskRetryCount": 2}, {"maxTaskRetryCount": 1}, None]
    updates = [
        check("j1", task(i, constraints=wanted), LiveTask("d", "active", shared))
        for i, wanted in enumerate(desired)
    ]
    assert [update is not None for update in updates] == [False, False, True, True, False, True]
    assert [u.address for u in updates if u is not None] == ["task/j1/t2", "task/j1/t3", "task/j1/t5"]
