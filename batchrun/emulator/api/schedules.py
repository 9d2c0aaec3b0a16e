"""Job schedule routes: create, get, list, exists, PUT, PATCH, disable, enable, terminate, delete, and the
jobs a schedule created. The clock that creates the jobs is :mod:`batchrun.emulator.scheduler.schedules`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api import jobs
from batchrun.emulator.api.base import (
    Api,
    Call,
    check_conditions,
    check_id,
    check_keys,
    empty,
    endpoint,
    optional,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.common import (
    COMPUTED_KEYS,
    list_page,
    lookup,
    read_one,
    rows_in_id_order,
    writable,
)
from batchrun.emulator.api.job_create import check_job_spec, new_job
from batchrun.emulator.api.served import served_job
from batchrun.emulator.api.specs import check_duration, check_name_values
from batchrun.emulator.errors import being_deleted, conflict, exists, invalid_value
from batchrun.emulator.model import Body, find_by_id, internal, public, touch, transition
from batchrun.emulator.scheduler.schedules import first_run, jobs_of
from batchrun.emulator.timefmt import iso, now, parse_duration, parse_iso

CREATE_KEYS = ("id", "displayName", "schedule", "jobSpecification", "metadata")
SCHEDULE_KEYS = ("doNotRunUntil", "doNotRunAfter", "startWindow", "recurrenceInterval")
PUT_KEYS = (*CREATE_KEYS, *COMPUTED_KEYS, "executionInfo", "stats")
FILTER_FIELDS = ("id", "state", "displayName")
JOB_FILTER_FIELDS = jobs.FILTER_FIELDS


def schedule_url(call: Call, schedule_id: str) -> str:
    return f"{call.base_url}/jobschedules/{schedule_id}"


def render(call: Call, schedule: Body) -> Body:
    body = public(schedule)
    if isinstance(body.get("jobSpecification"), dict):
        body["jobSpecification"] = served_job(dict(body["jobSpecification"]))
    body["url"] = schedule_url(call, schedule["id"])
    return body


def get_schedule(api: Api, schedule_id: str) -> Body:
    return lookup(api.model.schedules, "JobSchedule", schedule_id)


def check_schedule(value: Any) -> dict[str, Any]:
    """``schedule`` as Batch stores it: durations normalised (``PT01H00M00S`` → ``PT1H``)."""
    schedule = require_object(value, "schedule")
    check_keys(schedule, SCHEDULE_KEYS, "schedule.")
    for name in ("doNotRunUntil", "doNotRunAfter"):
        text = optional(schedule, name, str, "schedule.")
        if text is not None:
            try:
                parse_iso(text)
            except ValueError:
                raise invalid_value(f"schedule.{name}", text, "must be an ISO-8601 date and time") from None
    check_duration(schedule, "startWindow", "schedule.", minimum_seconds=60)
    check_duration(schedule, "recurrenceInterval", "schedule.", minimum_seconds=60)
    return dict(schedule)


def _run_now(api: Api, schedule: Body) -> None:
    """Let the clock create a job that is due at once (as Batch does right at creation)."""
    api.scheduler.schedules.advance(schedule)


def create_schedule(api: Api, call: Call) -> Response:
    body = require_object(call.body, "cloudJobSchedule")
    check_keys(body, CREATE_KEYS)
    schedule_id = check_id(require(body, "id"))
    optional(body, "displayName", str)
    timing = check_schedule(require(body, "schedule", dict))
    spec = check_job_spec(api, require(body, "jobSpecification", dict), "jobSpecification.", in_schedule=True)
    if body.get("metadata") is not None:
        check_name_values(body["metadata"], "metadata")
    with api.model.lock:
        existing = find_by_id(api.model.schedules, schedule_id)
        if existing is not None:
            if existing["state"] == "deleting":
                raise being_deleted("JobSchedule", existing["id"])
            raise exists("JobSchedule", schedule_id)
        moment = now()
        schedule: Body = copy.deepcopy(body)
        schedule.update(
            {
                "creationTime": iso(moment),
                "state": "active",
                "stateTransitionTime": iso(moment),
                "schedule": timing,
                "jobSpecification": spec,
                "executionInfo": {"nextRunTime": iso(first_run({"schedule": timing}, moment))},
            }
        )
        touch(schedule)
        api.model.schedules[schedule_id] = schedule
        api.model.save_schedule(schedule)
        _run_now(api, schedule)
        api.model.notify()
        return empty(201, resource_headers(schedule, schedule_url(call, schedule_id)))


def create_scheduled_job(api: Api, schedule: Body) -> Body:
    """The next job of a schedule (model lock held): ``<schedule>:job-<n>``, from its job specification."""
    extra = internal(schedule)
    number = int(extra.get("jobCounter", 0)) + 1
    extra["jobCounter"] = number
    job = new_job(api, schedule["jobSpecification"], f"{schedule['id']}:job-{number}", schedule)
    api.model.save_schedule(schedule)
    return job


def list_schedules(api: Api, call: Call) -> Response:
    return list_page(
        api,
        call,
        "/jobschedules",
        FILTER_FIELDS,
        rows_in_id_order(api.model.schedules),
        lambda schedule: render(call, schedule),
    )


def get_schedule_route(api: Api, call: Call) -> Response:
    return read_one(
        api,
        call,
        lambda: get_schedule(api, call.params["jobScheduleId"]),
        lambda schedule: render(call, schedule),
        lambda schedule: schedule_url(call, schedule["id"]),
    )


def schedule_exists(api: Api, call: Call) -> Response:
    with api.model.lock:
        schedule = get_schedule(api, call.params["jobScheduleId"])
        check_conditions(call, schedule, read=True)
        return empty(200, resource_headers(schedule))


def _change(api: Api, call: Call, replace: bool) -> Response:
    body = require_object(call.body, "jobSchedule")
    check_keys(body, PUT_KEYS if replace else ("schedule", "jobSpecification", "metadata"))
    if replace:
        require(body, "schedule", dict)
        require(body, "jobSpecification", dict)
    timing = check_schedule(body["schedule"]) if body.get("schedule") is not None else None
    spec = (
        check_job_spec(api, body["jobSpecification"], "jobSpecification.", in_schedule=True)
        if body.get("jobSpecification") is not None
        else None
    )
    if body.get("metadata") is not None:
        check_name_values(body["metadata"], "metadata")
    with api.model.lock:
        schedule = writable(call, get_schedule(api, call.params["jobScheduleId"]), "JobSchedule")
        if schedule["state"] in ("completed", "terminating"):
            raise conflict(
                "JobScheduleCompleted",
                f"The job schedule is {schedule['state']} and cannot be changed.",
                {"JobScheduleId": schedule["id"]},
            )
        if timing is not None:
            schedule["schedule"] = timing
            # A new schedule applies from now on: the next job is due by its rules (Batch: "the next job
            # is created according to the new schedule").
            if jobs_of(api.model, schedule["id"]) or "recentJob" in schedule.get("executionInfo", {}):
                due = _next_after_change(schedule)
            else:
                due = iso(first_run(schedule, now()))
            info = schedule.setdefault("executionInfo", {})
            if due is None:
                info.pop("nextRunTime", None)
            else:
                info["nextRunTime"] = due
        if spec is not None:
            schedule["jobSpecification"] = spec
        if "metadata" in body or replace:
            if body.get("metadata") is not None:
                schedule["metadata"] = body["metadata"]
            else:
                schedule.pop("metadata", None)
        touch(schedule)
        api.model.save_schedule(schedule)
        api.model.notify()
        return empty(200, resource_headers(schedule, schedule_url(call, schedule["id"])))


def _next_after_change(schedule: Body) -> str | None:
    interval = schedule["schedule"].get("recurrenceInterval")
    if not interval:
        return None
    step = parse_duration(str(interval))
    return iso(now() + step) if step is not None else None


def replace_schedule(api: Api, call: Call) -> Response:
    return _change(api, call, replace=True)


def update_schedule(api: Api, call: Call) -> Response:
    return _change(api, call, replace=False)


def _transition(api: Api, call: Call, allowed: tuple[str, ...], target: str, status: int) -> Response:
    with api.model.lock:
        schedule = writable(call, get_schedule(api, call.params["jobScheduleId"]), "JobSchedule")
        if schedule["state"] not in allowed:
            raise conflict(
                "JobScheduleNotActive" if target != "active" else "JobScheduleNotDisabled",
                f"The job schedule is {schedule['state']}.",
                {"JobScheduleId": schedule["id"]},
            )
        transition(schedule, target)
        touch(schedule)
        api.model.save_schedule(schedule)
        api.model.notify()
        return empty(status, resource_headers(schedule, schedule_url(call, schedule["id"])))


def disable_schedule(api: Api, call: Call) -> Response:
    return _transition(api, call, ("active", "disabled"), "disabled", 204)


def enable_schedule(api: Api, call: Call) -> Response:
    return _transition(api, call, ("disabled", "active"), "active", 204)


def terminate_schedule(api: Api, call: Call) -> Response:
    return _transition(api, call, ("active", "disabled", "terminating"), "terminating", 202)


def delete_schedule(api: Api, call: Call) -> Response:
    with api.model.lock:
        schedule = get_schedule(api, call.params["jobScheduleId"])
        check_conditions(call, schedule, read=False)
        if schedule["state"] != "deleting":
            transition(schedule, "deleting")
            touch(schedule)
            api.model.save_schedule(schedule)
            api.model.notify()
    return empty(202)


def list_schedule_jobs(api: Api, call: Call) -> Response:
    schedule_id = call.params["jobScheduleId"]

    def rows(marker: str | None) -> Iterator[tuple[str, Body]]:
        schedule = get_schedule(api, schedule_id)
        owned = {job["id"]: job for job in jobs_of(api.model, schedule["id"])}
        return rows_in_id_order(owned)(marker)

    return list_page(
        api,
        call,
        f"/jobschedules/{schedule_id}/jobs",
        JOB_FILTER_FIELDS,
        rows,
        lambda j: jobs.render(call, j),
    )


def routes(api: Api) -> list[Route]:
    api.scheduler.schedules.create_job = lambda schedule: create_scheduled_job(api, schedule)
    return [
        endpoint(api, "POST", "/jobschedules", create_schedule),
        endpoint(api, "GET", "/jobschedules", list_schedules),
        endpoint(api, "HEAD", "/jobschedules/{jobScheduleId}", schedule_exists),
        endpoint(api, "GET", "/jobschedules/{jobScheduleId}", get_schedule_route),
        endpoint(api, "PUT", "/jobschedules/{jobScheduleId}", replace_schedule),
        endpoint(api, "PATCH", "/jobschedules/{jobScheduleId}", update_schedule),
        endpoint(api, "DELETE", "/jobschedules/{jobScheduleId}", delete_schedule),
        endpoint(api, "POST", "/jobschedules/{jobScheduleId}/disable", disable_schedule),
        endpoint(api, "POST", "/jobschedules/{jobScheduleId}/enable", enable_schedule),
        endpoint(api, "POST", "/jobschedules/{jobScheduleId}/terminate", terminate_schedule),
        endpoint(api, "GET", "/jobschedules/{jobScheduleId}/jobs", list_schedule_jobs),
    ]
