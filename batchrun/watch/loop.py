"""The wait loop behind ``batchrun wait`` and ``batchrun apply --wait``.

One poll reads the job (state, pool), its task counts and its pool: three requests whatever the number of
tasks. The nodes of the pool are listed every ``node_poll_every`` polls (one request per 1,000 nodes). A
verdict is accepted when two consecutive polls agree, or at once when the job itself has completed; the
confirming poll also lists the nodes, so a pool failure is never decided from a stale node list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import msgspec
from msgspec.structs import replace

from batchrun.errors import TargetError
from batchrun.model import Workload, task_ids
from batchrun.watch.blocked import blocked_tasks
from batchrun.watch.console import OutputSettings
from batchrun.watch.logs import failed_task_tails
from batchrun.watch.progress import EtaEstimator, ProgressView
from batchrun.watch.render_live import LiveProgressRenderer
from batchrun.watch.render_plain import PlainProgressRenderer
from batchrun.watch.result import WaitResult
from batchrun.watch.snapshot import FailedNode, FailedTask, JobSnapshot, NodeSummary, PoolSnapshot, TaskCounts
from batchrun.watch.summary import render_summary
from batchrun.watch.verdict import Outcome, Verdict, decide

if TYPE_CHECKING:  # the SDK-facing readers import this package's snapshots: no import cycle
    from batchrun.azure.clients import Clients
    from batchrun.azure.monitor import BatchMonitor


class ProgressRenderer(Protocol):
    def update(self, view: ProgressView) -> None: ...

    def close(self, view: ProgressView | None) -> None: ...


class WaitSettings(msgspec.Struct, frozen=True):
    poll_interval: float = 2.0  # seconds between polls
    node_poll_every: int = 5  # list the pool's nodes every this many polls
    failed_task_limit: int = 10  # failed tasks shown in the summary (with their stderr tails)
    stderr_lines: int = 5  # last lines of stderr shown per failed task
    failed_node_limit: int = 3  # failed nodes shown (with their start task's outcome) when the pool failed
    plain_min_interval: float = 5.0  # minimum seconds between two plain progress lines


class _Observation(msgspec.Struct):
    job: JobSnapshot
    counts: TaskCounts
    pool: PoolSnapshot | None


def wait_for_workload(
    clients: Clients,
    workload: Workload,
    *,
    timeout: float | None,
    output: OutputSettings,
    settings: WaitSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Wait until the workload's job has an outcome, showing progress; print the summary (or JSON); return it.

    The caller exits with ``result.exit_code``. A manifest without a job has nothing to wait for and succeeds.
    Raises :class:`~batchrun.errors.TargetError` when the job does not exist (the manifest was not applied).
    A workload with several jobs waits for each in turn (``timeout`` is for all of them); the result is the
    first job's that did not succeed, else the last one's; JSON is one document with each job's.
    """
    if len(workload.jobs) <= 1:
        return _wait_for_job(clients, workload, timeout, output, settings, clock, sleep, report=True)
    started = clock()
    results: list[WaitResult] = []
    for job in workload.jobs:
        left = None if timeout is None else max(0.0, timeout - (clock() - started))
        view = replace(workload, job=job, more_jobs=())
        result = _wait_for_job(
            clients, view, left, output, settings, clock, sleep, report=output.format != "json"
        )
        results.append(result)
        if result.verdict.outcome is Outcome.TIMEOUT:
            break
    chosen = next((r for r in results if r.exit_code), results[-1])
    if output.format == "json":
        document = {
            "workload": workload.name,
            "outcome": chosen.verdict.outcome.value,
            "exitCode": chosen.exit_code,
            "jobs": [r.to_json() for r in results],
        }
        output.stream.write(json.dumps(document, indent=2) + "\n")
        output.stream.flush()
    return chosen


def _wait_for_job(
    clients: Clients,
    workload: Workload,
    timeout: float | None,
    output: OutputSettings,
    settings: WaitSettings | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    report: bool,
) -> WaitResult:
    """Wait for the workload's one job (``report``: print its summary or JSON)."""
    from batchrun.azure.monitor import BatchMonitor

    config = settings or WaitSettings()
    monitor = BatchMonitor(clients.batch)
    started = clock()
    renderer = _renderer(output, config)
    last_view: ProgressView | None = None
    try:
        outcome = _poll_until_verdict(monitor, workload, timeout, config, renderer, started, clock, sleep)
        last_view = outcome.view
        wait_result = _finish(monitor, workload, outcome, config, clock() - started)
    except _JobMissing:
        recorded = _from_record(clients, workload)
        if recorded is None:
            raise
        wait_result = recorded
    finally:
        renderer.close(last_view)
    if wait_result.job.exists and wait_result.verdict.outcome is not Outcome.TIMEOUT:
        from batchrun.azure.results import save_results

        # What the job settled is recorded now, so every applier sees it even if the job is deleted.
        save_results(clients.batch, clients.blob, workload.name, wait_result.job.id)
    return _report(output, wait_result) if report else wait_result


class _JobMissing(TargetError):
    """The workload's job does not exist (never applied, or gone with every result current)."""


def _from_record(clients: Clients, workload: Workload) -> WaitResult | None:
    """The verdict when the job is gone but the record of results covers every task, else None."""
    if workload.job is None or not workload.job.tasks:
        return None
    from batchrun.azure.results import read_record

    results = read_record(clients.blob, workload.name).results
    found = [results.get(task_id.lower()) for task_id in task_ids(workload.job.tasks)]
    if any(result is None for result in found):
        return None
    failed = sum(1 for result in found if result is not None and result.result != "success")
    total = len(found)
    counts = TaskCounts(completed=total, succeeded=total - failed, failed=failed)
    verdict = (
        Verdict(Outcome.TASKS_FAILED, f"{failed} of {total} task(s) failed (as recorded; the job is gone)")
        if failed
        else Verdict(Outcome.SUCCEEDED, f"all {total} task(s) succeeded in earlier runs (the job is gone)")
    )
    job = JobSnapshot(id=workload.job.id, exists=False)
    return WaitResult(workload.name, job, counts, None, None, verdict, 0.0, 0)


def _report(output: OutputSettings, wait_result: WaitResult) -> WaitResult:
    if output.format == "json":
        output.stream.write(json.dumps(wait_result.to_json(), indent=2) + "\n")
        output.stream.flush()
    else:
        render_summary(output.console(), wait_result)
    return wait_result


def _renderer(output: OutputSettings, config: WaitSettings) -> ProgressRenderer:
    if output.format == "json":
        return PlainProgressRenderer(output.progress_stream, min_interval=config.plain_min_interval)
    if output.is_terminal():
        return LiveProgressRenderer(output.console())
    return PlainProgressRenderer(output.stream, min_interval=config.plain_min_interval)


class _Outcome(msgspec.Struct):
    verdict: Verdict
    observation: _Observation
    nodes: NodeSummary | None
    polls: int
    view: ProgressView | None  # the last progress drawn


def _poll_until_verdict(
    monitor: BatchMonitor,
    workload: Workload,
    timeout: float | None,
    config: WaitSettings,
    renderer: ProgressRenderer,
    started: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> _Outcome:
    if workload.job is None:
        empty = _Observation(JobSnapshot(id="", exists=False), TaskCounts(), None)
        return _Outcome(Verdict(Outcome.SUCCEEDED, "the manifest defines no job"), empty, None, 0, None)
    job_id = workload.job.id
    expected_tasks = len(workload.job.tasks)
    default_pool = workload.pool.id if workload.pool is not None else None
    eta = EtaEstimator()
    nodes: NodeSummary | None = None
    pending: Verdict | None = None
    polls = 0
    view: ProgressView | None = None
    while True:
        job = monitor.job(job_id)
        if not job.exists:
            raise _JobMissing(
                f"job/{job_id} does not exist on the target, so there is nothing to wait for: "
                f"run `batchrun apply {workload.manifest_path}` first (or check --target)."
            )
        counts = monitor.task_counts(job_id)
        pool_id = job.pool_id or default_pool
        pool = monitor.pool(pool_id) if pool_id else None
        if pool is not None and pool.exists and (polls % config.node_poll_every == 0 or pending is not None):
            nodes = monitor.nodes(pool.id)
        polls += 1
        elapsed = clock() - started
        view = ProgressView(
            elapsed=elapsed,
            job=job,
            counts=counts,
            pool=pool,
            nodes=nodes,
            eta=eta.observe(elapsed, counts.completed, counts.total),
        )
        renderer.update(view)
        verdict = decide(job, counts, pool, nodes, expected_tasks=expected_tasks)
        if verdict is None and counts.failed and counts.active and not counts.running:
            verdict = _blocked_verdict(monitor, job_id, counts)
        observation = _Observation(job, counts, pool)
        if verdict is not None and (
            job.state == "completed" or (pending and pending.outcome == verdict.outcome)
        ):
            return _Outcome(verdict, observation, nodes, polls, view)
        if timeout is not None and elapsed >= timeout:
            if verdict is not None:
                return _Outcome(verdict, observation, nodes, polls, view)
            reason = (
                f"--timeout {timeout:g}s elapsed with {counts.total - counts.completed} task(s) not completed"
            )
            return _Outcome(Verdict(Outcome.TIMEOUT, reason), observation, nodes, polls, view)
        pending = verdict
        pause = config.poll_interval if pending is None else min(config.poll_interval, 1.0)
        if timeout is not None:
            pause = max(0.0, min(pause, timeout - elapsed))
        sleep(pause)


def _blocked_verdict(monitor: BatchMonitor, job_id: str, counts: TaskCounts) -> Verdict | None:
    """TASKS_FAILED when every active task waits behind a failed one (Batch keeps them active forever)."""
    blocked = blocked_tasks(monitor.task_dependencies(job_id))
    if not blocked or len(blocked) < counts.active:
        return None
    shown = ", ".join(f"{b.id} (waits for failed {b.blocked_by})" for b in blocked[:5])
    more = f" and {len(blocked) - 5} more" if len(blocked) > 5 else ""
    return Verdict(
        Outcome.TASKS_FAILED,
        f"{counts.failed} task(s) failed and {len(blocked)} can never run: {shown}{more}",
    )


def _finish(
    monitor: BatchMonitor, workload: Workload, outcome: _Outcome, config: WaitSettings, elapsed: float
) -> WaitResult:
    """Add the failed tasks (first few, with stderr tails) to the verdict."""
    observation = outcome.observation
    failed: list[FailedTask] = []
    if observation.counts.failed and observation.job.exists:
        failed = failed_task_tails(
            monitor, observation.job.id, "stderr.txt", config.stderr_lines, config.failed_task_limit
        )
    failed_nodes: list[FailedNode] = []
    pool = observation.pool
    if outcome.verdict.outcome is Outcome.POOL_FAILED and pool is not None and pool.exists:
        failed_nodes = monitor.failed_nodes(pool.id, config.failed_node_limit)
    return WaitResult(
        workload=workload.name,
        job=observation.job,
        counts=observation.counts,
        pool=observation.pool,
        nodes=outcome.nodes,
        verdict=outcome.verdict,
        elapsed=elapsed,
        polls=outcome.polls,
        failed_tasks=tuple(failed),
        failed_nodes=tuple(failed_nodes),
    )
