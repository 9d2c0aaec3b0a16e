"""Task create bodies: validation (constraints, exit conditions, dependencies) and the stored task."""

from __future__ import annotations

from typing import Any

from batchrun.emulator.api.base import (
    Api,
    check_enum,
    check_id,
    check_int_range,
    check_keys,
    optional,
    require,
    require_object,
)
from batchrun.emulator.api.served import with_identity
from batchrun.emulator.api.specs import check_command_spec, check_task_constraints, require_list
from batchrun.emulator.errors import BatchApiError, invalid_value
from batchrun.emulator.model import Body, internal, touch
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
    "authenticationTokenSettings",
)
_CREATE_KEY_SET = frozenset(CREATE_KEYS)
# A PUT carries a BatchTask; only constraints may change.
MAX_DEPENDENCY_CHARS = 64000


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
    """Validate a task create body and return the stored task (not yet added), which takes the body's parts:
    the body must be the caller's own (a request's parse, or a copy)."""
    body = require_object(body, "task")
    check_keys(body, _CREATE_KEY_SET)
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
    token_settings = optional(body, "authenticationTokenSettings", dict)
    if token_settings is not None:
        check_keys(token_settings, ("access",), "authenticationTokenSettings.")
        access = optional(token_settings, "access", list, "authenticationTokenSettings.") or []
        if any(item != "job" for item in access):
            raise invalid_value("authenticationTokenSettings.access", str(access), "the only access is 'job'")
    moment = now_iso()
    # The top level copied, its parts taken (the body is the caller's own): a deep copy cost as much as the
    # rest of the task's shaping.
    task: Body = dict(body)
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
    with_identity(task)
    touch(task)
    internal(task)["seq"] = api.model.next_sequence()
    return task
