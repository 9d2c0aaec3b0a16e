"""The result of waiting on a workload, and its stable JSON form (documented in docs/operate.md)."""

from __future__ import annotations

from typing import Any

import msgspec

from batchrun.watch.snapshot import FailedNode, FailedTask, JobSnapshot, NodeSummary, PoolSnapshot, TaskCounts
from batchrun.watch.verdict import Outcome, Verdict


class WaitResult(msgspec.Struct, frozen=True):
    workload: str
    job: JobSnapshot
    counts: TaskCounts
    pool: PoolSnapshot | None
    nodes: NodeSummary | None
    verdict: Verdict
    elapsed: float  # seconds
    polls: int
    failed_tasks: tuple[FailedTask, ...] = ()  # the first ones only; see failed_tasks_truncated
    failed_nodes: tuple[FailedNode, ...] = ()  # the first few, when the pool failed

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome

    @property
    def failed_tasks_truncated(self) -> bool:
        return self.counts.failed > len(self.failed_tasks)

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "outcome": self.verdict.outcome.value,
            "exitCode": self.exit_code,
            "reason": self.verdict.reason,
            "elapsedSeconds": round(self.elapsed, 3),
            "polls": self.polls,
            "job": job_json(self.job),
            "tasks": counts_json(self.counts),
            "pool": pool_json(self.pool, self.nodes),
            "failedTasks": [failed_task_json(task) for task in self.failed_tasks],
            "failedTasksTruncated": self.failed_tasks_truncated,
            "failedNodes": [failed_node_json(node) for node in self.failed_nodes],
        }


def counts_json(counts: TaskCounts) -> dict[str, int]:
    return {
        "total": counts.total,
        "active": counts.active,
        "running": counts.running,
        "completed": counts.completed,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
    }


def job_json(job: JobSnapshot) -> dict[str, Any]:
    return {
        "id": job.id,
        "exists": job.exists,
        "state": job.state or None,
        "poolId": job.pool_id,
        "onAllTasksComplete": job.on_all_tasks_complete or None,
        "startTime": job.start_time,
        "endTime": job.end_time,
        "terminateReason": job.terminate_reason,
        "schedulingError": job.scheduling_error,
    }


def pool_json(pool: PoolSnapshot | None, nodes: NodeSummary | None) -> dict[str, Any] | None:
    if pool is None:
        return None
    return {
        "id": pool.id,
        "exists": pool.exists,
        "state": pool.state or None,
        "allocationState": pool.allocation_state or None,
        "currentNodes": pool.current_nodes,
        "targetNodes": pool.target_nodes,
        "autoScale": pool.auto_scale,
        "nodes": None
        if nodes is None
        else {
            "ready": nodes.ready,
            "starting": nodes.starting,
            "failed": nodes.failed,
            "byState": dict(sorted(nodes.by_state.items())),
        },
        "resizeErrors": [{"code": e.code, "message": e.message} for e in pool.resize_errors],
    }


def failed_node_json(node: FailedNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "state": node.state,
        "startTaskExitCode": node.start_task_exit_code,
        "startTaskFailure": node.start_task_failure,
        "errors": list(node.errors),
    }


def failed_task_json(task: FailedTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "exitCode": task.exit_code,
        "failureCode": task.failure_code,
        "failureMessage": task.failure_message,
        "stderrTail": list(task.stderr_tail),
    }
