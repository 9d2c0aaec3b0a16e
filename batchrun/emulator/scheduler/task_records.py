"""What a task's record says about its runs: a requeue, a failure before the command ran, a node's job
preparation and release status, and the slots a task takes on its node."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchrun.emulator.model import Body, internal, transition
from batchrun.emulator.node import TaskOutcome
from batchrun.emulator.timefmt import iso, now, now_iso

# What record_prep_release keeps, by task kind (the members of a node's jobpreparationandreleasetaskstatus).
PREPARATION_INFO = "jobPreparationTaskExecutionInfo"
RELEASE_INFO = "jobReleaseTaskExecutionInfo"


def requeue(task: Body, moment: str) -> None:
    info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
    info["requeueCount"] = int(info.get("requeueCount", 0)) + 1
    info["lastRequeueTime"] = moment
    for name in ("startTime", "endTime", "exitCode", "failureInfo", "result"):
        info.pop(name, None)
    task.pop("nodeInfo", None)
    transition(task, "active", moment)


def immediate_failure(info: Body) -> TaskOutcome:
    moment: datetime = now()
    return TaskOutcome(
        exit_code=None,
        failure_info=info,
        start_time=moment,
        end_time=moment,
        result="failure",
        failure_stage="preprocessing",
    )


def record_prep_release(
    model: Any, account_url: str, run: Any, kind: str, outcome: TaskOutcome | None = None
) -> None:
    """Keep what ``GET /jobs/{job}/jobpreparationandreleasetaskstatus`` reports for one node (lock held).

    ``run`` names the job, pool and node; ``kind`` is :data:`PREPARATION_INFO` or :data:`RELEASE_INFO`;
    without ``outcome`` the task has just started.
    """
    job = model.jobs.get(run.job_id)
    if job is None:
        return
    node_url = f"{account_url}/pools/{run.pool_id}/nodes/{run.node_id}"
    folder = "jobpreparation" if kind == PREPARATION_INFO else "jobrelease"
    directory = f"workitems/{run.job_id}/job-1/{folder}"
    statuses = internal(job).setdefault("prepRelease", {})
    entry = statuses.setdefault(
        f"{run.pool_id}/{run.node_id}", {"poolId": run.pool_id, "nodeId": run.node_id, "nodeUrl": node_url}
    )
    if outcome is None:
        entry[kind] = {
            "startTime": now_iso(),
            "state": "running",
            "taskRootDirectory": directory,
            "taskRootDirectoryUrl": f"{node_url}/files/{directory}",
            "retryCount": 0,
        }
    else:
        info = entry.setdefault(kind, {"retryCount": 0})
        if outcome.start_time is not None:
            info["startTime"] = iso(outcome.start_time)
        info.update({"endTime": iso(outcome.end_time), "state": "completed", "result": outcome.result})
        if outcome.exit_code is not None:
            info["exitCode"] = outcome.exit_code
        if outcome.failure_info:
            info["failureInfo"] = outcome.failure_info
    model.save_job(job)


def task_slots(job: Body, task: Body, slots_per_node: int) -> int:
    """Slots a task takes on its node: ``requiredSlots``, or the whole node for a job manager task with
    ``runExclusive`` (Batch runs nothing else there meanwhile)."""
    if internal(task).get("jobManager") and job.get("jobManagerTask", {}).get("runExclusive", True):
        return slots_per_node
    return int(task.get("requiredSlots", 1))
