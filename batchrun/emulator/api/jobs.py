"""Job routes: create, get, list, PATCH, PUT, delete, disable, enable, terminate, task counts."""

from __future__ import annotations

import copy
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import (
    Api,
    Call,
    check_conditions,
    check_enum,
    check_id,
    check_int_range,
    check_keys,
    empty,
    endpoint,
    json_response,
    optional,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.specs import (
    check_command_spec,
    check_duration,
    check_name_values,
    check_task_constraints,
)
from batchrun.emulator.errors import BatchApiError, conflict, exists, invalid_value, not_found
from batchrun.emulator.model import Body, JobTasks, find_by_id, public, touch
from batchrun.emulator.timefmt import FOREVER, now_iso

CREATE_KEYS = (
    "id",
    "displayName",
    "usesTaskDependencies",
    "priority",
    "allowTaskPreemption",
    "maxParallelTasks",
    "constraints",
    "jobManagerTask",
    "jobPreparationTask",
    "jobReleaseTask",
    "commonEnvironmentSettings",
    "poolInfo",
    "onAllTasksComplete",
    "onTaskFailure",
    "networkConfiguration",
    "metadata",
)
PATCH_KEYS = (
    "priority",
    "allowTaskPreemption",
    "maxParallelTasks",
    "constraints",
    "poolInfo",
    "onAllTasksComplete",
    "metadata",
    "networkConfiguration",
)
# PUT carries a whole BatchJob; the SDK strips read-only fields, the model has more keys than PUT changes.
PUT_KEYS = (
    *PATCH_KEYS,
    "id",
    "displayName",
    "usesTaskDependencies",
    "url",
    "eTag",
    "lastModified",
    "creationTime",
    "state",
    "stateTransitionTime",
    "previousState",
    "previousStateTransitionTime",
    "jobManagerTask",
    "jobPreparationTask",
    "jobReleaseTask",
    "commonEnvironmentSettings",
    "onTaskFailure",
    "executionInfo",
    "stats",
)
PREP_KEYS = (
    "id",
    "commandLine",
    "containerSettings",
    "resourceFiles",
    "environmentSettings",
    "constraints",
    "waitForSuccess",
    "userIdentity",
    "rerunOnNodeRebootAfterSuccess",
)
RELEASE_KEYS = (
    "id",
    "commandLine",
    "containerSettings",
    "resourceFiles",
    "environmentSettings",
    "maxWallClockTime",
    "retentionTime",
    "userIdentity",
)
FILTER_FIELDS = ("id", "state", "displayName", "priority", "executionInfo/poolId", "poolInfo/poolId")
DEFAULT_CONSTRAINTS = {"maxWallClockTime": FOREVER, "maxTaskRetryCount": 0}


def job_url(call: Call, job_id: str) -> str:
    return f"{call.base_url}/jobs/{job_id}"


def render(call: Call, job: Body) -> Body:
    body = public(job)
    body["url"] = job_url(call, job["id"])
    return body


def get_job(api: Api, job_id: str) -> Body:
    job = find_by_id(api.model.jobs, job_id)
    if job is None:
        raise not_found("Job", job_id)
    return job


def writable_job(api: Api, call: Call, job_id: str) -> Body:
    job = get_job(api, job_id)
    check_conditions(call, job, read=False)
    if job["state"] == "deleting":
        raise conflict(
            "JobBeingDeleted",
            "The specified job has been marked for deletion and is being garbage collected.",
            {"JobId": job_id},
        )
    return job


def validate_constraints(value: Any) -> dict[str, Any]:
    constraints = require_object(value, "constraints")
    check_keys(constraints, ("maxWallClockTime", "maxTaskRetryCount"), "constraints.")
    check_int_range(constraints, "maxTaskRetryCount", -1, 100, "constraints.")
    check_duration(constraints, "maxWallClockTime", "constraints.")
    return {**DEFAULT_CONSTRAINTS, **constraints}


def validate_pool_info(value: Any) -> dict[str, Any]:
    pool_info = require_object(value, "poolInfo")
    check_keys(pool_info, ("poolId", "autoPoolSpecification"), "poolInfo.")
    if "autoPoolSpecification" in pool_info:
        raise BatchApiError(
            400,
            "UnsupportedProperty",
            "Auto pools are not supported by the local Batch "
            "emulator; create a pool and reference it with poolInfo.poolId.",
            {"PropertyName": "poolInfo.autoPoolSpecification"},
        )
    require(pool_info, "poolId", str, "poolInfo.")
    return pool_info


def validate_settings(body: dict[str, Any]) -> None:
    check_int_range(body, "priority", -1000, 1000)
    maximum = optional(body, "maxParallelTasks", int)
    if maximum is not None and maximum != -1 and maximum < 1:
        raise invalid_value("maxParallelTasks", maximum, "must be -1 (no limit) or at least 1")
    optional(body, "allowTaskPreemption", bool)
    check_enum(body, "onAllTasksComplete", ("noaction", "terminatejob"))
    optional(body, "networkConfiguration", dict)
    if body.get("metadata") is not None:
        check_name_values(body["metadata"], "metadata")


def validate_prep_and_release(body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The job preparation and release tasks of a create body, checked like any task."""
    prep = body.get("jobPreparationTask")
    if prep is not None:
        prep = require_object(prep, "jobPreparationTask")
        check_keys(prep, PREP_KEYS, "jobPreparationTask.")
        check_command_spec(prep, "jobPreparationTask.")
        optional(prep, "id", str, "jobPreparationTask.")
        for name in ("waitForSuccess", "rerunOnNodeRebootAfterSuccess"):
            optional(prep, name, bool, "jobPreparationTask.")
        if prep.get("constraints") is not None:
            check_task_constraints(prep["constraints"], "jobPreparationTask.constraints")
    release = body.get("jobReleaseTask")
    if release is not None:
        release = require_object(release, "jobReleaseTask")
        check_keys(release, RELEASE_KEYS, "jobReleaseTask.")
        check_command_spec(release, "jobReleaseTask.")
        optional(release, "id", str, "jobReleaseTask.")
        for name in ("maxWallClockTime", "retentionTime"):
            check_duration(release, name, "jobReleaseTask.")
        if prep is None:
            raise invalid_value("jobReleaseTask", "", "a job release task needs a job preparation task")
    return prep, release


def create_job(api: Api, call: Call) -> Response:
    body = require_object(call.body, "job")
    check_keys(body, CREATE_KEYS)
    job_id = check_id(require(body, "id"))
    validate_pool_info(require(body, "poolInfo", dict))
    validate_settings(body)
    check_enum(body, "onTaskFailure", ("noaction", "performexitoptionsjobaction"))
    optional(body, "usesTaskDependencies", bool)
    if body.get("jobManagerTask") is not None:
        raise BatchApiError(
            400,
            "UnsupportedProperty",
            "Job manager tasks are not supported by the local Batch "
            "emulator; add the work as ordinary tasks.",
            {"PropertyName": "jobManagerTask"},
        )
    constraints = validate_constraints(body.get("constraints") or {})
    optional(body, "displayName", str)
    if body.get("commonEnvironmentSettings") is not None:
        check_name_values(body["commonEnvironmentSettings"], "commonEnvironmentSettings")
    prep, release = validate_prep_and_release(body)
    with api.model.lock:
        existing = find_by_id(api.model.jobs, job_id)
        if existing is not None:
            if existing["state"] == "deleting":
                raise conflict(
                    "JobBeingDeleted",
                    "The specified job has been marked for deletion and is being garbage collected.",
                    {"JobId": job_id},
                )
            raise exists("Job", job_id)
        moment = now_iso()
        job: Body = copy.deepcopy(body)
        job.update(
            {
                "usesTaskDependencies": body.get("usesTaskDependencies", False),
                "creationTime": moment,
                "state": "active",
                "stateTransitionTime": moment,
                "priority": body.get("priority", 0),
                "maxParallelTasks": body.get("maxParallelTasks", -1),
                "allowTaskPreemption": body.get("allowTaskPreemption", False),
                "constraints": constraints,
                "onAllTasksComplete": body.get("onAllTasksComplete", "noaction"),
                "onTaskFailure": body.get("onTaskFailure", "noaction"),
                "executionInfo": {"startTime": moment, "poolId": body["poolInfo"]["poolId"]},
            }
        )
        if prep is not None:
            job["jobPreparationTask"] = {
                "id": "jobpreparation",
                "waitForSuccess": True,
                "rerunOnNodeRebootAfterSuccess": True,
                **prep,
            }
        if release is not None:
            job["jobReleaseTask"] = {"id": "jobrelease", **release}
        touch(job)
        api.model.jobs[job_id] = job
        api.model.tasks[job_id] = JobTasks()
        api.model.save_job(job)
        api.model.notify()
        return empty(201, resource_headers(job, job_url(call, job_id)))


def list_jobs(api: Api, call: Call) -> Response:
    predicate = odata.parse_filter(call.option("$filter"), FILTER_FIELDS)
    select = odata.parse_select(call.option("$select"))
    limit = odata.parse_max_results(call.option("maxresults"))
    marker = call.option("$skiptoken")
    with api.model.lock:
        ordered = sorted((key, job) for key, job in api.model.jobs.items() if marker is None or key > marker)
        page = odata.paginate(iter(ordered), predicate, limit)
        result: dict[str, Any] = {
            "value": [odata.apply_select(render(call, job), select) for job in page.items]
        }
    if page.next_marker is not None:
        result["odata.nextLink"] = odata.next_link(call.base_url, "/jobs", call.query, page.next_marker)
    return json_response(result)


def get_job_route(api: Api, call: Call) -> Response:
    select = odata.parse_select(call.option("$select"))
    with api.model.lock:
        job = get_job(api, call.params["jobId"])
        check_conditions(call, job, read=True)
        return json_response(
            odata.apply_select(render(call, job), select),
            headers=resource_headers(job, job_url(call, job["id"])),
        )


def _apply_changes(api: Api, job: Body, changes: dict[str, Any], replace: bool) -> None:
    validate_settings(changes)
    if job["state"] == "completed":
        raise conflict(
            "JobCompleted", "The specified job is already in a completed state.", {"JobId": job["id"]}
        )
    if "constraints" in changes:
        changes["constraints"] = validate_constraints(changes["constraints"] or {})
    if "poolInfo" in changes:
        pool_info = validate_pool_info(changes["poolInfo"])
        if pool_info.get("poolId") != job["poolInfo"].get("poolId") and job["state"] != "disabled":
            raise conflict(
                "JobNotDisabled",
                "The pool of a job can only be changed while the job is disabled; disable the job first.",
                {"JobId": job["id"]},
            )
    if (
        job.get("onAllTasksComplete") == "terminatejob"
        and changes.get("onAllTasksComplete", "noaction" if replace else None) == "noaction"
    ):
        raise invalid_value(
            "onAllTasksComplete", "noaction", "onAllTasksComplete cannot change from terminatejob to noaction"
        )
    if replace:
        defaults: dict[str, Any] = {
            "priority": 0,
            "allowTaskPreemption": False,
            "maxParallelTasks": -1,
            "constraints": dict(DEFAULT_CONSTRAINTS),
            "onAllTasksComplete": "noaction",
        }
        for name, value in defaults.items():
            job[name] = changes.get(name, value)
        job["poolInfo"] = changes["poolInfo"]
        if "metadata" in changes:
            job["metadata"] = changes["metadata"]
        else:
            job.pop("metadata", None)
    else:
        job.update(changes)
    job.setdefault("executionInfo", {})["poolId"] = job["poolInfo"]["poolId"]
    touch(job)
    api.model.save_job(job)
    api.model.notify()


def update_job(api: Api, call: Call) -> Response:
    body = require_object(call.body, "job")
    check_keys(body, PATCH_KEYS)
    with api.model.lock:
        job = writable_job(api, call, call.params["jobId"])
        _apply_changes(api, job, dict(body), replace=False)
        return empty(200, resource_headers(job, job_url(call, job["id"])))


def replace_job(api: Api, call: Call) -> Response:
    body = require_object(call.body, "job")
    check_keys(body, PUT_KEYS)
    require(body, "poolInfo", dict)
    changes = {name: body[name] for name in PATCH_KEYS if name in body}
    with api.model.lock:
        job = writable_job(api, call, call.params["jobId"])
        _apply_changes(api, job, changes, replace=True)
        return empty(200, resource_headers(job, job_url(call, job["id"])))


def delete_job(api: Api, call: Call) -> Response:
    with api.model.lock:
        job = get_job(api, call.params["jobId"])
        check_conditions(call, job, read=False)
        api.scheduler.jobs.delete(job)
    return empty(202)


def disable_job(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("disableTasks",))
    option = check_enum(body, "disableTasks", ("requeue", "terminate", "wait"))
    if option is None:
        require(body, "disableTasks")
    with api.model.lock:
        job = writable_job(api, call, call.params["jobId"])
        if job["state"] not in ("active", "disabling", "disabled"):
            raise conflict(
                "JobNotActive",
                f"The job is {job['state']}; only an active job can be disabled.",
                {"JobId": job["id"]},
            )
        api.scheduler.jobs.disable(job, str(option))
        touch(job)
        api.model.save_job(job)
        return empty(202, resource_headers(job, job_url(call, job["id"])))


def enable_job(api: Api, call: Call) -> Response:
    with api.model.lock:
        job = writable_job(api, call, call.params["jobId"])
        if job["state"] not in ("disabled", "disabling", "enabling", "active"):
            raise conflict(
                "JobNotDisabled",
                f"The job is {job['state']}; only a disabled job can be enabled.",
                {"JobId": job["id"]},
            )
        api.scheduler.jobs.enable(job)
        touch(job)
        api.model.save_job(job)
        return empty(202, resource_headers(job, job_url(call, job["id"])))


def terminate_job(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("terminateReason",))
    reason = optional(body, "terminateReason", str) or "UserTerminate"
    with api.model.lock:
        job = writable_job(api, call, call.params["jobId"])
        if job["state"] == "completed":
            raise conflict(
                "JobCompleted", "The specified job is already in a completed state.", {"JobId": job["id"]}
            )
        api.scheduler.jobs.terminate(job, reason)
        touch(job)
        api.model.save_job(job)
        return empty(202, resource_headers(job, job_url(call, job["id"])))


def task_counts(api: Api, call: Call) -> Response:
    with api.model.lock:
        job = get_job(api, call.params["jobId"])
        tasks = api.model.tasks[job["id"]]
        counts, slots = tasks.counts, tasks.slot_counts
        body = {
            # Batch reports preparing tasks as running.
            "taskCounts": {
                "active": counts["active"],
                "running": counts["running"] + counts["preparing"],
                "completed": counts["completed"],
                "succeeded": tasks.succeeded[0],
                "failed": tasks.failed[0],
            },
            "taskSlotCounts": {
                "active": slots["active"],
                "running": slots["running"] + slots["preparing"],
                "completed": slots["completed"],
                "succeeded": tasks.succeeded[1],
                "failed": tasks.failed[1],
            },
        }
        return json_response(body, headers=resource_headers(job))


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "POST", "/jobs", create_job),
        endpoint(api, "GET", "/jobs", list_jobs),
        endpoint(api, "GET", "/jobs/{jobId}", get_job_route),
        endpoint(api, "PATCH", "/jobs/{jobId}", update_job),
        endpoint(api, "PUT", "/jobs/{jobId}", replace_job),
        endpoint(api, "DELETE", "/jobs/{jobId}", delete_job),
        endpoint(api, "POST", "/jobs/{jobId}/disable", disable_job),
        endpoint(api, "POST", "/jobs/{jobId}/enable", enable_job),
        endpoint(api, "POST", "/jobs/{jobId}/terminate", terminate_job),
        endpoint(api, "GET", "/jobs/{jobId}/taskcounts", task_counts),
    ]
