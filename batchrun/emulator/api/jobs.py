"""Job routes: create, get, list, PATCH, PUT, delete, disable, enable, terminate, task counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.base import (
    Api,
    Call,
    check_conditions,
    check_enum,
    check_id,
    check_keys,
    empty,
    endpoint,
    json_response,
    optional,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.common import list_page, lookup, read_one, rows_in_id_order, writable
from batchrun.emulator.api.job_bodies import (
    CREATE_KEYS,
    DEFAULT_CONSTRAINTS,
    PATCH_KEYS,
    PUT_KEYS,
    validate_constraints,
    validate_pool_info,
    validate_settings,
)
from batchrun.emulator.api.job_create import check_job_spec, new_job
from batchrun.emulator.api.served import served_job
from batchrun.emulator.errors import being_deleted, conflict, exists, invalid_value
from batchrun.emulator.model import Body, find_by_id, internal, public, touch

FILTER_FIELDS = ("id", "state", "displayName", "priority", "executionInfo/poolId", "poolInfo/poolId")


def job_url(call: Call, job_id: str) -> str:
    return f"{call.base_url}/jobs/{job_id}"


def render(call: Call, job: Body) -> Body:
    body = served_job(public(job))
    body["url"] = job_url(call, job["id"])
    return body


def get_job(api: Api, job_id: str) -> Body:
    return lookup(api.model.jobs, "Job", job_id)


def writable_job(api: Api, call: Call, job_id: str) -> Body:
    return writable(call, get_job(api, job_id), "Job")


def create_job(api: Api, call: Call) -> Response:
    body = require_object(call.body, "job")
    check_keys(body, CREATE_KEYS)
    job_id = check_id(require(body, "id"))
    spec = check_job_spec(api, body)
    with api.model.lock:
        existing = find_by_id(api.model.jobs, job_id)
        if existing is not None:
            if existing["state"] == "deleting":
                raise being_deleted("Job", existing["id"])
            raise exists("Job", job_id)
        job = new_job(api, spec, job_id)
        return empty(201, resource_headers(job, job_url(call, job_id)))


def list_jobs(api: Api, call: Call) -> Response:
    return list_page(
        api, call, "/jobs", FILTER_FIELDS, rows_in_id_order(api.model.jobs), lambda job: render(call, job)
    )


def get_job_route(api: Api, call: Call) -> Response:
    return read_one(
        api,
        call,
        lambda: get_job(api, call.params["jobId"]),
        lambda job: render(call, job),
        lambda job: job_url(call, job["id"]),
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
        pool_info = validate_pool_info(api, changes["poolInfo"])
        changes["poolInfo"] = pool_info
        if pool_info != job["poolInfo"] and job["state"] != "disabled":
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
    if job["poolInfo"].get("poolId"):
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


def prep_release_status(api: Api, call: Call) -> Response:
    """Per node that ran the job's preparation task: how it (and the release task) ran."""
    job_id = call.params["jobId"]

    def rows(marker: str | None) -> Iterator[tuple[str, Body]]:
        job = get_job(api, job_id)
        if not job.get("jobPreparationTask"):
            raise conflict(
                "JobPreparationTaskNotSpecified",
                "The job does not have a job preparation task.",
                {"JobId": job["id"]},
            )
        return rows_in_id_order(internal(job).get("prepRelease", {}))(marker)

    return list_page(
        api,
        call,
        f"/jobs/{job_id}/jobpreparationandreleasetaskstatus",
        ("nodeId", "poolId"),
        rows,
        dict,
    )


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
        endpoint(api, "GET", "/jobs/{jobId}/jobpreparationandreleasetaskstatus", prep_release_status),
    ]
