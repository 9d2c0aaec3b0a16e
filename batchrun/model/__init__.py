"""Typed, SDK-free description of what a workload wants: the contract between the manifest and the planner."""

from __future__ import annotations

from batchrun.model.desired import (
    NO_INPUT_PATHS,
    JobSpec,
    MadeTasks,
    PackageSpec,
    PoolSpec,
    StorageInput,
    StorageOutputs,
    TaskFactory,
    TaskOutput,
    TaskSpec,
    Workload,
    task_id_at,
    task_ids,
    tasks_with_dependencies,
)

__all__ = [
    "NO_INPUT_PATHS",
    "JobSpec",
    "MadeTasks",
    "PackageSpec",
    "PoolSpec",
    "StorageInput",
    "StorageOutputs",
    "TaskFactory",
    "TaskOutput",
    "TaskSpec",
    "Workload",
    "task_id_at",
    "task_ids",
    "tasks_with_dependencies",
]
