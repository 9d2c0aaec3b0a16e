"""Job decisions as data cases: what batchrun set and the manifest no longer sets is reverted; what others
set is kept; job defaults and casing are never drift."""

from __future__ import annotations

from typing import Any

from batchrun.model import JobSpec
from batchrun.plan.actions import Action
from batchrun.plan.bodies import Ownership, job_body, marked
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_job import JobDecision, decide_job
from batchrun.plan.live import LiveJob

OWNER = Ownership("demo", "d1", "", salt="00112233445566778899aabbccddeeff")
BASE = {"poolInfo": {"poolId": "p1"}}
TEAM = {"name": "team", "value": "viz"}
TIER = {"name": "tier", "value": "gold"}


def body(**properties: Any) -> dict[str, Any]:
    return job_body(JobSpec("j1", {**BASE, **properties}, ()), OWNER)


def live_after(
    applied: dict[str, Any], extra_metadata: tuple[dict[str, str], ...] = (), **live: Any
) -> LiveJob:
    """The job as Batch returns it after batchrun created it from ``applied`` (defaults filled in)."""
    written = marked(applied, OWNER)[0]
    metadata = [*written["metadata"], *extra_metadata]
    properties = {
        **written,
        "metadata": metadata,
        "priority": written.get("priority", 0),
        "maxParallelTasks": -1,
        "allowTaskPreemption": False,
        "usesTaskDependencies": False,
        "onTaskFailure": "noaction",
        "constraints": {
            "maxWallClockTime": "P10675199DT2H48M5.4775807S",
            "maxTaskRetryCount": 0,
            **written.get("constraints", {}),
        },
        "state": "active",
        **live,
    }
    return LiveJob("j1", properties, {i["name"]: i["value"] for i in metadata}, "active", "p1")


def decide(desired: dict[str, Any], live: LiveJob, tasks_run: bool = False) -> JobDecision:
    return decide_job(
        desired, "noaction", live, OWNER, PlanOptions(), tasks_change=tasks_run, tasks_run=tasks_run
    )


def test_applied_job_read_back_is_no_change() -> None:
    applied = body(priority=100, constraints={"maxWallClockTime": "PT01H00M00S"}, metadata=[TEAM])
    live = live_after(applied, onAllTasksComplete="NoAction")
    live.properties["constraints"]["maxWallClockTime"] = "PT1H"  # type: ignore[index]
    assert decide(applied, live).change.action is Action.NOOP


def test_removed_metadata_item_is_reverted_and_others_kept() -> None:
    owners = ({"name": "owner", "value": "ops"},)
    live = live_after(body(metadata=[TEAM, TIER]), owners)
    change = decide(body(metadata=[TEAM]), live).change
    assert change.action is Action.UPDATE
    assert [(f.path, f.before, f.after) for f in change.fields] == [("metadata.tier", "gold", "(removed)")]
    (patch,) = [op.args["body"] for op in change.operations if op.name == "job.patch" and op.stage == 70]
    names = [i["name"] for i in patch["metadata"]]
    assert "tier" not in names and "team" in names and "owner" in names


def test_removed_patchable_property_goes_back_to_its_default() -> None:
    live = live_after(body(priority=100))
    change = decide(body(), live).change
    assert change.action is Action.UPDATE
    assert [(f.path, f.after) for f in change.fields] == [("priority", "(removed)")]
    assert any(op.args["body"].get("priority") == 0 for op in change.operations if op.name == "job.patch")


def test_removed_create_only_property_replaces_the_job() -> None:
    live = live_after(body(jobPreparationTask={"commandLine": "/bin/true"}))
    live.properties["jobPreparationTask"].update(  # type: ignore[union-attr]
        {"id": "jobpreparation", "waitForSuccess": True, "rerunOnNodeRebootAfterSuccess": True}
    )
    change = decide(body(), live, tasks_run=True).change  # a job that runs nothing is left until it does
    assert change.action is Action.REPLACE
    assert [f.path for f in change.fields if f.forces_replacement] == ["jobPreparationTask"]


def test_without_a_record_nothing_is_reverted() -> None:
    live = live_after(body(priority=100, metadata=[TEAM, TIER]))
    legacy = LiveJob(
        live.id,
        live.properties,
        {k: v for k, v in live.metadata.items() if k != "batchrun.keys"},
        live.state,
        live.pool_id,
    )
    assert decide(body(metadata=[TEAM]), legacy).change.action is Action.NOOP
