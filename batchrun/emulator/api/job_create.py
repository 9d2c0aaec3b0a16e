"""Creating a job: its body checked, its auto pool created, its job manager task added.

Shared by ``POST /jobs`` and by job schedules (which check a ``jobSpecification`` when the schedule is created
and create a job from it at each recurrence).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from batchrun.emulator.api.base import (
    Api,
    check_enum,
    check_keys,
    optional,
    require,
)
from batchrun.emulator.api.job_bodies import (
    CREATE_KEYS,
    validate_constraints,
    validate_pool_info,
    validate_prep_and_release,
    validate_settings,
)
from batchrun.emulator.api.pool_specs import new_pool
from batchrun.emulator.api.served import preparation_task, release_task
from batchrun.emulator.api.specs import check_name_values
from batchrun.emulator.api.task_bodies import build_task
from batchrun.emulator.errors import invalid_value
from batchrun.emulator.model import Body, JobTasks, internal, touch
from batchrun.emulator.timefmt import now_iso

JOB_MANAGER_ONLY = ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")


def check_job_spec(api: Api, body: dict[str, Any], prefix: str = "", in_schedule: bool = False) -> Body:
    """A job create body (or a schedule's ``jobSpecification``) checked; returns it with Batch's defaults."""
    keys = [key for key in CREATE_KEYS if key != "id"] if in_schedule else list(CREATE_KEYS)
    check_keys(body, keys, prefix)
    pool_info = validate_pool_info(api, require(body, "poolInfo", dict, prefix), prefix)
    lifetime = pool_info.get("autoPoolSpecification", {}).get("poolLifetimeOption")
    if lifetime == "jobschedule" and not in_schedule:
        raise invalid_value(
            prefix + "poolInfo.autoPoolSpecification.poolLifetimeOption",
            lifetime,
            "a job that is not created by a job schedule needs poolLifetimeOption 'job'",
        )
    validate_settings(body, prefix)
    check_enum(body, "onTaskFailure", ("noaction", "performexitoptionsjobaction"), prefix)
    optional(body, "usesTaskDependencies", bool, prefix)
    optional(body, "displayName", str, prefix)
    constraints = validate_constraints(body.get("constraints") or {}, prefix)
    if body.get("commonEnvironmentSettings") is not None:
        check_name_values(body["commonEnvironmentSettings"], prefix + "commonEnvironmentSettings")
    prep, release = validate_prep_and_release(body, prefix)
    spec: Body = copy.deepcopy(body)
    spec.update(
        {
            "priority": body.get("priority", 0),
            "maxParallelTasks": body.get("maxParallelTasks", -1),
            "allowTaskPreemption": body.get("allowTaskPreemption", False),
            "usesTaskDependencies": body.get("usesTaskDependencies", False),
            "onAllTasksComplete": body.get("onAllTasksComplete", "noaction"),
            "onTaskFailure": body.get("onTaskFailure", "noaction"),
            "constraints": constraints,
            "poolInfo": pool_info,
        }
    )
    if prep is not None:
        spec["jobPreparationTask"] = preparation_task(prep)
    if release is not None:
        spec["jobReleaseTask"] = release_task(release)
    if body.get("jobManagerTask") is not None:
        manager = optional(body, "jobManagerTask", dict, prefix)
        job_manager_task(api, {"id": "check", **spec}, manager, prefix)
        spec["jobManagerTask"] = {
            "killJobOnCompletion": True,
            "runExclusive": True,
            "allowLowPriorityNode": True,
            **manager,
        }
    return spec


def job_manager_task(api: Api, job: Body, manager: dict[str, Any], prefix: str = "") -> Body:
    """The task a job manager specification runs as: checked like any task of the job."""
    name = prefix + "jobManagerTask"
    for key in ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode"):
        optional(manager, key, bool, name + ".")
    # A copy of its own: the task takes the parts of what it is built from, and these are the job's.
    plain = copy.deepcopy({key: value for key, value in manager.items() if key not in JOB_MANAGER_ONLY})
    try:
        task = build_task(api, job, plain)
    except Exception as error:
        values = getattr(error, "values", None)
        if isinstance(values, dict) and "PropertyName" in values:
            values["PropertyName"] = f"{name}.{values['PropertyName']}"
        raise
    internal(task)["jobManager"] = True
    return task


def new_job(api: Api, spec: Body, job_id: str, schedule: Body | None = None) -> Body:
    """Store a job built from a checked spec (model lock held): its auto pool, its job manager task."""
    moment = now_iso()
    job: Body = copy.deepcopy(spec)
    job.update({"id": job_id, "creationTime": moment, "state": "active", "stateTransitionTime": moment})
    manager = job.get("jobManagerTask")
    manager_task = job_manager_task(api, job, manager) if manager else None
    auto = job["poolInfo"].get("autoPoolSpecification")
    pool_id = job["poolInfo"].get("poolId") if auto is None else auto_pool_for(api, auto, job_id, schedule)
    job["executionInfo"] = {"startTime": moment, "poolId": pool_id}
    if schedule is not None:
        internal(job)["schedule"] = schedule["id"]
    touch(job)
    api.model.jobs[job_id] = job
    api.model.tasks[job_id] = JobTasks()
    with api.model.store.transaction():
        api.model.save_job(job)
        if manager_task is not None:
            api.model.tasks[job_id].add(manager_task)
            api.model.save_task(job_id, manager_task)
    api.model.notify()
    return job


def auto_pool_for(api: Api, auto: Body, job_id: str, schedule: Body | None) -> str:
    """The id of the auto pool a new job runs on, creating the pool (model lock held).

    Lifetime ``job``: a pool of its own. Lifetime ``jobschedule``: one pool shared by every job of the
    schedule, created with the first. The scheduler deletes the pool when its owner completes (unless
    ``keepAlive``).
    """
    if auto["poolLifetimeOption"] == "jobschedule" and schedule is not None:
        existing = internal(schedule).get("autoPoolId")
        if existing and existing in api.model.pools and api.model.pools[existing]["state"] != "deleting":
            return str(existing)
    guid = str(uuid.uuid4()).upper()
    prefix = auto.get("autoPoolIdPrefix")
    pool_id = f"{prefix}_{guid}" if prefix else guid
    pool = new_pool(api, auto["pool"], pool_id)
    if auto["poolLifetimeOption"] == "jobschedule" and schedule is not None:
        owner = {"kind": "jobschedule", "id": schedule["id"]}
        internal(schedule)["autoPoolId"] = pool_id
    else:
        owner = {"kind": "job", "id": job_id}
    internal(pool)["autoPool"] = {**owner, "keepAlive": bool(auto.get("keepAlive", False))}
    api.model.save_pool(pool)
    return pool_id
