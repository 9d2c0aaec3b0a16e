"""The job-level verdict and its exit codes, decided from plain snapshots."""

from __future__ import annotations

from batchrun.cli import exit_codes
from batchrun.watch.snapshot import JobSnapshot, NodeSummary, PoolSnapshot, ResizeProblem, TaskCounts
from batchrun.watch.verdict import Outcome, decide

ACTIVE_JOB = JobSnapshot(id="j", exists=True, state="active", pool_id="p")
STEADY_POOL = PoolSnapshot(
    id="p", exists=True, state="active", allocation_state="steady", current_nodes=1, target_nodes=1
)
READY = NodeSummary({"idle": 1})


def test_all_tasks_succeeded_is_ok_even_when_the_job_never_completes() -> None:
    counts = TaskCounts(completed=3, succeeded=3)
    verdict = decide(ACTIVE_JOB, counts, STEADY_POOL, READY, expected_tasks=3)
    assert verdict is not None and verdict.outcome is Outcome.SUCCEEDED
    assert verdict.exit_code == exit_codes.OK


def test_a_failed_task_gives_tasks_failed() -> None:
    counts = TaskCounts(completed=3, succeeded=2, failed=1)
    verdict = decide(ACTIVE_JOB, counts, STEADY_POOL, READY, expected_tasks=3)
    assert verdict is not None and verdict.exit_code == exit_codes.TASKS_FAILED
    assert "1 of 3" in verdict.reason


def test_running_or_active_work_is_not_a_verdict() -> None:
    assert (
        decide(
            ACTIVE_JOB, TaskCounts(active=1, completed=2, succeeded=2), STEADY_POOL, READY, expected_tasks=3
        )
        is None
    )
    assert (
        decide(
            ACTIVE_JOB,
            TaskCounts(running=1),
            STEADY_POOL,
            NodeSummary({"starttaskfailed": 1}),
            expected_tasks=1,
        )
        is None
    )


def test_job_terminated_before_its_tasks_ran_is_a_task_failure() -> None:
    job = JobSnapshot(id="j", exists=True, state="completed", pool_id="p", terminate_reason="TaskFailed")
    verdict = decide(job, TaskCounts(active=5, completed=1, failed=1), STEADY_POOL, READY, expected_tasks=6)
    assert verdict is not None and verdict.outcome is Outcome.TASKS_FAILED
    assert "5 task(s) not run" in verdict.reason and "TaskFailed" in verdict.reason


def test_start_task_failure_on_every_node_is_a_pool_failure() -> None:
    nodes = NodeSummary({"starttaskfailed": 2})
    verdict = decide(ACTIVE_JOB, TaskCounts(active=4), STEADY_POOL, nodes, expected_tasks=4)
    assert verdict is not None and verdict.exit_code == exit_codes.POOL_FAILED
    assert "2 starttaskfailed" in verdict.reason


def test_nodes_still_starting_or_partly_failed_keep_waiting() -> None:
    assert (
        decide(ACTIVE_JOB, TaskCounts(active=4), STEADY_POOL, NodeSummary({"starting": 1}), expected_tasks=4)
        is None
    )
    mixed = NodeSummary({"starttaskfailed": 1, "idle": 1})
    assert decide(ACTIVE_JOB, TaskCounts(active=4), STEADY_POOL, mixed, expected_tasks=4) is None


def test_resize_errors_with_no_nodes_are_a_pool_failure() -> None:
    pool = PoolSnapshot(
        id="p",
        exists=True,
        state="active",
        allocation_state="steady",
        current_nodes=0,
        target_nodes=2,
        resize_errors=(ResizeProblem("AllocationTimedout", "no capacity"),),
    )
    verdict = decide(ACTIVE_JOB, TaskCounts(active=1), pool, NodeSummary({}), expected_tasks=1)
    assert verdict is not None and verdict.outcome is Outcome.POOL_FAILED
    assert "AllocationTimedout" in verdict.reason


def test_a_resizing_pool_or_an_autoscale_pool_at_zero_is_not_a_failure() -> None:
    resizing = PoolSnapshot(id="p", exists=True, state="active", allocation_state="resizing", target_nodes=1)
    assert decide(ACTIVE_JOB, TaskCounts(active=1), resizing, NodeSummary({}), expected_tasks=1) is None
    autoscale = PoolSnapshot(id="p", exists=True, state="active", allocation_state="steady", auto_scale=True)
    assert decide(ACTIVE_JOB, TaskCounts(active=1), autoscale, NodeSummary({}), expected_tasks=1) is None


def test_a_fixed_pool_with_no_nodes_and_no_target_is_a_pool_failure() -> None:
    empty = PoolSnapshot(id="p", exists=True, state="active", allocation_state="steady")
    verdict = decide(ACTIVE_JOB, TaskCounts(active=1), empty, NodeSummary({}), expected_tasks=1)
    assert verdict is not None and verdict.outcome is Outcome.POOL_FAILED


def test_a_missing_pool_is_a_pool_failure() -> None:
    verdict = decide(
        ACTIVE_JOB, TaskCounts(active=1), PoolSnapshot(id="p", exists=False), None, expected_tasks=1
    )
    assert verdict is not None and verdict.outcome is Outcome.POOL_FAILED


def test_a_job_without_tasks_waits_only_while_the_manifest_expects_some() -> None:
    assert decide(ACTIVE_JOB, TaskCounts(), STEADY_POOL, READY, expected_tasks=3) is None
    verdict = decide(ACTIVE_JOB, TaskCounts(), STEADY_POOL, READY, expected_tasks=0)
    assert verdict is not None and verdict.outcome is Outcome.SUCCEEDED


def test_every_outcome_has_its_documented_exit_code() -> None:
    assert [o.exit_code for o in Outcome] == [
        exit_codes.OK,
        exit_codes.TASKS_FAILED,
        exit_codes.POOL_FAILED,
        exit_codes.TIMEOUT,
    ]
