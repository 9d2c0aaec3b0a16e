"""A scheduled workload's job schedule, decided from data: created, left alone, updated when the manifest
changed or its tasks' SAS URLs expire soon, replaced once ended, and never touched when not ours."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from batchrun.model import JobSpec, TaskSpec, Workload
from batchrun.plan.actions import Action
from batchrun.plan.bodies import Ownership
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_schedule import decide_schedule, job_specification
from batchrun.plan.live import LiveSchedule

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
OWNERSHIP = Ownership("nightly", "digest-now", "")
TASKS = [{"body": {"id": "extract", "commandLine": "x"}}, {"body": {"id": "load", "commandLine": "y"}}]


def workload() -> Workload:
    job = JobSpec("nightly", {"poolInfo": {"poolId": "p"}}, (TaskSpec("extract", {"commandLine": "x"}),))
    return Workload(
        name="nightly",
        manifest_path=Path("n.yaml"),
        digest="digest-now",
        job=job,
        schedule={"recurrenceInterval": "PT1H"},
    )


def live(
    owner: str = "nightly", digest: str = "digest-now", state: str = "active", expiry: str = ""
) -> LiveSchedule:
    metadata = {"batchrun.workload": owner, "batchrun.digest": digest}
    if expiry:
        metadata["batchrun.sasExpiry"] = expiry
    return LiveSchedule("nightly", {"id": "nightly", "state": state}, metadata, state)


@pytest.mark.parametrize(
    ("observed", "action", "reason", "operations"),
    [
        (None, Action.CREATE, "every PT1H; 2 task(s) added to each run's job", ["jobschedule.put"]),
        (live(), Action.NOOP, "", []),
        (live(expiry="2026-12-30T00:00:00Z"), Action.NOOP, "", []),
        (live(digest="older"), Action.UPDATE, "the manifest changed", ["jobschedule.put"]),
        (
            live(expiry="2026-12-04T00:00:00Z"),
            Action.UPDATE,
            "its tasks' storage URLs expire at 2026-12-04T00:00:00Z: renewed",
            ["jobschedule.put"],
        ),
        (live(owner="other"), Action.BLOCKED, "owned by workload 'other'", []),
        (live(state="completed"), Action.NOOP, "the schedule has ended (completed)", []),
        (
            live(state="completed", digest="older"),
            Action.REPLACE,
            "the schedule has ended (completed) and the manifest changed",
            ["jobschedule.delete", "jobschedule.put"],
        ),
    ],
)
def test_schedule_decisions(
    observed: LiveSchedule | None, action: Action, reason: str, operations: list[str]
) -> None:
    [change] = decide_schedule(workload(), observed, OWNERSHIP, PlanOptions(), TASKS, NOW)
    assert change.address == "jobschedule/nightly"
    assert change.action is action
    assert reason in change.reason
    assert [op.name for op in change.operations] == operations
    for op in change.operations:
        if op.name == "jobschedule.put":
            assert op.args["tasks"] == TASKS
            assert op.args["body"]["schedule"] == {"recurrenceInterval": "PT1H"}


def test_adopt_takes_over_a_schedule_batchrun_did_not_make() -> None:
    [change] = decide_schedule(workload(), live(owner=""), OWNERSHIP, PlanOptions(adopt=True), TASKS, NOW)
    assert change.action is Action.UPDATE


def test_each_run_ends_with_its_tasks_unless_the_manifest_says_otherwise() -> None:
    spec = job_specification(workload().job or JobSpec("x", {}), OWNERSHIP)
    assert spec["onAllTasksComplete"] == "terminatejob"
    assert {"name": "batchrun.workload", "value": "nightly"} in spec["metadata"]
    kept = JobSpec("n", {"onAllTasksComplete": "noaction"})
    assert job_specification(kept, OWNERSHIP)["onAllTasksComplete"] == "noaction"


def test_scheduled_tasks_storage_urls_last_the_longest_lifetime() -> None:
    from msgspec.structs import replace as replaced

    from batchrun.plan.build import DEFAULT_SAS_LIFETIME, ENTRA_SAS_LIMIT, sas_lifetime_seconds

    job = JobSpec("nightly", {"constraints": {"maxWallClockTime": "PT2H"}})
    plain = replaced(workload(), job=job, schedule=None)
    assert sas_lifetime_seconds(plain, False) == 2 * 3600 + 86400  # a job: its own limit plus a day
    scheduled = replaced(workload(), job=job)
    assert sas_lifetime_seconds(scheduled, False) == DEFAULT_SAS_LIFETIME  # runs start long after the apply
    assert sas_lifetime_seconds(scheduled, True) == ENTRA_SAS_LIMIT


def test_a_job_left_from_before_the_schedule_is_not_named() -> None:
    from batchrun.plan.decide_orphans import named_by

    named = named_by(workload())
    assert not named.names_job("nightly") and named.names_schedule("nightly")
    assert dict(named.schedules) == {"nightly": "p"}
