"""Reading a running workload through the SDKs: job, task counts, pool, nodes, failed tasks, files, outputs.

Every read costs a known, small number of requests independent of the job's size: task counts come from
``GET /jobs/{id}/taskcounts``, failed tasks from one filtered, ``$select``-ed page, file tails from a HEAD
plus one ranged GET. Results are the SDK-free snapshots of :mod:`batchrun.watch.snapshot`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
from azure.batch import BatchClient
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from batchrun.azure.rest import get_json, list_json, metadata_of
from batchrun.errors import AuthenticationError, TargetError, TargetUnreachableError
from batchrun.redact import redact
from batchrun.watch.snapshot import (
    FailedNode,
    FailedTask,
    JobSnapshot,
    NodeSummary,
    PoolSnapshot,
    ResizeProblem,
    ScheduleSnapshot,
    TaskCounts,
    TaskDetail,
)

T = TypeVar("T")

_JOB_FIELDS = ["id", "state", "poolInfo", "executionInfo", "onAllTasksComplete", "metadata"]
_POOL_FIELDS = [
    "id",
    "state",
    "allocationState",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "enableAutoScale",
    "resizeErrors",
    "metadata",
]
FAILED_TASK_FILTER = "executionInfo/result eq 'failure'"
FAILED_NODE_FILTER = "state eq 'starttaskfailed' or state eq 'unusable'"


class _QuietFailsafeDeserialization(logging.Filter):
    """Drop the SDK's traceback for error responses without a body (every HEAD 404, e.g. a task file that does
    not exist yet): the SDK already turns them into ResourceNotFoundError, which is handled here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failsafe deserialization" not in record.getMessage()


logging.getLogger("azure.batch._utils.model_base").addFilter(_QuietFailsafeDeserialization())


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn SDK errors other than 404 into batchrun errors that name what was being read."""
    try:
        yield
    except ResourceNotFoundError:
        raise
    except ClientAuthenticationError as error:
        raise AuthenticationError(
            f"The target rejected the credentials while reading {what}: {redact(str(error.message))}. "
            "Check the account key or your Entra ID login."
        ) from None
    except ServiceRequestError as error:
        raise TargetUnreachableError(
            f"Could not reach the target while reading {what}: {redact(str(error))}. "
            "Check the endpoint and that the service (or the local target) is running."
        ) from None
    except ServiceResponseError as error:
        raise TargetUnreachableError(
            f"The target stopped answering while reading {what}: {redact(str(error))}. "
            "Check that the service (or the local target: `batchrun local status`) is running and try again."
        ) from None
    except HttpResponseError as error:
        raise TargetError(f"Reading {what} failed: {redact(str(error.message))}") from None
    except AzureError as error:
        raise TargetError(f"Reading {what} failed: {redact(str(error))}") from None


def _or_none(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except ResourceNotFoundError:
        return None


def _first_page(pages: Iterator[Iterator[T]], limit: int) -> list[T]:
    """Up to ``limit`` items of the first page of a listing ([] when there is none or its parent is gone)."""
    try:
        return list(itertools.islice(next(pages), limit))
    except (StopIteration, ResourceNotFoundError):
        return []


def _failed_node(node: Any) -> FailedNode:
    info = node.start_task_info
    failure = info.failure_info if info else None
    return FailedNode(
        id=node.id,
        state=_text(node.state),
        start_task_exit_code=info.exit_code if info else None,
        start_task_failure=f"{failure.code}: {failure.message}" if failure else None,
        errors=tuple(f"{e.code}: {e.message}" for e in node.errors or ()),
    )


def _failed_task(task: Any) -> FailedTask:
    info = task.execution_info
    failure = info.failure_info if info else None
    return FailedTask(
        id=task.id,
        exit_code=info.exit_code if info else None,
        failure_code=failure.code if failure else None,
        failure_message=failure.message if failure else None,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _text(value: Any) -> str:
    """An SDK enum member's wire value (``str()`` of one is ``BatchJobState.ACTIVE``), or the text."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _metadata(items: Any) -> dict[str, str]:
    return {item.name: item.value for item in items or ()}


class FileRange(msgspec.Struct, frozen=True):
    """Bytes of a task file starting at ``start``; ``size`` is the file's size when read."""

    data: bytes
    start: int
    size: int


class BatchMonitor:
    """Read-only view of jobs, pools and task files through one :class:`azure.batch.BatchClient`."""

    def __init__(self, batch: BatchClient) -> None:
        self._batch = batch

    def job(self, job_id: str) -> JobSnapshot:
        with _reading(f"job/{job_id}"):
            job = _or_none(lambda: self._batch.get_job(job_id, select=_JOB_FIELDS))
        if job is None:
            return JobSnapshot(id=job_id, exists=False)
        info = job.execution_info
        pool_id = (info.pool_id if info else None) or (job.pool_info.pool_id if job.pool_info else None)
        scheduling_error = info.scheduling_error if info else None
        return JobSnapshot(
            id=job_id,
            exists=True,
            state=_text(job.state),
            pool_id=pool_id,
            on_all_tasks_complete=_text(job.all_tasks_complete_mode),
            start_time=_iso(info.start_time) if info else None,
            end_time=_iso(info.end_time) if info else None,
            terminate_reason=info.termination_reason if info else None,
            scheduling_error=(
                f"{scheduling_error.code}: {scheduling_error.message}"
                if scheduling_error is not None
                else None
            ),
            metadata=_metadata(job.metadata),
        )

    def schedule(self, schedule_id: str, runs: int = 5) -> ScheduleSnapshot:
        """The job schedule and its latest ``runs`` jobs (newest first)."""
        path = f"/jobschedules/{quote(schedule_id, safe='')}"
        with _reading(f"jobschedule/{schedule_id}"):
            found = _or_none(lambda: get_json(self._batch, path))
            if found is None:
                return ScheduleSnapshot(id=schedule_id, exists=False)
            select = {"$select": "id,state,executionInfo,creationTime"}
            jobs = list(list_json(self._batch, f"{path}/jobs", select))
        jobs.sort(key=lambda job: str(job.get("creationTime", "")), reverse=True)
        return ScheduleSnapshot(
            id=schedule_id,
            exists=True,
            state=str(found.get("state", "")),
            next_run_time=(found.get("executionInfo") or {}).get("nextRunTime"),
            metadata=metadata_of(found.get("metadata")),
            runs=tuple(
                (
                    str(job.get("id", "")),
                    str(job.get("state", "")),
                    (job.get("executionInfo") or {}).get("startTime"),
                    (job.get("executionInfo") or {}).get("endTime"),
                )
                for job in jobs[:runs]
            ),
        )

    def task_counts(self, job_id: str) -> TaskCounts:
        with _reading(f"the task counts of job/{job_id}"):
            result = _or_none(lambda: self._batch.get_job_task_counts(job_id))
        if result is None:
            return TaskCounts()
        counts = result.task_counts
        return TaskCounts(
            active=counts.active,
            running=counts.running,
            completed=counts.completed,
            succeeded=counts.succeeded,
            failed=counts.failed,
        )

    def pool(self, pool_id: str) -> PoolSnapshot:
        with _reading(f"pool/{pool_id}"):
            pool = _or_none(lambda: self._batch.get_pool(pool_id, select=_POOL_FIELDS))
        if pool is None:
            return PoolSnapshot(id=pool_id, exists=False)
        return PoolSnapshot(
            id=pool_id,
            exists=True,
            state=_text(pool.state),
            allocation_state=_text(pool.allocation_state),
            current_nodes=(pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0),
            target_nodes=(pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0),
            auto_scale=bool(pool.enable_auto_scale),
            resize_errors=tuple(
                ResizeProblem(code=_text(e.code), message=_text(e.message)) for e in pool.resize_errors or ()
            ),
            metadata=_metadata(pool.metadata),
        )

    def nodes(self, pool_id: str) -> NodeSummary | None:
        """Nodes by state (one request per 1,000 nodes, independent of the job's size); None if no pool."""
        by_state: dict[str, int] = {}
        with _reading(f"the nodes of pool/{pool_id}"):
            try:
                for node in self._batch.list_nodes(pool_id, select=["id", "state"]):
                    state = _text(node.state) or "unknown"
                    by_state[state] = by_state.get(state, 0) + 1
            except ResourceNotFoundError:
                return None
        return NodeSummary(by_state=by_state)

    def failed_nodes(self, pool_id: str, limit: int) -> list[FailedNode]:
        """The first ``limit`` nodes in ``starttaskfailed`` or ``unusable`` (one filtered page)."""
        with _reading(f"the nodes of pool/{pool_id}"):
            nodes = _first_page(
                self._batch.list_nodes(
                    pool_id,
                    filter=FAILED_NODE_FILTER,
                    select=["id", "state", "startTaskInfo", "errors"],
                    max_results=limit,
                ).by_page(),
                limit,
            )
        return [_failed_node(node) for node in nodes]

    def failed_tasks(self, job_id: str, limit: int) -> list[FailedTask]:
        """The first ``limit`` failed tasks (one request: a single filtered page), without stderr."""
        if limit <= 0:
            return []
        with _reading(f"the failed tasks of job/{job_id}"):
            tasks = _first_page(
                self._batch.list_tasks(
                    job_id, filter=FAILED_TASK_FILTER, select=["id", "executionInfo"], max_results=limit
                ).by_page(),
                limit,
            )
        return [_failed_task(task) for task in tasks]

    def task_dependencies(self, job_id: str) -> list[dict[str, Any]]:
        """Every task's id, state, dependencies and outcome, as plain data (for finding blocked tasks)."""
        select = {"$select": "id,state,dependsOn,executionInfo,exitConditions"}
        found: list[dict[str, Any]] = []
        with _reading(f"the tasks of job/{job_id}"):
            try:
                for data in list_json(self._batch, f"/jobs/{quote(job_id, safe='')}/tasks", select):
                    info = data.get("executionInfo") or {}
                    found.append(
                        {
                            "id": data.get("id"),
                            "state": data.get("state"),
                            "dependsOn": data.get("dependsOn"),
                            "exitConditions": data.get("exitConditions"),
                            "result": info.get("result"),
                            "exitCode": info.get("exitCode"),
                        }
                    )
            except ResourceNotFoundError:
                return []
        return found

    def task(self, job_id: str, task_id: str) -> TaskDetail:
        with _reading(f"task/{job_id}/{task_id}"):
            task = _or_none(
                lambda: self._batch.get_task(job_id, task_id, select=["id", "state", "executionInfo"])
            )
        if task is None:
            return TaskDetail(id=task_id, exists=False)
        info = task.execution_info
        failure = info.failure_info if info else None
        return TaskDetail(
            id=task_id,
            exists=True,
            state=_text(task.state),
            exit_code=info.exit_code if info else None,
            result=_text(info.result) if info and info.result else None,
            failure_code=failure.code if failure else None,
        )

    def file_size(self, job_id: str, task_id: str, name: str) -> int | None:
        """Size of a task file in bytes; None when the file (or task) does not exist yet."""
        with _reading(f"{name} of task/{job_id}/{task_id}"):
            properties = _or_none(lambda: self._batch.get_task_file_properties(job_id, task_id, name))
        return None if properties is None else int(properties.content_length)

    def read_file(self, job_id: str, task_id: str, name: str, start: int, size: int) -> bytes:
        """Bytes ``start`` .. ``size - 1`` of a task file (one ranged request)."""
        if start >= size:
            return b""
        with _reading(f"{name} of task/{job_id}/{task_id}"):
            chunks = _or_none(
                lambda: self._batch.download_task_file(
                    job_id, task_id, name, ocp_range=f"bytes={start}-{size - 1}"
                )
            )
            return b"" if chunks is None else b"".join(chunks)

    def tail(self, job_id: str, task_id: str, name: str, lines: int, max_bytes: int = 64 * 1024) -> FileRange:
        """The last ``lines`` lines of a task file, reading at most ``max_bytes`` from its end."""
        size = self.file_size(job_id, task_id, name)
        if not size:
            return FileRange(b"", 0, size or 0)
        start = max(0, size - max_bytes)
        data = self.read_file(job_id, task_id, name, start, size)
        if start > 0:
            data = data.split(b"\n", 1)[1] if b"\n" in data else data  # drop the partial first line
        kept = data.splitlines(keepends=True)[-lines:] if lines > 0 else []
        text = b"".join(kept)
        return FileRange(text, size - len(text), size)

    def node_file_tail(
        self, pool_id: str, node_id: str, path: str, lines: int, max_bytes: int = 64 * 1024
    ) -> FileRange | None:
        """The last ``lines`` lines of a file on a node (e.g. ``startup/stderr.txt``, the start task's);
        None when the node or the file does not exist."""
        with _reading(f"{path} of node {node_id} in pool/{pool_id}"):
            properties = _or_none(lambda: self._batch.get_node_file_properties(pool_id, node_id, path))
            if properties is None:
                return None
            size = int(properties.content_length)
            if size == 0:
                return FileRange(b"", 0, 0)
            start = max(0, size - max_bytes)
            read = _or_none(
                lambda: b"".join(
                    self._batch.download_node_file(
                        pool_id, node_id, path, ocp_range=f"bytes={start}-{size - 1}"
                    )
                )
            )
        data = read or b""
        if start > 0:
            data = data.split(b"\n", 1)[1] if b"\n" in data else data  # drop the partial first line
        text = b"".join(data.splitlines(keepends=True)[-lines:] if lines > 0 else [])
        return FileRange(text, size - len(text), size)


class OutputBlob(msgspec.Struct, frozen=True):
    name: str
    size: int
    content_md5: bytes | None
    etag: str


class OutputStore:
    """Listing and downloading the blobs of an outputs container."""

    def __init__(self, blob: BlobServiceClient) -> None:
        self._blob = blob

    def list(self, container: str, prefix: str | None = None) -> list[OutputBlob] | None:
        """Every blob in ``container`` (sorted by name); None when the container does not exist."""
        with _reading(f"storage container {container}"):
            try:
                client = self._blob.get_container_client(container)
                blobs = [
                    OutputBlob(
                        name=item.name,
                        size=int(item.size or 0),
                        content_md5=bytes(item.content_settings.content_md5)
                        if item.content_settings and item.content_settings.content_md5
                        else None,
                        etag=str(item.etag or ""),
                    )
                    for item in client.list_blobs(name_starts_with=prefix)
                ]
            except ResourceNotFoundError:
                return None
        return sorted(blobs, key=lambda b: b.name)

    def download(self, container: str, name: str, destination: Path) -> str:
        """Write the blob to ``destination`` atomically (via a temporary sibling); return its MD5 hex."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        digest = hashlib.md5(usedforsecurity=False)
        with _reading(f"blob {container}/{name}"):
            try:
                stream = self._blob.get_blob_client(container, name).download_blob()
                with open(partial, "wb") as handle:
                    for chunk in stream.chunks():
                        digest.update(chunk)
                        handle.write(chunk)
                os.replace(partial, destination)
            finally:
                partial.unlink(missing_ok=True)
        return digest.hexdigest()
