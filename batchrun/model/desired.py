"""Desired state: a fully expanded, validated workload.

Produced by ``batchrun.manifest`` (load -> validate -> expand) and consumed by ``batchrun.plan``. Nothing here
refers to an SDK type. Batch resource bodies are kept as JSON-like mappings in Batch REST camelCase
(api-version 2025-06-01) so anything Batch accepts can be expressed; batchrun's own conveniences (storage
inputs, outputs, package short names, dependency globs, factories) are already resolved into plain fields:

* ``PoolSpec.properties``: the pool body without ``id``; the manifest's ``packages: [name]`` short form is
  merged into ``applicationPackageReferences`` as ``{"applicationId": id, "version": version}``.
* ``JobSpec.properties``: the job body without ``id`` and ``tasks``; ``poolInfo`` defaults to the
  manifest's pool. A manifest with ``jobs:`` (several jobs on its pool) gives ``job`` (the first) and
  ``more_jobs``; code that handles jobs reads ``Workload.jobs``.
* ``TaskSpec.properties``: the task body without ``id``; ``dependsOn`` is resolved to Batch's
  ``{"taskIds": [...], "taskIdRanges": [...]}``. Storage ``inputs`` and ``outputs`` stay separate because
  their URLs carry SAS tokens that are generated at apply time and must never count as a change.

Properties mappings may be shared between tasks of one factory: treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec import field

from batchrun.model.by_position import ByPosition

UploadCondition = Literal["tasksuccess", "taskfailure", "taskcompletion"]


class _NoInputPaths(Mapping[str, tuple[str, ...]]):
    """What most tasks have: one read-only empty mapping shared by all, not an empty dict each. It copies
    and pickles as itself."""

    def __getitem__(self, key: str) -> tuple[str, ...]:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __reduce__(self) -> str:
        return "NO_INPUT_PATHS"

    def __repr__(self) -> str:
        return "{}"


NO_INPUT_PATHS: Mapping[str, tuple[str, ...]] = _NoInputPaths()


class StorageInput(msgspec.Struct, frozen=True):
    """Local files uploaded to ``container`` under ``prefix``; tasks reference them by ``name``."""

    name: str
    source: Path  # absolute path of a file or a directory
    container: str
    prefix: str = ""  # blob name prefix: "" or ending in "/"


class StorageOutputs(msgspec.Struct, frozen=True):
    """Where task outputs go."""

    container: str


class PackageSpec(msgspec.Struct, frozen=True):
    """A Batch application package version built from a local directory or zip file."""

    id: str
    version: str
    source: Path  # absolute path of a directory (zipped reproducibly) or a .zip file
    set_default: bool = False
    allow_updates: bool = False


class PoolSpec(msgspec.Struct, frozen=True):
    id: str
    properties: Mapping[str, Any]


class TaskOutput(msgspec.Struct, frozen=True):
    """Files matching ``pattern`` (relative to the working directory), uploaded to the outputs container."""

    pattern: str
    path: str  # blob name for a literal pattern, blob name prefix for a wildcard pattern
    upload_condition: UploadCondition = "taskcompletion"


class TaskSpec(msgspec.Struct, frozen=True):
    id: str
    properties: Mapping[str, Any]
    inputs: tuple[str, ...] = ()  # names of StorageInput downloaded into the working directory
    outputs: tuple[TaskOutput, ...] = ()
    # For an input listed with ``paths``: only those files (relative to the input's source) are downloaded,
    # and only their content is part of the task's identity. Inputs not named here are downloaded whole.
    input_paths: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: NO_INPUT_PATHS)
    # Blob prefixes of the outputs container downloaded before the command runs (what earlier tasks
    # uploaded): ``inputs: [{outputs: greet/}]``.
    output_inputs: tuple[str, ...] = ()


class MadeTasks(ByPosition[TaskSpec]):
    """A job's tasks made when read, not held: a :class:`TaskFactory`, or a manifest's tasks."""

    def with_dependencies(self) -> Iterator[TaskSpec]:
        """The tasks that wait for others (``dependsOn``), in order. This reads every task; a subclass that
        knows which ones wait makes only those."""
        return filter(_waits, self)

    def id_at(self, position: int) -> str:
        """The id of the task at ``position`` (0 <= position < len); a subclass may tell it without making
        the task."""
        return self._at(position).id

    def ids(self) -> Iterator[str]:
        """Every task's id, in order."""
        return map(self.id_at, range(len(self)))


def task_ids(tasks: Sequence[TaskSpec]) -> Iterator[str]:
    """The ids of ``tasks`` in order, without making the tasks where their source can tell them."""
    return tasks.ids() if isinstance(tasks, MadeTasks) else (task.id for task in tasks)


def task_id_at(tasks: Sequence[TaskSpec], position: int) -> str:
    """The id of ``tasks[position]``, without making the task where its source can tell it."""
    return tasks.id_at(position) if isinstance(tasks, MadeTasks) else tasks[position].id


def tasks_with_dependencies(tasks: Sequence[TaskSpec]) -> list[TaskSpec]:
    """The tasks of ``tasks`` that wait for others, in order."""
    return list(tasks.with_dependencies() if isinstance(tasks, MadeTasks) else filter(_waits, tasks))


def _waits(task: TaskSpec) -> bool:
    return bool(task.properties.get("dependsOn"))


class TaskFactory(MadeTasks):
    """A job's tasks made one at a time when read, from their number and a function of their position: a
    job of 100,000 tasks built in Python holds none of them (a plan reads each task a few times, and keeps
    only what it must do). ``make`` must give the same task for the same position every time, and the ids
    must be unique ignoring case, as in a manifest."""

    def __init__(self, count: int, make: Callable[[int], TaskSpec]) -> None:
        self._count = count
        self._make = make

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[TaskSpec]:
        return map(self._make, range(self._count))

    def _at(self, position: int) -> TaskSpec:
        return self._make(position)

    def __repr__(self) -> str:
        return f"TaskFactory({self._count} tasks)"


class JobSpec(msgspec.Struct, frozen=True):
    id: str
    properties: Mapping[str, Any]
    tasks: Sequence[TaskSpec] = ()  # a tuple, or a TaskFactory that makes each task when read


class Workload(msgspec.Struct, frozen=True):
    """One expanded manifest."""

    name: str
    manifest_path: Path
    digest: str  # sha256 hex of the canonical JSON of the expanded desired state
    labels: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[StorageInput, ...] = ()
    outputs: StorageOutputs | None = None
    packages: tuple[PackageSpec, ...] = ()
    pool: PoolSpec | None = None
    job: JobSpec | None = None  # the manifest's ``job``, or the first of its ``jobs``
    more_jobs: tuple[JobSpec, ...] = ()  # the rest of its ``jobs``, in the manifest's order
    # ``schedule:`` (Batch's schedule fields): the job runs as a Batch job schedule, one new job per run.
    schedule: Mapping[str, Any] | None = None

    @property
    def jobs(self) -> tuple[JobSpec, ...]:
        """Every job of the workload (task ids are unique across them: a task id names one task)."""
        return () if self.job is None else (self.job, *self.more_jobs)

    def job_of_task(self, task_id: str) -> JobSpec | None:
        """The job holding the task ``task_id`` (case-insensitive), or None."""
        wanted = task_id.lower()
        return next((job for job in self.jobs if any(i.lower() == wanted for i in task_ids(job.tasks))), None)
