"""Validation of what every task-like body shares (tasks, start tasks, job preparation and release tasks).

Each check raises a Batch-shaped 400 naming the property, so the node runtime only ever sees well-formed
specifications and a malformed request can never surface later as an internal error or a crashed node.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from batchrun.emulator.api.base import (
    check_enum,
    check_int_range,
    check_keys,
    optional,
    require,
    require_object,
)
from batchrun.emulator.errors import invalid_value
from batchrun.emulator.timefmt import normal_duration, parse_duration

RESOURCE_FILE_KEYS = (
    "autoStorageContainerName",
    "storageContainerUrl",
    "httpUrl",
    "blobPrefix",
    "filePath",
    "fileMode",
    "identityReference",
)
RESOURCE_FILE_SOURCES = ("httpUrl", "storageContainerUrl", "autoStorageContainerName")
OUTPUT_FILE_KEYS = ("filePattern", "destination", "uploadOptions")
CONTAINER_DESTINATION_KEYS = ("containerUrl", "path", "identityReference", "uploadHeaders")
USER_IDENTITY_KEYS = ("username", "autoUser")
AUTO_USER_KEYS = ("scope", "elevationLevel")
CONTAINER_SETTINGS_KEYS = (
    "containerRunOptions",
    "imageName",
    "registry",
    "workingDirectory",
    "containerHostBatchBindMounts",
)
UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")
# Batch accepts 5 minutes to 168 hours (the SDK models' autoScaleEvaluationInterval docstrings).
AUTOSCALE_INTERVAL_MAX = 168 * 3600.0
TASK_CONSTRAINT_KEYS = ("maxWallClockTime", "retentionTime", "maxTaskRetryCount")


def require_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_value(name, value, f"'{name}' must be a list")
    return value


def check_duration(
    body: MutableMapping[str, Any],
    name: str,
    prefix: str = "",
    minimum_seconds: float = 0,
    maximum_seconds: float | None = None,
) -> None:
    """An ISO-8601 duration (``PT15M``, ``P7D``) within the given bounds, when present; rewritten in ``body``
    the way Batch stores and returns it (``PT06M00S`` -> ``PT6M``, see :func:`normal_duration`)."""
    value = body.get(name)
    if value is None:
        return
    parsed = parse_duration(value) if isinstance(value, str) else None
    if parsed is None:
        raise invalid_value(
            prefix + name, value, f"'{prefix + name}' must be an ISO-8601 duration such as PT15M"
        )
    if parsed.total_seconds() < minimum_seconds:
        raise invalid_value(
            prefix + name, value, f"'{prefix + name}' must be at least {minimum_seconds:.0f} seconds"
        )
    if maximum_seconds is not None and parsed.total_seconds() > maximum_seconds:
        raise invalid_value(
            prefix + name, value, f"'{prefix + name}' must be at most {maximum_seconds:.0f} seconds"
        )
    body[name] = normal_duration(value)


def check_name_values(value: Any, name: str) -> None:
    """``[{"name", "value"}]`` lists: environment settings, metadata, upload headers."""
    for index, item in enumerate(require_list(value, name)):
        where = f"{name}[{index}]."
        item = require_object(item, f"{name}[{index}]")
        check_keys(item, ("name", "value"), where)
        if not require(item, "name", str, where):
            raise invalid_value(where + "name", "", f"'{where}name' must not be empty")
        optional(item, "value", str, where)


def check_resource_files(value: Any, name: str) -> None:
    for index, item in enumerate(require_list(value, name)):
        where = f"{name}[{index}]."
        item = require_object(item, f"{name}[{index}]")
        check_keys(item, RESOURCE_FILE_KEYS, where)
        for key in (*RESOURCE_FILE_SOURCES, "blobPrefix", "filePath", "fileMode"):
            optional(item, key, str, where)
        optional(item, "identityReference", dict, where)
        sources = [key for key in RESOURCE_FILE_SOURCES if item.get(key)]
        if len(sources) != 1:
            raise invalid_value(
                f"{name}[{index}]",
                ", ".join(sources) or "none",
                "a resource file needs exactly one of httpUrl, storageContainerUrl, autoStorageContainerName",
            )
        if sources == ["httpUrl"]:
            if not item.get("filePath"):
                raise invalid_value(where + "filePath", "", "a resource file from httpUrl needs a filePath")
            if item.get("blobPrefix"):
                raise invalid_value(
                    where + "blobPrefix", item["blobPrefix"], "blobPrefix works only with a container source"
                )
        mode = item.get("fileMode")
        if mode is not None and (not mode or any(digit not in "01234567" for digit in mode)):
            raise invalid_value(where + "fileMode", mode, "fileMode is an octal string such as 0644")


def check_output_files(value: Any, name: str) -> None:
    for index, item in enumerate(require_list(value, name)):
        where = f"{name}[{index}]."
        item = require_object(item, f"{name}[{index}]")
        check_keys(item, OUTPUT_FILE_KEYS, where)
        require(item, "filePattern", str, where)
        destination = require(item, "destination", dict, where)
        check_keys(destination, ("container",), where + "destination.")
        container = require(destination, "container", dict, where + "destination.")
        inner = where + "destination.container."
        check_keys(container, CONTAINER_DESTINATION_KEYS, inner)
        require(container, "containerUrl", str, inner)
        optional(container, "path", str, inner)
        optional(container, "identityReference", dict, inner)
        if container.get("uploadHeaders") is not None:
            check_name_values(container["uploadHeaders"], inner + "uploadHeaders")
        options = require(item, "uploadOptions", dict, where)
        check_keys(options, ("uploadCondition",), where + "uploadOptions.")
        require(options, "uploadCondition", str, where + "uploadOptions.")
        check_enum(options, "uploadCondition", UPLOAD_CONDITIONS, where + "uploadOptions.")


def check_user_identity(value: Any, name: str) -> None:
    identity = require_object(value, name)
    check_keys(identity, USER_IDENTITY_KEYS, name + ".")
    optional(identity, "username", str, name + ".")
    auto = optional(identity, "autoUser", dict, name + ".")
    if auto is not None:
        check_keys(auto, AUTO_USER_KEYS, name + ".autoUser.")
        check_enum(auto, "scope", ("task", "pool"), name + ".autoUser.")
        check_enum(auto, "elevationLevel", ("nonadmin", "admin"), name + ".autoUser.")
    if identity.get("username") and auto is not None:
        raise invalid_value(name, "username and autoUser", "a user identity is either username or autoUser")


def check_container_settings(value: Any, name: str) -> None:
    settings = require_object(value, name)
    check_keys(settings, CONTAINER_SETTINGS_KEYS, name + ".")
    require(settings, "imageName", str, name + ".")
    optional(settings, "containerRunOptions", str, name + ".")


def check_package_references(value: Any, name: str) -> None:
    for index, item in enumerate(require_list(value, name)):
        where = f"{name}[{index}]."
        item = require_object(item, f"{name}[{index}]")
        check_keys(item, ("applicationId", "version"), where)
        if not require(item, "applicationId", str, where):
            raise invalid_value(where + "applicationId", "", f"'{where}applicationId' must not be empty")
        optional(item, "version", str, where)


def check_task_constraints(
    value: Any, name: str, keys: tuple[str, ...] = TASK_CONSTRAINT_KEYS
) -> dict[str, Any]:
    constraints = require_object(value, name)
    check_keys(constraints, keys, name + ".")
    check_int_range(constraints, "maxTaskRetryCount", -1, 100, name + ".")
    for key in ("maxWallClockTime", "retentionTime"):
        check_duration(constraints, key, name + ".")
    return constraints


def check_command_spec(body: Mapping[str, Any], prefix: str = "") -> None:
    """The fields tasks, start tasks and job preparation/release tasks share, when present."""
    require(body, "commandLine", str, prefix)
    checks = {
        "resourceFiles": check_resource_files,
        "outputFiles": check_output_files,
        "environmentSettings": check_name_values,
        "userIdentity": check_user_identity,
        "containerSettings": check_container_settings,
        "applicationPackageReferences": check_package_references,
    }
    for key, check in checks.items():
        if body.get(key) is not None:
            check(body[key], prefix + key)
