"""What each pool and job property needs to change (batch-semantics.md section 2).

Every top-level property belongs to one family; anything not listed is treated as create-only (replace), which
is the safe reading for properties a future API version adds.
"""

from __future__ import annotations

from enum import Enum


class Family(str, Enum):
    PATCH = "patch"  # PATCH in place (merge)
    SCALE = "scale"  # resize / enable or disable autoscale
    POOL_INFO = "poolInfo"  # job: disable -> PATCH poolInfo -> enable
    FINAL = "final"  # job: PATCH after the tasks are added (onAllTasksComplete)
    REPLACE = "replace"  # create-only: delete and create again
    OWNERSHIP = "ownership"  # metadata: compared apart from the rest


POOL_FAMILIES: dict[str, Family] = {
    "startTask": Family.PATCH,
    "applicationPackageReferences": Family.PATCH,
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
