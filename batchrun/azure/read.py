"""Live state: SDK objects -> :mod:`batchrun.plan.live` data. Nothing SDK-typed is returned.

Tasks are read as plain JSON (:mod:`batchrun.azure.rest`) with ``$select`` in 1,000-task pages and reduced at
once to ``LiveTask`` tuples, so memory stays bounded at 100,000 tasks and no SDK model is built per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError

from batchrun.azure.clients import Clients
from batchrun.azure.failures import translated
from batchrun.azure.packages import read_package
from batchrun.azure.rest import get_json, list_json, metadata_of
from batchrun.azure.results import read_record
from batchrun.azure.storage import container_exists, read_input
from batchrun.model import Workload
from batchrun.plan.live import (
    LiveJob,
    LiveJobState,
    LivePool,
    LiveSchedule,
    LiveState,
    LiveTask,
    PreparedInput,
    PreparedPackage,
    task_digest_of,
)

TASK_PAGE_SIZE = 1000
TASK_FIELDS = ["id", "state", "environmentSettings", "constraints", "executionInfo"]


def read_pool(batch: BatchClient, pool_id: str) -> LivePool | None:
    with translated(f"reading pool/{pool_id}"):
        try:
            pool = batch.get_pool(pool_id).as_dict()
        except ResourceNotFoundError:
            return None
        running = 0
        if pool.get("state", "active") != "deleting":
            for node in batch.list_nodes(pool_id, select=["id", "state"], max_results=TASK_PAGE_SIZE):
                if str(node.as_dict().get("state", "")).lower() == "running":
                    running += 1
    return LivePool(
        id=str(pool.get("id", pool_id)),
        properties=pool,
        metadata=metadata_of(pool.get("metadata")),
        state=str(pool.get("state", "active")),
        allocation_state=str(pool.get("allocationState", "steady")),
        running_nodes=running,
    )


def read_job(batch: BatchClient, job_id: str) -> LiveJob | None:
    with translated(f"reading job/{job_id}"):
        try:
            job = batch.get_job(job_id).as_dict()
        except ResourceNotFoundError:
            return None
        active = running = 0
        state = str(job.get("state", "active"))
        if state not in ("deleting", "completed"):
            counts = batch.get_job_task_counts(job_id).as_dict().get("taskCounts", {})
            active, running = int(counts.get("active", 0)), int(counts.get("running", 0))
    return LiveJob(
        id=str(job.get("id", job_id)),
        properties=job,
        metadata=metadata_of(job.get("metadata")),
        state=state,
        pool_id=str((job.get("poolInfo") or {}).get("poolId", "")),
        active_tasks=active,
        running_tasks=running,
    )


def read_schedule(batch: BatchClient, schedule_id: str) -> LiveSchedule | None:
    with translated(f"reading jobschedule/{schedule_id}"):
        try:
            found = get_json(batch, f"/jobschedules/{quote(schedule_id, safe='')}")
        except ResourceNotFoundError:
            return None
    return LiveSchedule(
        id=str(found.get("id", schedule_id)),
        properties=found,
        metadata=metadata_of(found.get("metadata")),
        state=str(found.get("state", "active")),
    )


def read_tasks(batch: BatchClient, job_id: str) -> dict[str, LiveTask]:
    """Every task of the job by lower-cased id, reduced to (digest, state, constraints, result, exit code)."""
    tasks: dict[str, LiveTask] = {}
    select = {"$select": ",".join(TASK_FIELDS)}
    with translated(f"listing the tasks of job/{job_id}"):
        try:
            for data in list_json(batch, f"/jobs/{quote(job_id, safe='')}/tasks", select, TASK_PAGE_SIZE):
                digest = task_digest_of(data.get("environmentSettings"))
                info = data.get("executionInfo") or {}
                tasks[str(data["id"]).lower()] = LiveTask(
                    digest,
                    str(data.get("state", "")),
                    data.get("constraints") or {},
                    str(info.get("result") or "").lower(),
                    info.get("exitCode"),
                )
        except ResourceNotFoundError:
            return {}
    return tasks


def read_task_bodies(batch: BatchClient, job_id: str, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Full REST bodies of a few tasks, by lower-cased id (for showing what changed)."""
    bodies: dict[str, dict[str, Any]] = {}
    for task_id in task_ids:
        with translated(f"reading task/{job_id}/{task_id}"):
            try:
                bodies[task_id.lower()] = dict(batch.get_task(job_id, task_id).as_dict())
            except ResourceNotFoundError:
                continue
    return bodies


def _job_state(batch: BatchClient, job_id: str, with_tasks: bool) -> LiveJobState:
    """A job and (unless it is being deleted, or not asked for) its tasks."""
    job = read_job(batch, job_id)
    if job is None or not with_tasks or job.state == "deleting":
        return LiveJobState(job)
    return LiveJobState(job, read_tasks(batch, job.id))


def read_live(
    clients: Clients,
    workload: Workload,
    inputs: Sequence[PreparedInput],
    packages: Sequence[PreparedPackage],
    with_tasks: bool = True,
) -> LiveState:
    """Everything the manifest names, as it is now."""
    live_inputs = {p.name: read_input(clients.blob, p, workload.name) for p in inputs}
    live_packages = {f"{p.id}@{p.version}": read_package(clients, p) for p in packages}
    pool = read_pool(clients.batch, workload.pool.id) if workload.pool else None
    first = _job_state(clients.batch, workload.job.id, with_tasks) if workload.job else LiveJobState()
    more_jobs = {
        spec.id.lower(): _job_state(clients.batch, spec.id, with_tasks) for spec in workload.more_jobs
    }
    schedule = read_schedule(clients.batch, workload.job.id) if workload.schedule and workload.job else None
    outputs_exist = container_exists(clients.blob, workload.outputs.container) if workload.outputs else True
    record = read_record(clients.blob, workload.name) if workload.job else None
    return LiveState(
        results=record.results if record else {},
        state_container_exists=record.container_exists if record else True,
        inputs=live_inputs,
        packages=live_packages,
        pool=pool,
        job=first.job,
        tasks=first.tasks,
        more_jobs=more_jobs,
        schedule=schedule,
        outputs_container_exists=outputs_exist,
    )
