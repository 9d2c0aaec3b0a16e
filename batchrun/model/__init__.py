"""Typed, SDK-free description of what a workload wants: the contract between the manifest and the planner."""

from __future__ import annotations

from batchrun.model.desired import (
    JobSpec,
    PackageSpec,
    PoolSpec,
    StorageInput,
    StorageOutputs,
    TaskOutput,
    TaskSpec,
    Workload,
)

__all__ = [
    "JobSpec",
    "PackageSpec",
    "PoolSpec",
    "StorageInput",
    "StorageOutputs",
    "TaskOutput",
    "TaskSpec",
    "Workload",
]
