"""The data exchanged between the emulator service and the node runtime (see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

TaskKind = Literal["task", "starttask", "jobpreparation", "jobrelease"]
TaskResult = Literal["success", "failure"]
# Which stage produced a failure, so the service can pick the matching exitConditions entry:
# "preprocessing" (the command never ran: resource files, packages, launch), "fileupload" (outputFiles),
# "execution" (the process ran and exited non-zero or was ended).
FailureStage = Literal["preprocessing", "fileupload", "execution"]
FailureInfo = dict[str, Any]
# Job commonEnvironmentSettings as stored ([{"name", "value"}]) or already as a mapping.
EnvironmentSettings = Sequence[Mapping[str, Any]] | Mapping[str, str]


class Cancellation(Protocol):
    """What waits on a run's process looks at to learn that the run must end (a ``threading.Event`` does)."""

    def is_set(self) -> bool: ...


class CancelFlag:
    """A task run's cancel flag: set once by whatever ends the run, looked at by what waits on its process.

    Nothing blocks on it (those waits look at it at intervals), so it needs neither the lock nor the condition
    a ``threading.Event`` makes, for every run."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class NodeIdentity(msgspec.Struct, frozen=True, dict=True):  # dict: for its cached properties
    """One simulated compute node: where its root folder is and what Batch says about it."""

    root: Path
    account_name: str
    account_url: str
    pool_id: str
    node_id: str
    is_dedicated: bool = True

    @cached_property
    def folder(self) -> str:
        """``root`` as text, made once: every task's folders are joined onto it as plain strings."""
        return str(self.root)


class StorageAccess(msgspec.Struct, frozen=True):
    """The storage account linked to the Batch account (auto-storage): Azurite locally."""

    blob_endpoint: str
    account_name: str
    account_key: str

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return f"StorageAccess(blob_endpoint={self.blob_endpoint!r}, account_name={self.account_name!r})"


class PackageBlob(msgspec.Struct, frozen=True):
    """An application package version (a zip) stored in the linked storage account.

    ``version`` is the resolved version; ``referenced_without_version`` is true when the task or pool
    referenced the application without a version (so the default version was used), which adds Batch's
    version-less ``AZ_BATCH_APP_PACKAGE_<appid>`` variable. References without a ``version`` in the task's
    own ``applicationPackageReferences`` are detected from ``TaskLaunch.spec`` as well.
    """

    application_id: str
    version: str
    container: str
    blob_name: str
    referenced_without_version: bool = False


class TaskLaunch(msgspec.Struct, frozen=True):
    """One run of one task on one node.

    ``spec`` is the task's REST JSON body as stored (camelCase): a task, the pool's ``startTask``, or the
    job's ``jobPreparationTask`` / ``jobReleaseTask``. ``job_environment`` is the job's
    ``commonEnvironmentSettings`` (ignored for a start task). ``node_ips`` lists the IPs of the nodes of a
    multi-instance task (primary first).
    """

    kind: TaskKind
    job_id: str
    task_id: str
    spec: Mapping[str, Any]
    job_environment: EnvironmentSettings = ()
    packages: Sequence[PackageBlob] = ()
    node_ips: Sequence[str] = ()
    # AZ_BATCH_AUTHENTICATION_TOKEN: set when the task asks for it (``authenticationTokenSettings``).
    authentication_token: str | None = None
    # The job's preparation task has run on this node, as the scheduler knows it (None: its folder says).
    job_prepared: bool | None = None


class TaskOutcome(msgspec.Struct, frozen=True):
    """How a run ended. ``failure_info`` is in REST shape: ``{"category", "code", "message", "details"}``."""

    exit_code: int | None
    failure_info: FailureInfo | None
    start_time: datetime | None
    end_time: datetime
    result: TaskResult
    failure_stage: FailureStage | None = None
