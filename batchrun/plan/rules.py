"""What each pool and job property needs to change (batch-semantics.md section 2).

Every top-level property belongs to one family; anything not listed is treated as create-only (replace), which
is the safe reading for properties a future API version adds. Pool properties of the ``EMPTY_POOL`` family
change in place with PATCH while the pool has no nodes (api-version 2025-06-01, BatchPoolUpdateOptions:
"This field can be updated only when the pool is empty"), else they replace the pool.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Family(str, Enum):
    PATCH = "patch"  # PATCH in place (merge)
    EMPTY_POOL = "empty-pool"  # PATCH in place while the pool has no nodes, else replace
    SCALE = "scale"  # resize / enable or disable autoscale
    POOL_INFO = "poolInfo"  # job: disable -> PATCH poolInfo -> enable
    FINAL = "final"  # job: PATCH after the tasks are added (onAllTasksComplete)
    REPLACE = "replace"  # create-only: delete and create again
    OWNERSHIP = "ownership"  # metadata: compared apart from the rest


POOL_FAMILIES: dict[str, Family] = {
    "startTask": Family.PATCH,
    "applicationPackageReferences": Family.PATCH,
    "displayName": Family.EMPTY_POOL,
    "vmSize": Family.EMPTY_POOL,
    "virtualMachineConfiguration": Family.EMPTY_POOL,
    "enableInterNodeCommunication": Family.EMPTY_POOL,
    "networkConfiguration": Family.EMPTY_POOL,
    "taskSlotsPerNode": Family.EMPTY_POOL,
    "taskSchedulingPolicy": Family.EMPTY_POOL,
    "userAccounts": Family.EMPTY_POOL,
    "mountConfiguration": Family.EMPTY_POOL,
    "upgradePolicy": Family.EMPTY_POOL,
    "metadata": Family.OWNERSHIP,
    "targetDedicatedNodes": Family.SCALE,
    "targetLowPriorityNodes": Family.SCALE,
    "resizeTimeout": Family.SCALE,
    "enableAutoScale": Family.SCALE,
    "autoScaleFormula": Family.SCALE,
    "autoScaleEvaluationInterval": Family.SCALE,
}

JOB_FAMILIES: dict[str, Family] = {
    "priority": Family.PATCH,
    "allowTaskPreemption": Family.PATCH,
    "maxParallelTasks": Family.PATCH,
    "constraints": Family.PATCH,
    "metadata": Family.OWNERSHIP,
    "poolInfo": Family.POOL_INFO,
    "onAllTasksComplete": Family.FINAL,
}


def pool_family(key: str) -> Family:
    return POOL_FAMILIES.get(key, Family.REPLACE)


def job_family(key: str) -> Family:
    return JOB_FAMILIES.get(key, Family.REPLACE)


# What a PATCH sends to take a property back to Batch's default when the manifest drops it. A property not
# listed here cannot be reset by PATCH (``startTask`` is removed by updateproperties; others replace).
POOL_REVERT: dict[str, Any] = {
    "applicationPackageReferences": [],
    "userAccounts": [],
    "mountConfiguration": [],
    "taskSlotsPerNode": 1,
    "enableInterNodeCommunication": False,
    "taskSchedulingPolicy": {"nodeFillType": "spread"},
}

JOB_REVERT: dict[str, Any] = {
    "priority": 0,
    "allowTaskPreemption": False,
    "maxParallelTasks": -1,
    "constraints": {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "maxTaskRetryCount": 0},
}
