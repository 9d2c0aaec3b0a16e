"""Reading task output files: whole, the last lines, following a running task, and failed tasks' tails."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from batchrun.errors import TargetError
from batchrun.watch.snapshot import FailedTask, TaskDetail
from batchrun.watch.text import clean

if TYPE_CHECKING:  # the SDK-facing readers import this package's snapshots: no import cycle
    from batchrun.azure.clients import Clients
    from batchrun.azure.monitor import BatchMonitor

CHUNK_BYTES = 4 * 1024 * 1024  # ranged reads of a whole file


def require_task(monitor: BatchMonitor, job_id: str, task_id: str) -> TaskDetail:
    task = monitor.task(job_id, task_id)
    if not task.exists:
        job = monitor.job(job_id)
        if not job.exists:
            raise TargetError(
                f"job/{job_id} does not exist on the target: apply the manifest first (batchrun apply FILE)."
            )
        raise TargetError(
            f"task/{job_id}/{task_id} does not exist: check the task id (tasks are listed by `batchrun plan` "
            "and in the manifest)."
        )
    return task


def kept_log(clients: Clients, workload: str, task_id: str, name: str) -> bytes | None:
    """The stdout/stderr kept in storage from the task's latest run, or None (see batchrun.azure.results)."""
    from batchrun.azure.results import read_log

    return read_log(clients.blob, workload, task_id, name)


def last_lines(data: bytes, lines: int | None) -> bytes:
    """The last ``lines`` lines of ``data`` (all of it for None)."""
    if lines is None:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def read_range(
    monitor: BatchMonitor,
    job_id: str,
    task_id: str,
    name: str,
    start: int,
    size: int,
    write: Callable[[bytes], None],
) -> int:
    """Write bytes ``start .. size-1`` of a task file through ``write`` in bounded chunks; return ``size``."""
    offset = start
    while offset < size:
        end = min(size, offset + CHUNK_BYTES)
        write(monitor.read_file(job_id, task_id, name, offset, end))
        offset = end
    return size


def follow(
    monitor: BatchMonitor,
    job_id: str,
    task_id: str,
    name: str,
    offset: int,
    write: Callable[[bytes], None],
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TaskDetail:
    """Write what the task appends to ``name`` from ``offset`` on until the task has completed.

    Each round costs two requests (task state, file size) plus one ranged read when the file grew. The task
    state is read before the size so the bytes written before completion are never missed.
    """
    while True:
        task = monitor.task(job_id, task_id)
        size = monitor.file_size(job_id, task_id, name) or 0
        if size > offset:
            offset = read_range(monitor, job_id, task_id, name, offset, size, write)
        if not task.exists or task.state == "completed":
            return task
        sleep(interval)


def failed_task_tails(
    monitor: BatchMonitor, job_id: str, name: str, lines: int, limit: int
) -> list[FailedTask]:
    """The first ``limit`` failed tasks with the last ``lines`` lines of ``name`` (cleaned for printing)."""
    tails: list[FailedTask] = []
    for task in monitor.failed_tasks(job_id, limit):
        tail = monitor.tail(job_id, task.id, name, lines)
        text = tuple(clean(line) for line in tail.data.decode("utf-8", errors="replace").splitlines())
        tails.append(FailedTask(task.id, task.exit_code, task.failure_code, task.failure_message, text))
    return tails


START_TASK_FILES = {"stdout.txt": "startup/stdout.txt", "stderr.txt": "startup/stderr.txt"}


def start_task_tail(
    monitor: BatchMonitor, pool_id: str, node_id: str, name: str, lines: int
) -> list[str] | None:
    """The last ``lines`` lines of the start task's ``name`` (stdout.txt or stderr.txt) on a node, cleaned for
    printing; None when the node or the file is gone."""
    part = monitor.node_file_tail(pool_id, node_id, START_TASK_FILES[name], lines)
    if part is None:
        return None
    return [clean(line) for line in part.data.decode("utf-8", errors="replace").splitlines()]
