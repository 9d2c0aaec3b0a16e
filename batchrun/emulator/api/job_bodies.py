"""Job bodies: the properties a create, PATCH or PUT may carry, and their validation."""

from __future__ import annotations

import re
from typing import Any

from batchrun.emulator.api.base import (
    Api,
    check_enum,
    check_int_range,
    check_keys,
    optional,
    require,
    require_object,
)
from batchrun.emulator.api.common import COMPUTED_KEYS
from batchrun.emulator.api.pool_specs import check_pool_spec, pool_defaults
from batchrun.emulator.api.specs import (
    check_command_spec,
    check_duration,
    check_name_values,
    check_task_constraints,
)
from batchrun.emulator.errors import invalid_value, unsupported_property
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


def validate_constraints(value: Any, prefix: str = "") -> dict[str, Any]:
    constraints = require_object(value, prefix + "constraints")
    check_keys(constraints, ("maxWallClockTime", "maxTaskRetryCount"), prefix + "constraints.")
    check_int_range(constraints, "maxTaskRetryCount", -1, 100, prefix + "constraints.")
    check_duration(constraints, "maxWallClockTime", prefix + "constraints.")
    return {**DEFAULT_CONSTRAINTS, **constraints}


def validate_pool_info(api: Api, value: Any, prefix: str = "") -> dict[str, Any]:
    """``poolInfo``: a ``poolId``, or an ``autoPoolSpecification`` whose pool is checked like a new pool.

    Returns the poolInfo as Batch stores it (an auto pool specification with its defaults filled in).
    """
    name = prefix + "poolInfo"
    pool_info = require_object(value, name)
    check_keys(pool_info, ("poolId", "autoPoolSpecification"), name + ".")
    auto = pool_info.get("autoPoolSpecification")
    if auto is None:
        require(pool_info, "poolId", str, name + ".")
        return pool_info
    if pool_info.get("poolId") is not None:
        raise invalid_value(name, "poolId", "give either poolId or autoPoolSpecification, not both")
    spec_name = name + ".autoPoolSpecification"
    auto = require_object(auto, spec_name)
    check_keys(auto, ("autoPoolIdPrefix", "poolLifetimeOption", "keepAlive", "pool"), spec_name + ".")
    check_enum(auto, "poolLifetimeOption", ("job", "jobschedule"), spec_name + ".")
    require(auto, "poolLifetimeOption", str, spec_name + ".")
    optional(auto, "keepAlive", bool, spec_name + ".")
    id_prefix = optional(auto, "autoPoolIdPrefix", str, spec_name + ".")
    if id_prefix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", id_prefix):
        raise invalid_value(
            spec_name + ".autoPoolIdPrefix", id_prefix, "at most 20 letters, digits, hyphens and underscores"
        )
    pool = require(auto, "pool", dict, spec_name + ".")
    if "id" in pool:
        raise unsupported_property(spec_name + ".pool.id")
    check_pool_spec(api, pool, spec_name + ".pool.")
    filled: dict[str, Any] = {
        "poolLifetimeOption": auto["poolLifetimeOption"],
        "keepAlive": auto.get("keepAlive", False),
        "pool": pool_defaults(pool),
    }
    if id_prefix is not None:
        filled = {"autoPoolIdPrefix": id_prefix, **filled}
    return {"autoPoolSpecification": filled}


def validate_settings(body: dict[str, Any], prefix: str = "") -> None:
    check_int_range(body, "priority", -1000, 1000, prefix)
    maximum = optional(body, "maxParallelTasks", int, prefix)
    if maximum is not None and maximum != -1 and maximum < 1:
        raise invalid_value(prefix + "maxParallelTasks", maximum, "must be -1 (no limit) or at least 1")
    optional(body, "allowTaskPreemption", bool, prefix)
    check_enum(body, "onAllTasksComplete", ("noaction", "terminatejob"), prefix)
    optional(body, "networkConfiguration", dict, prefix)
    if body.get("metadata") is not None:
        check_name_values(body["metadata"], prefix + "metadata")


def validate_prep_and_release(
    body: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The job preparation and release tasks of a create body, checked like any task."""
    prep = body.get("jobPreparationTask")
    if prep is not None:
        prep = require_object(prep, prefix + "jobPreparationTask")
        check_keys(prep, PREP_KEYS, prefix + "jobPreparationTask.")
        check_command_spec(prep, prefix + "jobPreparationTask.")
        optional(prep, "id", str, prefix + "jobPreparationTask.")
        for name in ("waitForSuccess", "rerunOnNodeRebootAfterSuccess"):
            optional(prep, name, bool, prefix + "jobPreparationTask.")
        if prep.get("constraints") is not None:
            check_task_constraints(prep["constraints"], prefix + "jobPreparationTask.constraints")
    release = body.get("jobReleaseTask")
    if release is not None:
        release = require_object(release, prefix + "jobReleaseTask")
        check_keys(release, RELEASE_KEYS, prefix + "jobReleaseTask.")
        check_command_spec(release, prefix + "jobReleaseTask.")
        optional(release, "id", str, prefix + "jobReleaseTask.")
        for name in ("maxWallClockTime", "retentionTime"):
            check_duration(release, name, prefix + "jobReleaseTask.")
        if prep is None:
            raise invalid_value(
                prefix + "jobReleaseTask", "", "a job release task needs a job preparation task"
            )
    return prep, release
