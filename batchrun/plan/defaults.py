"""What real Azure Batch returns that a manifest never wrote, as one table: defaults, casing, durations.

A GET of a pool, job or task returns the REST body the service keeps, which differs from the body batchrun
sent in ways that are not drift: defaults filled in, enum values in another case, durations normalised
(``PT06M00S`` comes back as ``PT6M``), computed fields, and write-only fields left out (see
:mod:`batchrun.plan.secrets`). :func:`normalise` maps both sides to one canonical form, so comparing the
desired body with the live one sees only real differences.

Every default below is either read in a recorded live response (``REC``: Azure/azure-sdk-assets,
``python/sdk/batch/azure-batch/tests/recordings/``; tests/contract/ holds the cases) or documented in the
Batch REST reference for api-version 2025-06-01 (``REST``). docs/reconciler.md lists the same table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec

UNLIMITED_DURATION = "P10675199DT2H48M5.4775807S"  # TimeSpan.MaxValue: "no limit" (REC jobs, files)

AUTO_USER = "userIdentity.autoUser"


class Default(msgspec.Struct, frozen=True):
    """``value`` is what Batch holds at ``path`` when the body does not set it; ``source`` says where that
    is shown. Paths are dotted from the resource; ``[]`` stands for every element of a list; a path
    starting with ``**.`` matches at any depth."""

    path: str
    value: Any
    source: str


_TASKLIKE = (
    Default(f"**.{AUTO_USER}.scope", "pool", "REC jobs (jobPreparationTask, jobReleaseTask), files (task)"),
    Default(f"**.{AUTO_USER}.elevationLevel", "nonadmin", "REC jobs, files"),
)

POOL_DEFAULTS: tuple[Default, ...] = (
    Default("resizeTimeout", "PT15M", "REC create_pools, update_pools, scale_pools"),
    Default("targetDedicatedNodes", 0, "REC create_pools"),
    Default("targetLowPriorityNodes", 0, "REC create_pools"),
    Default("enableAutoScale", False, "REC create_pools"),
    Default("autoScaleEvaluationInterval", "PT15M", "REST BatchPoolCreateOptions"),
    Default("enableInterNodeCommunication", False, "REC create_pools"),
    Default("taskSlotsPerNode", 1, "REC create_pools"),
    Default("taskSchedulingPolicy.nodeFillType", "spread", "REC create_pools (returned as 'Spread')"),
    Default("certificateReferences", [], "REC create_pools"),
    Default("targetNodeCommunicationMode", "default", "REST BatchPoolCreateOptions"),
    Default("virtualMachineConfiguration.imageReference.version", "latest", "REC create_pools"),
    Default(
        "virtualMachineConfiguration.nodePlacementConfiguration.policy",
        "regional",
        "REST BatchNodePlacementConfiguration",
    ),
    Default("virtualMachineConfiguration.dataDisks[].caching", "none", "REC create_pools (batch_disk)"),
    Default(
        "virtualMachineConfiguration.dataDisks[].storageAccountType",
        "standard_lrs",
        "REC create_pools (batch_disk)",
    ),
    Default("networkConfiguration.dynamicVNetAssignmentScope", "none", "REC network_configuration"),
    Default("networkConfiguration.enableAcceleratedNetworking", False, "REC network_configuration"),
    Default(
        "networkConfiguration.endpointConfiguration.inboundNATPools[].networkSecurityGroupRules[]"
        ".sourcePortRanges",
        ["*"],
        "REC network_configuration",
    ),
    Default("userAccounts[].elevationLevel", "nonadmin", "REC create_pools (batch_iaas)"),
    Default("userAccounts[].windowsUserConfiguration.loginMode", "batch", "REC create_pools (batch_iaas)"),
    Default("startTask.maxTaskRetryCount", 0, "REST BatchStartTask"),
    Default("startTask.waitForSuccess", True, "REST BatchStartTask"),
    *_TASKLIKE,
)

JOB_DEFAULTS: tuple[Default, ...] = (
    Default("priority", 0, "REC jobs, job_schedules"),
    Default("maxParallelTasks", -1, "REC jobs, job_schedules"),
    Default("usesTaskDependencies", False, "REC jobs, job_schedules"),
    Default("allowTaskPreemption", False, "REC jobs, job_schedules"),
    Default("onAllTasksComplete", "noaction", "REC jobs"),
    Default("onTaskFailure", "noaction", "REC jobs, job_schedules"),
    Default("constraints.maxWallClockTime", UNLIMITED_DURATION, "REC jobs"),
    Default("constraints.maxTaskRetryCount", 0, "REC jobs"),
    Default("jobPreparationTask.id", "jobpreparation", "REC jobs"),
    Default("jobPreparationTask.constraints.maxWallClockTime", UNLIMITED_DURATION, "REC jobs"),
    Default("jobPreparationTask.constraints.retentionTime", "P7D", "REC jobs"),
    Default("jobPreparationTask.constraints.maxTaskRetryCount", 0, "REC jobs"),
    Default("jobPreparationTask.waitForSuccess", True, "REC jobs"),
    Default("jobPreparationTask.rerunOnNodeRebootAfterSuccess", True, "REC jobs"),
    Default("jobReleaseTask.id", "jobrelease", "REC jobs"),
    Default("jobReleaseTask.maxWallClockTime", "PT15M", "REC jobs"),
    Default("jobReleaseTask.retentionTime", "P7D", "REC jobs"),
    Default("jobManagerTask.killJobOnCompletion", True, "REST BatchJobManagerTask"),
    Default("jobManagerTask.runExclusive", True, "REST BatchJobManagerTask"),
    Default("jobManagerTask.requiredSlots", 1, "REST BatchJobManagerTask"),
    Default("poolInfo.autoPoolSpecification.keepAlive", False, "REC jobs"),
    *_TASKLIKE,
)

TASK_DEFAULTS: tuple[Default, ...] = (
    Default("constraints.maxWallClockTime", UNLIMITED_DURATION, "REC files"),
    Default("constraints.retentionTime", "P7D", "REC files"),
    Default("constraints.maxTaskRetryCount", 0, "REC files (the job's value when the job sets one)"),
    Default("requiredSlots", 1, "REC files"),
    *_TASKLIKE,
)

AUTO_POOL_PREFIX = "poolInfo.autoPoolSpecification.pool."

# Enum-like values the service returns in its own case (REC: nodeFillType 'pack' -> 'Pack').
CASE_INSENSITIVE_KEYS = frozenset(
    {
        "vmSize",
        "onAllTasksComplete",
        "onTaskFailure",
        "elevationLevel",
        "scope",
        "nodeFillType",
        "jobAction",
        "dependencyAction",
        "uploadCondition",
        "storageAccountType",
        "caching",
        "placement",
        "policy",
        "nodeDeallocationOption",
        "sku",
        "publisher",
        "offer",
        "nodeAgentSKUId",
        "mode",
        "loginMode",
        "protocol",
        "access",
        "poolLifetimeOption",
        "targetNodeCommunicationMode",
        "dynamicVNetAssignmentScope",
        "ipAddressProvisioningType",
        "containerHostBatchBindMounts",
        "type",
        "licenseType",
    }
)

# ISO-8601 durations, compared by length (REC scale_pools: PT06M00S -> PT6M;
# job_schedules: PT01H00M00S -> PT1H).
DURATION_KEYS = frozenset(
    {
        "maxWallClockTime",
        "retentionTime",
        "resizeTimeout",
        "autoScaleEvaluationInterval",
        "startWindow",
        "recurrenceInterval",
    }
)

# Fields the service computes: never written by a manifest, never drift.
COMPUTED_KEYS = frozenset(
    {
        "odata.metadata",
        "url",
        "eTag",
        "lastModified",
        "creationTime",
        "state",
        "stateTransitionTime",
        "previousState",
        "previousStateTransitionTime",
        "allocationState",
        "allocationStateTransitionTime",
        "currentDedicatedNodes",
        "currentLowPriorityNodes",
        "currentNodeCommunicationMode",
        "resizeErrors",
        "autoScaleRun",
        "stats",
        "executionInfo",
        "nodeInfo",
        "multiInstanceSettings",
        "identity",
    }
)


def _compile(table: Sequence[Default]) -> tuple[tuple[bool, tuple[str, ...], Any], ...]:
    compiled = []
    for item in table:
        anywhere = item.path.startswith("**.")
        path = item.path[3:] if anywhere else item.path
        compiled.append((anywhere, tuple(path.replace("[]", "").split(".")), item.value))
    return tuple(compiled)


_TABLES = {
    "pool": _compile(POOL_DEFAULTS),
    "job": _compile(JOB_DEFAULTS),
    "task": _compile(TASK_DEFAULTS),
}
_NO_DEFAULT = object()


def default_at(kind: str, path: Sequence[str]) -> Any:
    """The documented default at ``path`` (segments without list indices), or ``_NO_DEFAULT``."""
    segments = tuple(path)
    if kind == "job" and ".".join(segments).startswith(AUTO_POOL_PREFIX):
        return default_at("pool", segments[len(AUTO_POOL_PREFIX.split(".")) - 1 :])
    for anywhere, pattern, value in _TABLES[kind]:
        if segments == pattern or (anywhere and segments[-len(pattern) :] == pattern):
            return value
    return _NO_DEFAULT


def has_default(kind: str, path: Sequence[str]) -> bool:
    return default_at(kind, path) is not _NO_DEFAULT


_DURATION = re.compile(
    r"^P(?:(?P<W>\d+(?:\.\d+)?)W)?(?:(?P<D>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<H>\d+(?:\.\d+)?)H)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<S>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_SECONDS = {"W": 7 * 86400, "D": 86400, "H": 3600, "M": 60, "S": 1}


def canonical_duration(value: str) -> str:
    """``PT06M00S`` -> ``PT6M``, exactly (decimal seconds); values that are not durations (or use years or
    months, which have no fixed length) are returned unchanged."""
    if value in ("P", "PT"):  # the SDK writes a zero timedelta as "P"
        return "PT0S"
    match = _DURATION.match(value)
    if match is None or value.endswith("T"):
        return value
    total = sum(
        (Decimal(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items() if amount),
        Decimal(0),
    )
    whole = int(total)
    fraction = total - whole
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or fraction:
        time += f"{format((secs + fraction).normalize(), 'f')}S"
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


def _scalar(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key in DURATION_KEYS:
            return canonical_duration(value)
        if key in CASE_INSENSITIVE_KEYS:
            return value.lower()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_ABSENT = object()


def _normal(kind: str, key: str, value: Any, path: tuple[str, ...], secret: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for child_key, child in value.items():
            if child_key in secret:
                continue
            normal = _normal(kind, child_key, child, (*path, child_key), secret)
            if normal is not _ABSENT:
                result[child_key] = normal
        value = result
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = [_normal(kind, key, item, path, secret) for item in value]
        value = [{} if item is _ABSENT else item for item in items]
    else:
        value = _scalar(key, value)
    default = default_at(kind, path)
    if value is None or value == {} or value == []:
        return _ABSENT
    if default is not _NO_DEFAULT and _scalar(key, default) == value:
        return _ABSENT
    return value


def normalise(
    kind: str, body: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``body`` in canonical form: computed fields, defaults, empty values and ``secret_keys`` dropped,
    durations and case-insensitive enums canonical. ``kind`` is ``pool``, ``job`` or ``task``."""
    result: dict[str, Any] = {}
    for key, value in body.items():
        if key in COMPUTED_KEYS or key in secret_keys:
            continue
        normal = _normal(kind, key, value, (key,), secret_keys)
        if normal is not _ABSENT:
            result[key] = normal
    return result


def normal_value(kind: str, key: str, value: Any, secret_keys: frozenset[str] = frozenset()) -> Any:
    """One top-level property in canonical form (None when it is absent, empty or the default)."""
    normal = _normal(kind, key, value, (key,), secret_keys)
    return None if normal is _ABSENT else normal


_INDEX = re.compile(r"\[\d+\]")


def path_segments(path: str) -> tuple[str, ...]:
    """``a.b[2].c`` -> ``("a", "b", "c")``."""
    return tuple(s for s in _INDEX.sub("", path).split(".") if s)
