"""``batchrun status``: what is live for a manifest, and whether it is what the manifest describes.

Live revision and digest come from the ownership metadata batchrun writes on the pool and the job
(``batchrun.workload``, ``batchrun.revision``, ``batchrun.digest``). Comparing the live digest with the
manifest's is enough to say "live differs"; ``batchrun plan`` shows how.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import field
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchrun.model import Workload, task_ids
from batchrun.plan.live import TaskResult
from batchrun.watch.console import print_block
from batchrun.watch.result import counts_json, job_json, pool_json
from batchrun.watch.snapshot import JobSnapshot, NodeSummary, PoolSnapshot, ScheduleSnapshot, TaskCounts
from batchrun.watch.text import clean

if TYPE_CHECKING:  # the SDK-facing readers import this package's snapshots: no import cycle
    from batchrun.azure.monitor import BatchMonitor

WORKLOAD_KEY = "batchrun.workload"
REVISION_KEY = "batchrun.revision"
DIGEST_KEY = "batchrun.digest"


class WorkloadStatus(msgspec.Struct, frozen=True):
    workload: Workload
    pool: PoolSnapshot | None  # None when the manifest has no pool
    nodes: NodeSummary | None
    job: JobSnapshot | None  # None when the manifest has no job
    counts: TaskCounts
    # The workload's record of results (batchrun.azure.results), by lower-cased task id: the results of
    # tasks that ran in earlier jobs are current without being in the live job.
    results: Mapping[str, TaskResult] = field(default_factory=dict)
    # The workload's other jobs (``jobs:`` in the manifest), with their task counts.
    more_jobs: tuple[tuple[JobSnapshot, TaskCounts], ...] = ()
    # The job schedule of a workload with ``schedule:`` (its job runs as the schedule's jobs).
    schedule: ScheduleSnapshot | None = None

    def recorded(self) -> tuple[int, int]:
        """(succeeded, failed): the manifest's tasks with a result in the record of results."""
        succeeded = failed = 0
        for task_id in (task_id for job in self.workload.jobs for task_id in task_ids(job.tasks)):
            result = self.results.get(task_id.lower())
            if result is not None:
                succeeded, failed = (
                    (succeeded + 1, failed) if result.result == "success" else (succeeded, failed + 1)
                )
        return succeeded, failed

    def all_recorded(self) -> bool:
        total = sum(len(job.tasks) for job in self.workload.jobs)
        return sum(self.recorded()) == total > 0

    def _resources(self) -> list[tuple[str, bool, dict[str, str]]]:
        found: list[tuple[str, bool, dict[str, str]]] = []
        if self.pool is not None:
            found.append((f"pool/{self.pool.id}", self.pool.exists, dict(self.pool.metadata)))
        if self.job is not None:
            found.append((f"job/{self.job.id}", self.job.exists, dict(self.job.metadata)))
        found.extend((f"job/{job.id}", job.exists, dict(job.metadata)) for job, _counts in self.more_jobs)
        if self.schedule is not None:
            found.append(
                (f"jobschedule/{self.schedule.id}", self.schedule.exists, dict(self.schedule.metadata))
            )
        return found

    @property
    def live_revision(self) -> str | None:
        """The revision on a resource stamped with the manifest's digest (the last apply of this manifest
        wrote it), else the newest found on the jobs, else on the pool."""
        live = [(exists, m) for _address, exists, m in reversed(self._resources()) if exists]
        current = [
            m for _exists, m in live if m.get(DIGEST_KEY) == self.workload.digest and m.get(REVISION_KEY)
        ]
        if current:
            return current[0][REVISION_KEY]
        return next((m[REVISION_KEY] for _exists, m in live if m.get(REVISION_KEY)), None)

    @property
    def live_digest(self) -> str | None:
        """The manifest's digest when a live resource carries it, else the job's (or the pool's) digest."""
        digests = [m.get(DIGEST_KEY) for _address, exists, m in reversed(self._resources()) if exists]
        if self.workload.digest in digests:
            return self.workload.digest
        return next((d for d in digests if d), None)

    @property
    def applied(self) -> bool:
        """Something of this manifest exists live."""
        return any(exists for _address, exists, _metadata in self._resources())

    def differences(self) -> list[str]:
        """Why live is not what the manifest describes (empty when in sync).

        An apply stamps the digest only on what it writes, so a pool untouched by the last apply keeps an
        older digest: live is in sync when every resource exists, is batchrun's, and one of them carries the
        manifest's digest.
        """
        reasons: list[str] = []
        for address, exists, metadata in self._resources():
            if not exists and address.startswith("job/") and self.all_recorded():
                continue  # gone with every task's result on record: nothing needs to run
            if not exists:
                reasons.append(f"{address} does not exist")
            elif not metadata.get(DIGEST_KEY):
                reasons.append(f"{address} carries no batchrun digest (not applied by batchrun)")
        live = self.live_digest
        if not reasons and live is not None and live != self.workload.digest:
            reasons.append(
                f"live was applied from a different manifest (digest {live[:12]}, "
                f"manifest {self.workload.digest[:12]})"
            )
        if not reasons:  # with another manifest live, fewer tasks is expected, not a sign of interruption
            reasons.extend(self._missing_tasks())
        return reasons

    def _missing_tasks(self) -> list[str]:
        """The job's digest is stamped when it is created, before its tasks are added: an apply interrupted
        while adding tasks leaves a job with the right digest and too few tasks (Batch's task counts may lag
        a few seconds behind a fresh apply on Azure). Each of the workload's jobs is checked."""
        live = ([(self.job, self.counts)] if self.job is not None else []) + list(self.more_jobs)
        reasons: list[str] = []
        for spec, (job, counts) in zip(self.workload.jobs, live, strict=False):
            if not job.exists:
                continue
            wanted = len(spec.tasks)
            on_record = sum(1 for task_id in task_ids(spec.tasks) if task_id.lower() in self.results)
            if counts.total >= wanted or counts.total + on_record >= wanted:
                continue  # a job replaced to rerun some tasks holds just those; the others are on record
            reasons.append(
                f"job/{job.id} has {counts.total} of the manifest's {wanted} tasks "
                "(an interrupted apply? run `batchrun apply` again)"
            )
        return reasons

    def to_json(self) -> dict[str, Any]:
        job = None
        if self.job is not None:
            job = job_json(self.job) | {
                "tasks": counts_json(self.counts) if self.job.exists else None,
                "metadata": _ownership(self.job.metadata),
            }
        pool = None
        if self.pool is not None:
            pool = (pool_json(self.pool, self.nodes) or {}) | {"metadata": _ownership(self.pool.metadata)}
        differences = self.differences()
        return {
            "workload": self.workload.name,
            "manifest": str(self.workload.manifest_path),
            "manifestDigest": self.workload.digest,
            "liveRevision": self.live_revision,
            "liveDigest": self.live_digest,
            "applied": self.applied,
            "inSync": not differences,
            "differences": differences,
            "pool": pool,
            "job": job,
            "schedule": None
            if self.schedule is None
            else {
                "id": self.schedule.id,
                "exists": self.schedule.exists,
                "state": self.schedule.state or None,
                "nextRunTime": self.schedule.next_run_time,
                "runs": [
                    {"job": job, "state": state, "startTime": start, "endTime": end}
                    for job, state, start, end in self.schedule.runs
                ],
            },
            "moreJobs": [
                job_json(other) | {"tasks": counts_json(counts) if other.exists else None}
                for other, counts in self.more_jobs
            ],
            "recordedResults": dict(zip(("succeeded", "failed"), self.recorded(), strict=True)),
        }


def _ownership(metadata: Any) -> dict[str, str]:
    return {key: value for key, value in dict(metadata).items() if key.startswith("batchrun.")}


def read_status(
    monitor: BatchMonitor, workload: Workload, results: Mapping[str, TaskResult] | None = None
) -> WorkloadStatus:
    """Three to five requests: pool, its nodes, job, its task counts (and the record, read by the caller)."""
    pool = monitor.pool(workload.pool.id) if workload.pool is not None else None
    nodes = monitor.nodes(pool.id) if pool is not None and pool.exists else None
    if workload.schedule is not None and workload.job is not None:  # its runs are the schedule's jobs
        schedule = monitor.schedule(workload.job.id)
        return WorkloadStatus(workload, pool, nodes, None, TaskCounts(), dict(results or {}), (), schedule)
    job = monitor.job(workload.job.id) if workload.job is not None else None
    counts = monitor.task_counts(job.id) if job is not None and job.exists else TaskCounts()
    more: list[tuple[JobSnapshot, TaskCounts]] = []
    for spec in workload.more_jobs:
        other = monitor.job(spec.id)
        more.append((other, monitor.task_counts(other.id) if other.exists else TaskCounts()))
    return WorkloadStatus(workload, pool, nodes, job, counts, dict(results or {}), tuple(more))


def render_status(console: Console, status: WorkloadStatus) -> None:
    table = Table(
        box=box.SIMPLE, show_header=False, title=f"Workload {status.workload.name}", title_justify="left"
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    differences = status.differences()
    if differences:
        sync = Text("live differs from the manifest: " + "; ".join(differences), style="yellow")
        sync.append("  (run `batchrun plan` for details)", style="dim")
    else:
        sync = Text("live matches the manifest", style="green")
    table.add_row("Revision", status.live_revision or "-")
    table.add_row("Sync", sync)
    if status.pool is not None:
        _pool_rows(table, status.pool, status.nodes)
    if status.schedule is not None:
        _schedule_rows(table, status.schedule)
    if status.job is not None:
        _job_rows(table, status.job, status.counts)
        for job, counts in status.more_jobs:
            _job_rows(table, job, counts)
        succeeded, failed = status.recorded()
        if succeeded or failed:
            total = sum(len(job.tasks) for job in status.workload.jobs)
            table.add_row(
                "Results",
                f"{succeeded + failed} of {total} tasks on record ({succeeded} succeeded, {failed} failed), "
                "carried over across jobs",
            )
    print_block(console, table)


def _schedule_rows(table: Table, schedule: ScheduleSnapshot) -> None:
    if not schedule.exists:
        table.add_row(f"Schedule {schedule.id}", Text("not found", style="red"))
        return
    next_run = f", next run at {schedule.next_run_time}" if schedule.next_run_time else ""
    table.add_row(f"Schedule {schedule.id}", f"{schedule.state}{next_run}")
    if not schedule.runs:
        table.add_row("Runs", "none yet")
    for index, (job_id, state, start, end) in enumerate(schedule.runs):
        when = f"started {start}" if start else "not started"
        if end:
            when += f", ended {end}"
        table.add_row("Runs" if index == 0 else "", f"{job_id}: {state}, {when}")


def _pool_rows(table: Table, pool: PoolSnapshot, nodes: NodeSummary | None) -> None:
    if not pool.exists:
        table.add_row(f"Pool {pool.id}", Text("not found", style="red"))
        return
    table.add_row(
        f"Pool {pool.id}",
        f"{pool.state}, allocation {pool.allocation_state}, {pool.current_nodes}/{pool.target_nodes} nodes"
        + (" (autoscale)" if pool.auto_scale else ""),
    )
    if nodes is not None:
        by_state = ", ".join(f"{count} {state}" for state, count in sorted(nodes.by_state.items())) or "none"
        table.add_row("Nodes", by_state)
    for error in pool.resize_errors:
        table.add_row("Resize error", Text(clean(f"{error.code}: {error.message}"), style="red"))


def _job_rows(table: Table, job: JobSnapshot, counts: TaskCounts) -> None:
    if not job.exists:
        table.add_row(f"Job {job.id}", Text("not found", style="red"))
        return
    state = job.state + (f" ({job.terminate_reason})" if job.terminate_reason else "")
    table.add_row(f"Job {job.id}", state)
    table.add_row(
        "Tasks",
        f"{counts.total} total: {counts.active} active, {counts.running} running, "
        f"{counts.succeeded} succeeded, {counts.failed} failed",
    )
    table.add_row("Started", job.start_time or "-")
    table.add_row("Ended", job.end_time or "-")
    if job.scheduling_error:
        table.add_row("Scheduling error", Text(clean(job.scheduling_error), style="red"))
