"""Task routes: create, add collection, list, get, PUT, delete, terminate, reactivate, subtasks."""

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
from batchrun.emulator.api.jobs import get_job
from batchrun.emulator.api.specs import check_command_spec, check_task_constraints, require_list
from batchrun.emulator.errors import BatchApiError, conflict, exists, invalid_value, not_found
from batchrun.emulator.model import Body, JobTasks, internal, public, touch, transition
from batchrun.emulator.scheduler.outcomes import end_unrun_task
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import FOREVER, now_iso

CREATE_KEYS = (
    "id",
    "displayName",
    "exitConditions",
    "commandLine",
    "containerSettings",
    "resourceFiles",
    "outputFiles",
    "environmentSettings",
    "affinityInfo",
    "constraints",
    "requiredSlots",
    "userIdentity",
    "multiInstanceSettings",
    "dependsOn",
    "applicationPackageReferences",
)
# A PUT carries a BatchTask; only constraints may change.
PUT_KEYS = (
    *CREATE_KEYS,
    "url",
    "eTag",
    "lastModified",
    "creationTime",
    "state",
    "stateTransitionTime",
    "previousState",
    "previousStateTransitionTime",
    "executionInfo",
    "nodeInfo",
    "stats",
)
FILTER_FIELDS = (
    "id",
    "state",
    "displayName",
    "executionInfo/result",
    "executionInfo/exitCode",
    "nodeInfo/nodeId",
    "nodeInfo/poolId",
)
MAX_COLLECTION = 100
MAX_DEPENDENCY_CHARS = 64000


def task_url(call: Call, job_id: str, task_id: str) -> str:
    return f"{call.base_url}/jobs/{job_id}/tasks/{task_id}"


def render(call: Call, job_id: str, task: Body) -> Body:
    body = public(task)
    body["url"] = task_url(call, job_id, task["id"])
    return body


def job_tasks_of(api: Api, job_id: str) -> JobTasks:
    get_job(api, job_id)
    return api.model.tasks[job_id]


def get_task(api: Api, job_id: str, task_id: str) -> Body:
    task = job_tasks_of(api, job_id).find(task_id)
    if task is None:
        raise not_found("Task", task_id)
    return task


def validate_constraints(value: Any, job: Body) -> dict[str, Any]:
    constraints = check_task_constraints(value, "constraints")
    return {
        "maxWallClockTime": constraints.get("maxWallClockTime") or FOREVER,
        "retentionTime": constraints.get("retentionTime") or "P7D",
        "maxTaskRetryCount": constraints.get(
            "maxTaskRetryCount", job.get("constraints", {}).get("maxTaskRetryCount", 0)
        ),
    }


def _check_exit_options(options: Any, name: str, job: Body) -> None:
    options = require_object(options, name)
    check_keys(options, ("jobAction", "dependencyAction"), name + ".")
    check_enum(options, "jobAction", ("none", "disable", "terminate"), name + ".")
    check_enum(options, "dependencyAction", ("satisfy", "block"), name + ".")
    if (
        options.get("jobAction") not in (None, "none")
        and job.get("onTaskFailure") != "performexitoptionsjobaction"
    ):
        raise invalid_value(
            f"{name}.jobAction",
            options["jobAction"],
            "jobAction needs the job's onTaskFailure to be performexitoptionsjobaction",
        )


def validate_exit_conditions(value: Any, job: Body) -> None:
    conditions = require_object(value, "exitConditions")
    check_keys(
        conditions,
        ("exitCodes", "exitCodeRanges", "preProcessingError", "fileUploadError", "default"),
        "exitConditions.",
    )
    for index, mapping in enumerate(
        require_list(conditions.get("exitCodes", []), "exitConditions.exitCodes")
    ):
        mapping = require_object(mapping, f"exitConditions.exitCodes[{index}]")
        check_keys(mapping, ("code", "exitOptions"), f"exitConditions.exitCodes[{index}].")
        require(mapping, "code", int, f"exitConditions.exitCodes[{index}].")
        _check_exit_options(
            require(mapping, "exitOptions", dict, f"exitConditions.exitCodes[{index}]."),
            f"exitConditions.exitCodes[{index}].exitOptions",
            job,
        )
    ranges = require_list(conditions.get("exitCodeRanges", []), "exitConditions.exitCodeRanges")
    for index, mapping in enumerate(ranges):
        mapping = require_object(mapping, f"exitConditions.exitCodeRanges[{index}]")
        check_keys(mapping, ("start", "end", "exitOptions"), f"exitConditions.exitCodeRanges[{index}].")
        require(mapping, "start", int, f"exitConditions.exitCodeRanges[{index}].")
        require(mapping, "end", int, f"exitConditions.exitCodeRanges[{index}].")
        _check_exit_options(
            require(mapping, "exitOptions", dict, f"exitConditions.exitCodeRanges[{index}]."),
            f"exitConditions.exitCodeRanges[{index}].exitOptions",
            job,
        )
    for name in ("preProcessingError", "fileUploadError", "default"):
        if conditions.get(name) is not None:
            _check_exit_options(conditions[name], f"exitConditions.{name}", job)


def validate_dependencies(value: Any, job: Body) -> None:
    if not job.get("usesTaskDependencies"):
        raise BatchApiError(
            400,
            "TaskDependenciesNotSpecifiedOnJob",
            "The task declares dependencies but its job "
            "was not created with usesTaskDependencies set to true.",
            {"JobId": job["id"]},
        )
    depends = require_object(value, "dependsOn")
    check_keys(depends, ("taskIds", "taskIdRanges"), "dependsOn.")
    ids = depends.get("taskIds") or []
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise invalid_value("dependsOn.taskIds", ids, "must be a list of task ids")
    if sum(len(item) for item in ids) > MAX_DEPENDENCY_CHARS:
        raise BatchApiError(
            400,
            "TaskDependencyListTooLong",
            "The task depends on too many task ids; use taskIdRanges instead.",
            {"MaxLength": str(MAX_DEPENDENCY_CHARS)},
        )
    for index, id_range in enumerate(require_list(depends.get("taskIdRanges", []), "dependsOn.taskIdRanges")):
        id_range = require_object(id_range, f"dependsOn.taskIdRanges[{index}]")
        check_keys(id_range, ("start", "end"), f"dependsOn.taskIdRanges[{index}].")
        start = require(id_range, "start", int, f"dependsOn.taskIdRanges[{index}].")
        end = require(id_range, "end", int, f"dependsOn.taskIdRanges[{index}].")
        if end < start:
            raise invalid_value(f"dependsOn.taskIdRanges[{index}]", f"{start}-{end}", "end must be >= start")


def build_task(api: Api, job: Body, body: Any) -> Body:
    """Validate a task create body and return the stored task (not yet added)."""
    body = require_object(body, "task")
    check_keys(body, CREATE_KEYS)
    check_id(require(body, "id"))
    require(body, "commandLine")
    if body.get("multiInstanceSettings") is not None:
        raise BatchApiError(
            400,
            "UnsupportedProperty",
            "Multi-instance tasks are not supported by the local Batch "
            "emulator (it simulates independent nodes on one machine).",
            {"PropertyName": "multiInstanceSettings"},
        )
    slots = check_int_range(body, "requiredSlots", 1, 256) or 1
    constraints = validate_constraints(body.get("constraints") or {}, job)
    if body.get("exitConditions") is not None:
        validate_exit_conditions(body["exitConditions"], job)
    if body.get("dependsOn") is not None:
        validate_dependencies(body["dependsOn"], job)
    check_command_spec(body)
    optional(body, "displayName", str)
    affinity = optional(body, "affinityInfo", dict)
    if affinity is not None:
        check_keys(affinity, ("affinityId",), "affinityInfo.")
        require(affinity, "affinityId", str, "affinityInfo.")
    moment = now_iso()
    task: Body = copy.deepcopy(body)
    task.update(
        {
            "creationTime": moment,
            "state": "active",
            "stateTransitionTime": moment,
            "constraints": constraints,
            "requiredSlots": slots,
            "executionInfo": {"retryCount": 0, "requeueCount": 0},
        }
    )
    touch(task)
    internal(task)["seq"] = api.model.next_sequence()
    return task


def check_job_accepts_tasks(job: Body) -> None:
    if job["state"] == "completed":
        raise conflict(
            "JobCompleted", "The specified job is already in a completed state.", {"JobId": job["id"]}
        )
    if job["state"] == "deleting":
        raise conflict(
            "JobBeingDeleted",
            "The specified job has been marked for deletion and is being garbage collected.",
            {"JobId": job["id"]},
        )
    if job["state"] == "terminating":
        raise conflict(
            "JobNotActive", "The specified job is terminating and accepts no new tasks.", {"JobId": job["id"]}
        )


def create_task(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    with api.model.lock:
        job = get_job(api, job_id)
        check_job_accepts_tasks(job)
        task = build_task(api, job, call.body)
        job_tasks = api.model.tasks[job_id]
        if job_tasks.find(task["id"]) is not None:
            raise exists("Task", task["id"])
        job_tasks.add(task)
        api.model.save_task(job_id, task)
        api.model.notify()
        return empty(201, resource_headers(task, task_url(call, job_id, task["id"])))


def add_task_collection(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    body = require_object(call.body, "taskCollection")
    check_keys(body, ("value",))
    tasks = require(body, "value", list)
    if len(tasks) > MAX_COLLECTION:
        raise BatchApiError(
            413,
            "RequestBodyTooLarge",
            f"The request holds {len(tasks)} tasks; at most {MAX_COLLECTION} can be added per request.",
            {"MaxLimit": str(MAX_COLLECTION)},
        )
    results: list[dict[str, Any]] = []
    with api.model.lock, api.model.store.transaction():
        job = get_job(api, job_id)
        check_job_accepts_tasks(job)
        job_tasks = api.model.tasks[job_id]
        for raw in tasks:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            try:
                task = build_task(api, job, raw)
                if job_tasks.find(task["id"]) is not None:
                    raise exists("Task", task["id"])
            except BatchApiError as error:
                error_body = error.body()
                error_body.pop("values", None)
                if error.values:
                    error_body["values"] = [
                        {"key": key, "value": value} for key, value in error.values.items()
                    ]
                results.append({"taskId": raw_id, "status": "clienterror", "error": error_body})
                continue
            job_tasks.add(task)
            api.model.save_task(job_id, task)
            results.append(
                {
                    "taskId": task["id"],
                    "status": "success",
                    "eTag": task["eTag"],
                    "lastModified": task["lastModified"],
                    "location": task_url(call, job_id, task["id"]),
                }
            )
        api.model.notify()
    return json_response({"value": results})


def list_tasks(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    predicate = odata.parse_filter(call.option("$filter"), FILTER_FIELDS)
    select = odata.parse_select(call.option("$select"))
    limit = odata.parse_max_results(call.option("maxresults"))
    with api.model.lock:
        job_tasks = job_tasks_of(api, job_id)
        page = odata.paginate(job_tasks.after(call.option("$skiptoken")), predicate, limit)
        rendered = [odata.apply_select(render(call, job_id, task), select) for task in page.items]
    result: dict[str, Any] = {"value": rendered}
    if page.next_marker is not None:
        result["odata.nextLink"] = odata.next_link(
            call.base_url, f"/jobs/{job_id}/tasks", call.query, page.next_marker
        )
    return json_response(result)


def get_task_route(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    select = odata.parse_select(call.option("$select"))
    with api.model.lock:
        task = get_task(api, job_id, call.params["taskId"])
        check_conditions(call, task, read=True)
        url = task_url(call, job_id, task["id"])
        return json_response(
            odata.apply_select(render(call, job_id, task), select), headers=resource_headers(task, url)
        )


def replace_task(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    body = require_object(call.body, "task")
    check_keys(body, PUT_KEYS)
    with api.model.lock:
        job = get_job(api, job_id)
        task = get_task(api, job_id, call.params["taskId"])
        check_conditions(call, task, read=False)
        task["constraints"] = validate_constraints(body.get("constraints") or {}, job)
        touch(task)
        api.model.save_task(job_id, task)
        return empty(200, resource_headers(task, task_url(call, job_id, task["id"])))


def delete_task(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    with api.model.lock:
        task = get_task(api, job_id, call.params["taskId"])
        check_conditions(call, task, read=False)
        api.scheduler.cancel(job_id, task["id"], "delete")
        api.model.tasks[job_id].remove(task["id"])
        api.model.store.delete(Table.TASKS, job_id, task["id"])
        api.model.notify()
    return empty(200)


def terminate_task(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    with api.model.lock:
        task = get_task(api, job_id, call.params["taskId"])
        check_conditions(call, task, read=False)
        if task["state"] == "completed":
            raise conflict(
                "TaskCompleted", "The specified task is already completed.", {"TaskId": task["id"]}
            )
        if not api.scheduler.cancel(job_id, task["id"], "terminate"):
            end_unrun_task(api.model.tasks[job_id], task, now_iso())
        touch(task)
        api.model.save_task(job_id, task)
        api.model.notify()
        return empty(204, resource_headers(task, task_url(call, job_id, task["id"])))


def reactivate_task(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    with api.model.lock:
        job = get_job(api, job_id)
        task = get_task(api, job_id, call.params["taskId"])
        check_conditions(call, task, read=False)
        if job["state"] in ("completed", "terminating", "deleting"):
            raise conflict(
                "JobNotActive",
                f"The job is {job['state']}; tasks of such a job cannot be reactivated.",
                {"JobId": job_id},
            )
        info = task.get("executionInfo", {})
        if task["state"] != "completed" or info.get("result") != "failure":
            raise conflict(
                "TaskNotFailed",
                "Only a completed task that failed can be reactivated.",
                {"TaskId": task["id"]},
            )
        job_tasks = api.model.tasks[job_id]
        job_tasks.begin_change(task)
        info["retryCount"] = 0
        for name in ("startTime", "endTime", "exitCode", "failureInfo", "result", "lastRetryTime"):
            info.pop(name, None)
        task.pop("nodeInfo", None)
        internal(task).pop("dependencyAction", None)
        transition(task, "active")
        job_tasks.end_change(task)
        touch(task)
        api.model.save_task(job_id, task)
        api.model.notify()
        return empty(204, resource_headers(task, task_url(call, job_id, task["id"])))


def list_subtasks(api: Api, call: Call) -> Response:
    with api.model.lock:
        get_task(api, call.params["jobId"], call.params["taskId"])
    return json_response({"value": []})


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "POST", "/jobs/{jobId}/tasks", create_task),
        endpoint(api, "GET", "/jobs/{jobId}/tasks", list_tasks),
        endpoint(api, "POST", "/jobs/{jobId}/addtaskcollection", add_task_collection),
        endpoint(api, "GET", "/jobs/{jobId}/tasks/{taskId}", get_task_route),
        endpoint(api, "PUT", "/jobs/{jobId}/tasks/{taskId}", replace_task),
        endpoint(api, "DELETE", "/jobs/{jobId}/tasks/{taskId}", delete_task),
        endpoint(api, "POST", "/jobs/{jobId}/tasks/{taskId}/terminate", terminate_task),
        endpoint(api, "POST", "/jobs/{jobId}/tasks/{taskId}/reactivate", reactivate_task),
        endpoint(api, "GET", "/jobs/{jobId}/tasks/{taskId}/subtasksinfo", list_subtasks),
    ]
