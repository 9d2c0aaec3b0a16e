"""Live state as read from Batch and Storage: plain data, no SDK types (built by ``batchrun.azure.read``).

Pool and job ``properties`` are the REST JSON (camelCase) the service returned, so the diff compares like with
like. Tasks are kept as small tuples (``LiveTask``) because a job can hold 100,000 of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
from msgspec import field

WORKLOAD_KEY = "batchrun.workload"
DIGEST_KEY = "batchrun.digest"
REVISION_KEY = "batchrun.revision"
LABELS_KEY = "batchrun.labels"  # the manifest's metadata.labels as compact JSON
TASK_DIGEST_ENV = "BATCHRUN_TASK_DIGEST"
BLOB_WORKLOAD_KEY = "batchrun_workload"  # blob metadata names must be C# identifiers: no dots
PACKAGE_HASH_KEY = "batchrun_sha256"


class LiveInput(msgspec.Struct, frozen=True):
    """Blobs under an input's prefix: name -> (base64 Content-MD5 or "", owned by this workload)."""

    name: str
    container_exists: bool
    blobs: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


class LocalFile(msgspec.Struct, frozen=True):
    """A file to upload: blob name, absolute local path, base64 MD5 and size; ``stat`` (size, mtime_ns,
    ctime_ns, inode) vouches for the MD5 while the file still has it (None: an upload hashes what it
    sends). ``md5`` None: not hashed, as the plan did not need it (:mod:`batchrun.local_inputs`); ``stat``
    is then what the file was when planned, and the upload hashes it just before sending it."""

    blob: str
    path: str
    md5: str | None
    size: int
    stat: tuple[int, int, int, int] | None = None

    @property
    def identity(self) -> str:
        """What a saved plan compares: the MD5 (a saved plan hashes every file; a file not hashed is named by
        its size, which is the same in any checkout)."""
        return self.md5 if self.md5 is not None else f"not hashed, {self.size} bytes"


class LivePackage(msgspec.Struct, frozen=True):
    """An application package version as the management plane reports it."""

    id: str
    version: str
    application_exists: bool
    version_exists: bool
    state: str = ""  # Pending | Active
    content_sha256: str = ""  # recorded in the package blob's metadata by batchrun; "" when unknown
    allow_updates: bool = False
    default_version: str = ""


NODE_COUNTS = ("currentDedicatedNodes", "currentLowPriorityNodes")  # a pool's nodes now, in its REST body


def counted_nodes(pool: Mapping[str, Any]) -> int:
    """The nodes a pool's REST body counts now, dedicated and low-priority (a count not given: none)."""
    return sum(int(pool.get(key) or 0) for key in NODE_COUNTS)


class LivePool(msgspec.Struct, frozen=True):
    id: str
    properties: Mapping[str, Any]
    metadata: Mapping[str, str]
    state: str  # active | deleting
    allocation_state: str  # steady | resizing | stopping
    running_nodes: int = 0  # nodes running a task: replacing or deleting the pool interrupts work


class LiveJob(msgspec.Struct, frozen=True):
    id: str
    properties: Mapping[str, Any]
    metadata: Mapping[str, str]
    state: str  # active | disabling | disabled | enabling | terminating | completed | deleting
    pool_id: str
    active_tasks: int = 0
    running_tasks: int = 0


class LiveSchedule(msgspec.Struct, frozen=True):
    """A Batch job schedule as it is now: its REST JSON and its metadata."""

    id: str
    properties: Mapping[str, Any]
    metadata: Mapping[str, str]
    state: str  # active | completed | disabled | terminating | deleting


STATE_CONTAINER = "batchrun-state"  # the workloads' records of results and task logs, one folder per workload


class LiveTask(NamedTuple):
    digest: str  # "" when the task carries no BATCHRUN_TASK_DIGEST
    state: str
    constraints: Mapping[str, Any]
    result: str = ""  # success | failure, once completed
    exit_code: int | None = None


class TakenOnce(Mapping[str, LiveTask], ABC):
    """Live tasks a plan takes one by one as it decides them (:meth:`take`), so a plan of 100,000 tasks does
    not hold them all at once; what is left once every task of the manifest was taken are the tasks the
    manifest no longer has. A plain mapping is read as it is, never changed."""

    @abstractmethod
    def take(self, key: str) -> LiveTask | None:
        """The task ``key``, no longer held here afterwards; None when the job has no such task."""


def task_digest_of(settings: Any) -> str:
    """The batchrun digest among a task's ``[{name, value}]`` environment settings, "" when it has none."""
    for setting in settings or ():
        if isinstance(setting, Mapping) and setting.get("name") == TASK_DIGEST_ENV:
            return str(setting.get("value", ""))
    return ""


class TaskResult(NamedTuple):
    """The last outcome of a task with a given digest, as kept in the workload's record of results."""

    digest: str
    result: str  # success | failure
    exit_code: int | None
    end_time: str  # ISO 8601, "" when unknown
    job: str  # the job it ran in


class LiveJobState(msgspec.Struct, frozen=True):
    """One job as it is now, with its tasks by lower-cased id (empty when the job is missing)."""

    job: LiveJob | None = None
    tasks: Mapping[str, LiveTask] = field(default_factory=dict)


class LiveState(msgspec.Struct, frozen=True):
    inputs: Mapping[str, LiveInput] = field(default_factory=dict)
    packages: Mapping[str, LivePackage] = field(default_factory=dict)  # key: "<id>@<version>"
    pool: LivePool | None = None
    job: LiveJob | None = None  # the workload's job (the first of its ``jobs``)
    tasks: Mapping[str, LiveTask] = field(default_factory=dict)
    more_jobs: Mapping[str, LiveJobState] = field(default_factory=dict)  # the others, by lower-cased job id
    schedule: LiveSchedule | None = None  # the job schedule of a workload with ``schedule:``
    outputs_container_exists: bool = True
    results: Mapping[str, TaskResult] = field(default_factory=dict)  # by lower-cased task id
    state_container_exists: bool = True

    def job_state(self, job_id: str, first: bool) -> LiveJobState:
        """The live job for the manifest's job ``job_id`` (``first``: the workload's first job)."""
        if first:
            return LiveJobState(self.job, self.tasks)
        return self.more_jobs.get(job_id.lower()) or LiveJobState()


class PreparedInput(msgspec.Struct, frozen=True):
    """A storage input's local files with their MD5s (read from disk at plan time); ``hash_cache``: the
    hash cache's file, where an upload records the MD5s of the files it hashed."""

    name: str
    container: str
    prefix: str
    files: tuple[LocalFile, ...]
    hash_cache: str | None = None


class PreparedPackage(msgspec.Struct, frozen=True):
    """A package version's reproducible zip: its sha256 and base64 MD5 (built at plan time)."""

    id: str
    version: str
    source: str
    sha256: str
    set_default: bool = False
    allow_updates: bool = False
