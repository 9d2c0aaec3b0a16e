"""The job-level verdict: from task counts, job state and pool state to "still running" or an exit code.

A job whose ``onAllTasksComplete`` is ``noaction`` never reaches ``completed`` by itself, so the verdict never
waits for the job state: the work is done when the task counts say every task has completed. The wait loop
asks for that observation twice in a row (task counts are eventually consistent on the real service) unless
the job itself has completed.
"""

from __future__ import annotations

from enum import Enum

import msgspec

from batchrun.cli import exit_codes
from batchrun.watch.snapshot import JobSnapshot, NodeSummary, PoolSnapshot, TaskCounts


class Outcome(str, Enum):
    SUCCEEDED = "succeeded"
    TASKS_FAILED = "tasks_failed"
    POOL_FAILED = "pool_failed"
    TIMEOUT = "timeout"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Outcome.SUCCEEDED: exit_codes.OK,
    Outcome.TASKS_FAILED: exit_codes.TASKS_FAILED,
    Outcome.POOL_FAILED: exit_codes.POOL_FAILED,
    Outcome.TIMEOUT: exit_codes.TIMEOUT,
}


class Verdict(msgspec.Struct, frozen=True):
    outcome: Outcome
    reason: str  # one sentence for the summary

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code


def decide(
    job: JobSnapshot,
    counts: TaskCounts,
    pool: PoolSnapshot | None,
    nodes: NodeSummary | None,
    *,
    expected_tasks: int,
) -> Verdict | None:
    """The verdict for one observation, or None while the job is still making progress.

    ``pool`` is None when the job's pool is unknown (e.g. an auto pool); ``nodes`` is None until the nodes of
    the pool have been listed once. ``expected_tasks`` is the number of tasks in the manifest: a job with no
    live task is only finished when the manifest asks for none (otherwise its tasks are still being added).
    """
    if counts.all_completed:
        return _tasks_verdict(counts)
    if counts.total == 0:
        if expected_tasks == 0 or job.state == "completed":
            return Verdict(Outcome.SUCCEEDED, "the job has no tasks")
        return None
    if job.state == "completed":
        never_ran = counts.total - counts.completed
        reason = f"the job ended ({job.terminate_reason or 'terminated'}) with {never_ran} task(s) not run"
        if counts.failed:
            reason += f" and {counts.failed} failed"
        return Verdict(Outcome.TASKS_FAILED, reason)
    if pool is not None and counts.running == 0:
        return _pool_verdict(pool, nodes)
    return None


def _tasks_verdict(counts: TaskCounts) -> Verdict:
    if counts.failed:
        return Verdict(Outcome.TASKS_FAILED, f"{counts.failed} of {counts.total} task(s) failed")
    return Verdict(Outcome.SUCCEEDED, f"all {counts.total} task(s) succeeded")


def _pool_verdict(pool: PoolSnapshot, nodes: NodeSummary | None) -> Verdict | None:
    """POOL_FAILED when work remains but the pool cannot run it and will not get better by itself."""
    if not pool.exists:
        return Verdict(Outcome.POOL_FAILED, f"pool {pool.id} does not exist")
    if pool.state == "deleting":
        return Verdict(Outcome.POOL_FAILED, f"pool {pool.id} is being deleted")
    if pool.allocation_state != "steady":
        return None
    if nodes is not None and (nodes.ready or nodes.starting):
        return None
    if nodes is None and pool.current_nodes:
        return None  # nodes not listed yet: cannot tell whether the ones present are usable
    problems: list[str] = []
    if nodes is not None and nodes.failed:
        failed_states = sorted(
            f"{count} {state}"
            for state, count in nodes.by_state.items()
            if state in {"starttaskfailed", "unusable"}
        )
        problems.append(f"nodes failed: {', '.join(failed_states)}")
    if pool.resize_errors:
        problems.append("resize errors: " + "; ".join(f"{e.code}: {e.message}" for e in pool.resize_errors))
    if not problems and pool.current_nodes == 0 and pool.target_nodes == 0 and not pool.auto_scale:
        problems.append("it has no nodes and targets none")
    if not problems:
        return None
    return Verdict(Outcome.POOL_FAILED, f"pool {pool.id} cannot run tasks: " + "; ".join(problems))
