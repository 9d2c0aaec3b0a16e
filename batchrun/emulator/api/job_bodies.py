"""Job bodies: the properties a create, PATCH or PUT may carry, and their validation."""

from __future__ import annotations

from typing import Any

from batchrun.emulator.api.base import (
    check_enum,
    check_int_range,
    check_keys,
    optional,
    require,
    require_object,
)
from batchrun.emulator.api.common import COMPUTED_KEYS
from batchrun.emulator.api.specs import (
    check_command_spec,
    check_duration,
    check_name_values,
    check_task_constraints,
)
from batchrun.emulator.errors import BatchApiError, invalid_value
from batchrun.emulator.timefmt import FOREVER

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
    *COMPUTED_KEYS,
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
DEFAULT_CONSTRAINTS = {"maxWallClockTime": FOREVER, "maxTaskRetryCount": 0}


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
