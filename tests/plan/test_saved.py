"""Saved plans, the pure parts: fingerprints, what moved, plan comparison, the file format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from batchrun.errors import PlanError
from batchrun.plan.actions import Action, Change, Operation, Plan, Stage
from batchrun.plan.bodies import Ownership
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.fingerprints import fingerprints, what_moved
from batchrun.plan.live import (
    LiveJob,
    LiveJobState,
    LivePool,
    LiveSchedule,
    LiveState,
    LiveTask,
    LocalFile,
    PreparedInput,
    PreparedPackage,
    TaskResult,
)
from batchrun.plan.saved import (
    ManifestRef,
    SavedPlan,
    dumps,
    is_saved_plan,
    loads,
    loads_all,
    plan_differences,
    sanitised_plan,
)

POOL = {
    "id": "p",
    "vmSize": "standard_d2s_v3",
    "targetDedicatedNodes": 1,
    "startTask": {"commandLine": "setup", "resourceFiles": [{"httpUrl": "https://x/y?sig=abc"}]},
    "eTag": "0x1",
    "lastModified": "2026-01-01T00:00:00Z",
    "currentDedicatedNodes": 0,
    "allocationState": "steady",
}
INPUTS = [PreparedInput("data", "c", "", (LocalFile("a.txt", "/w/data/a.txt", "md5a", 1),))]
PACKAGES = [PreparedPackage("tools", "1.0", "/w/tools", "sha1")]


def pool(**changes: Any) -> LivePool:
    return LivePool("p", {**POOL, **changes}, {}, "active", str({**POOL, **changes}["allocationState"]))


def live(**changes: Any) -> LiveState:
    job = LiveJob("j", {"id": "j", "state": "active", "eTag": "0x9", "priority": 0}, {}, "active", "p")
    return LiveState(
        pool=pool(**changes),
        job=job,
        tasks={"t1": LiveTask("d1", "completed", {}, "success", 0)},
        results={"t1": TaskResult("d1", "success", 0, "2026-01-01T00:00:00Z", "j")},
    )


def test_nothing_moved() -> None:
    before = fingerprints("m1", live(), INPUTS, PACKAGES)
    # Node counts and allocation states move without anyone changing the pool: not a change.
    after = fingerprints("m1", live(currentDedicatedNodes=1, allocationState="resizing"), INPUTS, PACKAGES)
    assert what_moved(before, after) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"vmSize": "standard_d4s_v3", "eTag": "0x2"},
            "pool/p: changed since the plan was made (vmSize standard_d2s_v3 -> standard_d4s_v3)",
        ),
        (
            {"startTask": {"commandLine": "other"}, "eTag": "0x2"},
            "pool/p: changed since the plan was made (startTask)",
        ),
        ({"eTag": "0x2"}, "pool/p: changed since the plan was made (its ETag changed: 0x1 -> 0x2)"),
        (
            {"allocationState": "resizing", "targetDedicatedNodes": 2, "eTag": "0x2"},
            "pool/p: changed since the plan was made (targetDedicatedNodes 1 -> 2)",
        ),
    ],
)
def test_pool_changes_are_named(changes: dict[str, Any], expected: str) -> None:
    before = fingerprints("m1", live(), INPUTS, PACKAGES)
    after = fingerprints("m1", live(**changes), INPUTS, PACKAGES)
    assert what_moved(before, after) == [expected]


def test_manifest_inputs_packages_tasks_results_moved() -> None:
    before = fingerprints("m1", live(), INPUTS, PACKAGES)
    state = live()
    moved_state = LiveState(
        pool=state.pool,
        job=None,
        tasks={"t1": LiveTask("d1", "running", {})},
        results={},
    )
    inputs = [PreparedInput("data", "c", "", (LocalFile("a.txt", "/w/data/a.txt", "md5b", 1),))]
    packages = [PreparedPackage("tools", "1.0", "/w/tools", "sha2")]
    lines = what_moved(before, fingerprints("m2", moved_state, inputs, packages))
    assert lines[0].startswith("the manifest changed since the plan was made")
    assert "storage.input/data: local files changed since the plan was made (a.txt)" in lines
    assert "package/tools@1.0: its content changed since the plan was made" in lines
    assert "job/j: deleted since the plan was made" in lines
    assert any(line.startswith("tasks of job/j: changed") for line in lines)
    assert any(line.startswith("the record of results changed") for line in lines)


def _plan(command: str, path: str = "/checkout/a/data/a.txt", target: str = "local") -> Plan:
    upload = Operation(
        Stage.STORAGE, "storage.upload", {"container": "c", "files": [{"blob": "a", "path": path}]}
    )
    create = Operation(
        Stage.POOL, "pool.create", {"body": {"id": "p", "userAccounts": [{"password": "pw1"}]}}
    )
    task = Operation(Stage.TASKS, "task.add", {"id": "t", "commandLine": command})
    return Plan(
        "w",
        target,
        (
            Change("storage.input/data", Action.UPDATE, operations=(upload,)),
            Change("pool/p", Action.CREATE, operations=(create,)),
            Change("task/j/t", Action.CREATE, operations=(task,)),
        ),
    )


def test_sanitised_plans_compare_across_checkouts_and_hide_secrets() -> None:
    a = sanitised_plan(_plan("x"), Path("/checkout/a"))
    b = sanitised_plan(_plan("x", "/ci/b/data/a.txt"), Path("/ci/b"))
    assert a == b
    assert "pw1" not in str(a) and "data/a.txt" in str(a)
    assert plan_differences(a, b) == []
    c = sanitised_plan(_plan("y"), Path("/checkout/a"))
    assert plan_differences(a, c) == ["task/j/t: its operations differ (e.g. a body or a file list)"]
    d = sanitised_plan(_plan("x", target="azure"), Path("/checkout/a"))
    assert plan_differences(a, d)[0].startswith("the target: the plan was made against 'local'")


def test_file_round_trip_and_errors() -> None:
    saved = SavedPlan(
        ManifestRef("w.yaml", ("vars.yaml",), ("token",), 100),
        PlanOptions(prune=True, rerun=("t*",)),
        Ownership("w", "m1", "abc", (("team", "x"),), "00ff"),
        fingerprints("m1", live(), INPUTS, PACKAGES),
        sanitised_plan(_plan("x"), Path("/checkout/a")),
        "2026-01-01T00:00:00Z",
    )
    text = dumps(saved)
    assert is_saved_plan(text) and not is_saved_plan("apiVersion: batchrun/v1\n")
    assert "sig=abc" not in text  # the pool's live resource file SAS is digested, never stored
    assert loads(text, "plan.json") == saved
    with pytest.raises(PlanError, match=r"plan\.json: not a readable saved plan"):
        loads('{"kind": "batchrun/saved-plan", "formatVersion": 1}', "plan.json")
    with pytest.raises(PlanError, match="format 7 is not supported"):
        loads('{"kind": "batchrun/saved-plan", "formatVersion": 7}', "plan.json")


def _with_other_job(state: str = "completed", task_state: str = "completed", etag: str = "0x5") -> LiveState:
    other = LiveJob("b", {"id": "b", "state": state, "eTag": etag}, {}, state, "p")
    return replace(
        live(), more_jobs={"b": LiveJobState(other, {"t2": LiveTask("d2", task_state, {}, "success", 0)})}
    )


def test_a_workloads_other_jobs_are_fingerprinted_by_name() -> None:
    before = fingerprints("m1", _with_other_job(), INPUTS, PACKAGES)
    assert what_moved(before, fingerprints("m1", _with_other_job(), INPUTS, PACKAGES)) == []
    moved = what_moved(before, fingerprints("m1", _with_other_job(task_state="running"), INPUTS, PACKAGES))
    assert moved == [
        "tasks of job/b: changed since the plan was made (states or definitions; 1 task(s) then, 1 now)"
    ]
    gone = what_moved(before, fingerprints("m1", live(), INPUTS, PACKAGES))
    assert "job/b: deleted since the plan was made" in gone
    # The first job's tasks are named apart from the other job's.
    assert not any(line.startswith("tasks of job/j") for line in gone)
    saved = SavedPlan(
        ManifestRef("w.yaml", (), (), 100),
        PlanOptions(),
        Ownership("w", "m1", "abc", (), "00ff"),
        before,
        sanitised_plan(_plan("x"), Path("/checkout/a")),
        "2026-01-01T00:00:00Z",
    )
    assert loads(dumps(saved), "plan.json") == saved


def test_a_saved_set_without_plans_is_refused() -> None:
    with pytest.raises(PlanError, match="holds no plans"):
        loads_all('{"kind": "batchrun/saved-plans", "formatVersion": 1, "plans": []}', "plans.json")


def test_a_scheduled_workloads_schedule_is_fingerprinted_without_its_etag() -> None:
    def with_schedule(every: str, etag: str) -> LiveState:
        body = {"id": "s", "schedule": {"recurrenceInterval": every}, "eTag": etag, "state": "active"}
        return replace(live(), schedule=LiveSchedule("s", body, {}, "active"))

    before = fingerprints("m1", with_schedule("PT1H", "0x1"), INPUTS, PACKAGES)
    # A run starting may move the ETag: not a change of what the plan was made from.
    assert what_moved(before, fingerprints("m1", with_schedule("PT1H", "0x2"), INPUTS, PACKAGES)) == []
    moved = what_moved(before, fingerprints("m1", with_schedule("PT2H", "0x3"), INPUTS, PACKAGES))
    assert moved == ["jobschedule/s: changed since the plan was made (schedule)"]
