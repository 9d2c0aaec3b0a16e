"""Task routes: create, add collection, list, get, PUT, delete, terminate, reactivate, subtasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import (
    JSON_TYPE,
    Api,
    Call,
    check_conditions,
    check_keys,
    empty,
    endpoint,
    json_response,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.common import COMPUTED_KEYS, list_page, read_one
from batchrun.emulator.api.jobs import get_job
from batchrun.emulator.api.served import served_task
from batchrun.emulator.api.task_bodies import (
    CREATE_KEYS,
    build_task,
    validate_constraints,
)
from batchrun.emulator.errors import BatchApiError, being_deleted, conflict, exists, not_found
from batchrun.emulator.model import Body, JobTasks, internal, public, public_json, touch, transition
from batchrun.emulator.node import remove_task_directories
from batchrun.emulator.scheduler.outcomes import end_unrun_task
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import now_iso

PUT_KEYS = (
    *CREATE_KEYS,
    *COMPUTED_KEYS,
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


def task_url(call: Call, job_id: str, task_id: str) -> str:
    return f"{call.base_url}/jobs/{job_id}/tasks/{task_id}"


def render(call: Call, job_id: str, task: Body) -> Body:
    body = served_task(public(task))
    body["url"] = task_url(call, job_id, task["id"])
    return body


def job_tasks_of(api: Api, job_id: str) -> JobTasks:
    get_job(api, job_id)
    return api.model.tasks[job_id]


def get_task(api: Api, job_id: str, task_id: str, keep: bool = True) -> Body:
    """The task (``keep=False``: for reading only, a stored task is decoded without being kept)."""
    task = job_tasks_of(api, job_id).find(task_id, keep)
    if task is None:
        raise not_found("Task", task_id)
    return task


def check_job_accepts_tasks(job: Body) -> None:
    if job["state"] == "completed":
        raise conflict(
            "JobCompleted", "The specified job is already in a completed state.", {"JobId": job["id"]}
        )
    if job["state"] == "deleting":
        raise being_deleted("Job", job["id"])
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
    if odata.parse_filter(call.option("$filter"), FILTER_FIELDS) is None and not odata.parse_select(
        call.option("$select")
    ):
        return encoded_task_page(api, call, job_id)

    def rows(marker: str | None) -> Iterator[tuple[str, Body]]:
        return job_tasks_of(api, job_id).after(marker)

    return list_page(
        api, call, f"/jobs/{job_id}/tasks", FILTER_FIELDS, rows, lambda task: render(call, job_id, task)
    )


def encoded_task_page(api: Api, call: Call, job_id: str) -> Response:
    """A page of tasks without ``$filter`` or ``$select``, written from the stored JSON texts.

    Each task held as its stored text goes into the page as that text, less its ``_x`` member, plus its
    ``url``: nothing is decoded or copied per task (a task with a container registry, whose password is
    write-only, and a task held as a live dict are rendered as for a single GET). The body is the one
    :func:`list_page` would build for the same page.
    """
    limit = odata.parse_max_results(call.option("maxresults"))
    base = f"{call.base_url}/jobs/{job_id}/tasks/"
    parts: list[str] = []
    next_marker: str | None = None
    with api.model.lock:
        last = None
        for task_id, item in job_tasks_of(api, job_id).after_stored(call.option("$skiptoken")):
            if len(parts) == limit:
                next_marker = last
                break
            if isinstance(item, str) and '"registry"' not in item:
                text = public_json(item)
                parts.append(f'{text[:-1]},"url":{json.dumps(base + task_id)}}}')
            else:
                task = item if isinstance(item, dict) else json.loads(item)
                parts.append(json.dumps(render(call, job_id, task), separators=(",", ":")))
            last = task_id
    metadata = json.dumps(f"{call.base_url}/$metadata#tasks")
    page = f'{{"odata.metadata":{metadata},"value":[{",".join(parts)}]'
    if next_marker is not None:
        link = odata.next_link(call.base_url, f"/jobs/{job_id}/tasks", call.query, next_marker)
        page += f',"odata.nextLink":{json.dumps(link)}'
    return Response(page + "}", media_type=JSON_TYPE)


def get_task_route(api: Api, call: Call) -> Response:
    job_id = call.params["jobId"]
    return read_one(
        api,
        call,
        lambda: get_task(api, job_id, call.params["taskId"], keep=False),
        lambda task: render(call, job_id, task),
        lambda task: task_url(call, job_id, task["id"]),
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
        if not api.scheduler.cancel(job_id, task["id"], "delete"):
            # Nothing runs in the folder; a running task's folder goes once its process has ended.
            remove_task_directories(api.scheduler.config.nodes_dir, job_id, task["id"])
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
