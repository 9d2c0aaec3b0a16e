"""A workload with ``schedule:``: its job runs as a Batch job schedule, one new job per run. Pure.

The schedule's job specification is the manifest's job (``onAllTasksComplete`` defaults to ``terminatejob``,
so each run's job ends with its tasks); a job manager task adds the manifest's tasks to each run's job (see
:mod:`batchrun.azure.job_manager`). The schedule carries the ownership marks with the manifest's digest:

* missing: created;
* not this workload's: blocked (``--adopt`` takes it over);
* another digest (the manifest changed): updated in place (Batch's PUT replaces the schedule, the job
  specification and the metadata; jobs already made run on as they were);
* the storage SAS URLs the task bodies carry expire within :data:`RENEW_BEFORE`: updated, to renew them;
* ended (``doNotRunAfter`` passed, or terminated) while the manifest changed: replaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from batchrun.model import JobSpec, Workload
from batchrun.plan.actions import Action, Change, FieldChange, Operation, Stage
from batchrun.plan.bodies import Ownership, metadata_list
from batchrun.plan.decide_common import PlanOptions, ownership_block
from batchrun.plan.live import DIGEST_KEY, WORKLOAD_KEY, LiveSchedule

SAS_EXPIRY_KEY = "batchrun.sasExpiry"  # when the task bodies' storage SAS URLs expire (ISO 8601 UTC)
RENEW_BEFORE = timedelta(days=3)
ENDED_STATES = ("completed", "terminating", "deleting")


def schedule_address(schedule_id: str) -> str:
    return f"jobschedule/{schedule_id}"


def job_specification(job: JobSpec, ownership: Ownership) -> dict[str, Any]:
    """The job specification of each run: the manifest's job body, marked as this workload's."""
    spec = {key: value for key, value in job.properties.items() if key != "metadata"}
    spec.setdefault("onAllTasksComplete", "terminatejob")
    spec["metadata"] = metadata_list(job.properties.get("metadata", ()) or (), ownership)
    return spec


def schedule_body(workload: Workload, ownership: Ownership) -> dict[str, Any]:
    assert workload.job is not None and workload.schedule is not None
    return {
        "id": workload.job.id,
        "schedule": dict(workload.schedule),
        "jobSpecification": job_specification(workload.job, ownership),
        "metadata": metadata_list((), ownership),
    }


def _expires_soon(live: LiveSchedule, now: datetime | None) -> str | None:
    stamp = live.metadata.get(SAS_EXPIRY_KEY)
    if now is None or not stamp:
        return None
    try:
        expires = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return stamp if expires - now < RENEW_BEFORE else None


def decide_schedule(
    workload: Workload,
    live: LiveSchedule | None,
    ownership: Ownership,
    options: PlanOptions,
    tasks: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
) -> list[Change]:
    """The schedule's change (two when an ended schedule is replaced). ``tasks``: each task's add
    arguments, as for a job's tasks; ``now``: for the SAS renewal (None: not checked)."""
    body = schedule_body(workload, ownership)
    address = schedule_address(str(body["id"]))
    every = str(body["schedule"].get("recurrenceInterval") or "once")
    what = f"every {every}; {len(tasks)} task(s) added to each run's job"
    put = {"body": body, "tasks": list(tasks)}
    if live is None:
        create = Operation(Stage.JOB, "jobschedule.put", {**put, "create": True})
        return [Change(address, Action.CREATE, reason=what, operations=(create,))]
    blocked = ownership_block(address, live.metadata, workload.name, options.adopt)
    if blocked is not None:
        return [blocked]
    # Another digest, or not yet marked as this workload's (taken over with --adopt): write it again.
    changed = (
        live.metadata.get(DIGEST_KEY) != ownership.digest or live.metadata.get(WORKLOAD_KEY) != workload.name
    )
    if live.state.lower() in ENDED_STATES:
        if not changed:
            return [Change(address, Action.NOOP, reason=f"the schedule has ended ({live.state})")]
        delete = Operation(Stage.JOB_DELETE, "jobschedule.delete", {"id": body["id"]})
        create = Operation(Stage.JOB, "jobschedule.put", {**put, "create": True})
        return [
            Change(
                address,
                Action.REPLACE,
                (FieldChange("state", live.state, "active", True),),
                reason=f"the schedule has ended ({live.state}) and the manifest changed; {what}",
                operations=(delete, create),
            )
        ]
    update = Operation(Stage.JOB, "jobschedule.put", {**put, "create": False})
    if changed:
        return [Change(address, Action.UPDATE, reason=f"the manifest changed; {what}", operations=(update,))]
    expiring = _expires_soon(live, now)
    if expiring is not None:
        reason = f"its tasks' storage URLs expire at {expiring}: renewed"
        return [Change(address, Action.UPDATE, reason=reason, operations=(update,))]
    return [Change(address, Action.NOOP)]
