"""Scheduler semantics through the SDK: pools, nodes, autoscale, job and task state changes, limits."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.batch.models import _models as sdk_models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batchrun.emulator.node import node_root
from tests.emulator.conftest import Emulator, wait_until

POOL = "sched-pool"


def vm(sku: str = "batch.node.ubuntu 24.04") -> models.VirtualMachineConfiguration:
    return models.VirtualMachineConfiguration(
        image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="24_04"),
        node_agent_sku_id=sku,
    )


def pool_options(pool_id: str, **kwargs: Any) -> models.BatchPoolCreateOptions:
    return models.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2", virtual_machine_configuration=vm(), **kwargs
    )


def task(task_id: str, command: str, **kwargs: Any) -> models.BatchTaskCreateOptions:
    return models.BatchTaskCreateOptions(id=task_id, command_line=f"/bin/sh -c '{command}'", **kwargs)


def job_options(job_id: str, pool_id: str = POOL, **kwargs: Any) -> models.BatchJobCreateOptions:
    return models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id), **kwargs)


def wait_tasks_done(
    client: BatchClient, job_id: str, count: int, timeout: float = 60
) -> dict[str, models.BatchTask]:
    wait_until(
        lambda: client.get_job_task_counts(job_id).task_counts.completed >= count,
        timeout,
        f"{count} tasks of {job_id} to complete",
    )
    return {item.id: item for item in client.list_tasks(job_id)}


def intervals(tasks: list[models.BatchTask]) -> list[tuple[datetime, datetime]]:
    return [(item.execution_info.start_time, item.execution_info.end_time) for item in tasks]


def max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


@pytest.fixture(scope="module")
def pool(client: BatchClient) -> str:
    client.create_pool(pool_options(POOL, target_dedicated_nodes=2, task_slots_per_node=4))
    wait_until(
        lambda: (
            all(node.state == models.BatchNodeState.IDLE for node in client.list_nodes(POOL))
            and len(list(client.list_nodes(POOL))) == 2
        ),
        30,
        "two idle nodes",
    )
    return POOL


def test_pool_resize_stop_and_delete(client: BatchClient) -> None:
    client.create_pool(pool_options("resize-pool", target_dedicated_nodes=1))
    wait_until(
        lambda: client.get_pool("resize-pool").allocation_state == models.AllocationState.STEADY,
        30,
        "first allocation",
    )
    poller = client.begin_resize_pool(
        "resize-pool", models.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=1
    )
    poller.result()
    pool = client.get_pool("resize-pool")
    assert pool.current_dedicated_nodes == 3 and pool.allocation_state == models.AllocationState.STEADY
    assert len(list(client.list_nodes("resize-pool"))) == 3
    client.begin_resize_pool(
        "resize-pool", models.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=1
    ).result()
    wait_until(lambda: len(list(client.list_nodes("resize-pool"))) == 1, 30, "shrinking to one node")
    client.begin_stop_pool_resize("resize-pool", polling_interval=1).result()
    assert client.get_pool("resize-pool").allocation_state == models.AllocationState.STEADY
    client.begin_delete_pool("resize-pool", polling_interval=1).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_pool("resize-pool")


def test_autoscale_formulas(client: BatchClient) -> None:
    client.create_pool(
        pool_options(
            "auto-pool", enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = max(1, 2 - 1);"
        )
    )
    wait_until(lambda: client.get_pool("auto-pool").current_dedicated_nodes == 1, 30, "autoscale to one node")
    run = client.evaluate_pool_auto_scale(
        "auto-pool",
        models.BatchPoolEvaluateAutoScaleOptions(
            auto_scale_formula="pending = $PendingTasks.GetSample(1);\n"
            "$TargetDedicatedNodes = min(4, pending + 2);\n$NodeDeallocationOption = taskcompletion"
        ),
    )
    # The three outputs lead, then the formula's own variables (as recorded: test_batch_scale_pools).
    assert run.results == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;pending=0"
    )
    with pytest.raises(HttpResponseError) as raised:
        client.evaluate_pool_auto_scale(
            "auto-pool",
            models.BatchPoolEvaluateAutoScaleOptions(
                auto_scale_formula="$TargetDedicatedNodes = $CPUPercent.GetSample(1)"
            ),
        )
    assert raised.value.status_code == 400 and "$CPUPercent" in str(raised.value)
    client.enable_pool_auto_scale(
        "auto-pool",
        models.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula="$TargetDedicatedNodes = 2", auto_scale_evaluation_interval="PT5M"
        ),
    )
    wait_until(
        lambda: client.get_pool("auto-pool").current_dedicated_nodes == 2, 30, "autoscale to two nodes"
    )
    with pytest.raises(HttpResponseError) as raised:
        client.begin_resize_pool("auto-pool", models.BatchPoolResizeOptions(target_dedicated_nodes=1))
    assert raised.value.status_code == 409
    client.disable_pool_auto_scale("auto-pool")
    assert client.get_pool("auto-pool").enable_auto_scale is False
    client.begin_delete_pool("auto-pool", polling_interval=1).result()


def test_start_task_failure_marks_node_and_keeps_tasks_away(client: BatchClient) -> None:
    client.create_pool(
        pool_options(
            "badstart-pool",
            target_dedicated_nodes=1,
            start_task=models.BatchStartTask(command_line="/bin/sh -c 'exit 7'", wait_for_success=True),
        )
    )
    node = wait_until(
        lambda: next(
            (
                n
                for n in client.list_nodes("badstart-pool")
                if n.state == models.BatchNodeState.START_TASK_FAILED
            ),
            None,
        ),
        30,
        "starttaskfailed",
    )
    assert node.start_task_info.exit_code == 7
    assert node.start_task_info.failure_info.code == "FailureExitCode"
    client.create_job(job_options("badstart-job", "badstart-pool"))
    client.create_task("badstart-job", task("never", "true"))
    assert client.get_task("badstart-job", "never").state == models.BatchTaskState.ACTIVE
    client.begin_delete_job("badstart-job", polling_interval=1).result()
    client.begin_delete_pool("badstart-pool", polling_interval=1).result()


def test_windows_pool_fails_tasks_clearly(client: BatchClient) -> None:
    client.create_pool(
        models.BatchPoolCreateOptions(
            id="win-pool",
            vm_size="standard_d2",
            target_dedicated_nodes=1,
            virtual_machine_configuration=vm("batch.node.windows amd64"),
        )
    )
    client.create_job(job_options("win-job", "win-pool"))
    client.create_task("win-job", models.BatchTaskCreateOptions(id="cmd", command_line="cmd /c echo hi"))
    done = wait_tasks_done(client, "win-job", 1)["cmd"]
    assert done.execution_info.result == models.BatchTaskExecutionResult.FAILURE
    assert "Windows" in done.execution_info.failure_info.message


def test_slot_cap_max_parallel_and_required_slots(emulator: Emulator, client: BatchClient, pool: str) -> None:
    # 2 nodes x 4 slots, but the emulator's local cap is 4 running tasks.
    client.create_job(job_options("cap-job"))
    client.create_tasks("cap-job", [task(f"c{i}", "sleep 0.4") for i in range(8)])
    cap_tasks = list(wait_tasks_done(client, "cap-job", 8).values())
    assert max_overlap(intervals(cap_tasks)) <= emulator.config.max_running_tasks
    client.create_job(job_options("serial-job", max_parallel_tasks=1))
    client.create_tasks("serial-job", [task(f"s{i}", "sleep 0.2") for i in range(3)])
    assert max_overlap(intervals(list(wait_tasks_done(client, "serial-job", 3).values()))) == 1
    client.create_job(job_options("slots-job"))
    client.create_tasks("slots-job", [task(f"w{i}", "sleep 0.3", required_slots=4) for i in range(3)])
    wide = list(wait_tasks_done(client, "slots-job", 3).values())
    for node_id in {item.node_info.node_id for item in wide}:
        on_node = [item for item in wide if item.node_info.node_id == node_id]
        assert max_overlap(intervals(on_node)) == 1  # a 4-slot task fills a 4-slot node


def test_terminate_reactivate_delete_tasks(client: BatchClient, pool: str) -> None:
    client.create_job(job_options("ops-job"))
    client.create_task("ops-job", task("long", "sleep 30"))
    client.create_task("ops-job", task("fails", "exit 2"))
    wait_until(
        lambda: client.get_task("ops-job", "long").state == models.BatchTaskState.RUNNING, 30, "running"
    )
    client.terminate_task("ops-job", "long")
    ended = wait_until(
        lambda: (t := client.get_task("ops-job", "long")).state == models.BatchTaskState.COMPLETED and t,
        30,
        "terminated",
    )
    assert ended.execution_info.failure_info.code == "TaskEnded"
    failed = wait_tasks_done(client, "ops-job", 2)["fails"]
    assert failed.execution_info.exit_code == 2
    client.reactivate_task("ops-job", "fails")
    again = client.get_task("ops-job", "fails")
    assert again.execution_info.retry_count == 0
    wait_until(
        lambda: client.get_task("ops-job", "fails").state == models.BatchTaskState.COMPLETED, 30, "rerun"
    )
    client.delete_task("ops-job", "fails")
    with pytest.raises(ResourceNotFoundError):
        client.get_task("ops-job", "fails")
    client.replace_task(
        "ops-job", "long", models.BatchTask(constraints=models.BatchTaskConstraints(max_task_retry_count=3))
    )
    assert client.get_task("ops-job", "long").constraints.max_task_retry_count == 3


def test_disable_requeues_and_enable_resumes(client: BatchClient, pool: str) -> None:
    client.create_job(job_options("dis-job"))
    client.create_task("dis-job", task("slow", "sleep 2; echo done"))
    wait_until(
        lambda: client.get_task("dis-job", "slow").state == models.BatchTaskState.RUNNING, 30, "running"
    )
    client.begin_disable_job(
        "dis-job",
        models.BatchJobDisableOptions(disable_tasks=models.DisableBatchJobOption.REQUEUE),
        polling_interval=1,
    ).result()
    assert client.get_job("dis-job").state == models.BatchJobState.DISABLED
    slow = client.get_task("dis-job", "slow")
    assert slow.state == models.BatchTaskState.ACTIVE and slow.execution_info.requeue_count == 1
    client.begin_enable_job("dis-job", polling_interval=1).result()
    done = wait_tasks_done(client, "dis-job", 1)["slow"]
    assert done.execution_info.result == models.BatchTaskExecutionResult.SUCCESS


def test_exit_conditions_and_job_failure_action(client: BatchClient, pool: str) -> None:
    client.create_job(
        job_options(
            "exit-job",
            uses_task_dependencies=True,
            task_failure_mode=models.BatchTaskFailureMode.PERFORM_EXIT_OPTIONS_JOB_ACTION,
        )
    )
    satisfy = models.ExitConditions(
        exit_codes=[
            models.ExitCodeMapping(
                code=4,
                exit_options=models.ExitOptions(
                    job_action=models.BatchJobActionKind.NONE,
                    dependency_action=models.DependencyAction.SATISFY,
                ),
            )
        ]
    )
    client.create_task("exit-job", task("soft", "exit 4", exit_conditions=satisfy))
    client.create_task(
        "exit-job", task("after-soft", "true", depends_on=models.BatchTaskDependencies(task_ids=["soft"]))
    )
    client.create_task(
        "exit-job",
        task(
            "blocker",
            "exit 1",
            exit_conditions=models.ExitConditions(
                default=models.ExitOptions(job_action=models.BatchJobActionKind.NONE)
            ),
        ),
    )
    client.create_task(
        "exit-job", task("blocked", "true", depends_on=models.BatchTaskDependencies(task_ids=["blocker"]))
    )
    tasks = wait_tasks_done(client, "exit-job", 3)
    assert tasks["after-soft"].execution_info.result == models.BatchTaskExecutionResult.SUCCESS
    assert client.get_task("exit-job", "blocked").state == models.BatchTaskState.ACTIVE
    client.create_task("exit-job", task("fatal", "exit 9"))  # default jobAction for a failure: terminate
    job = wait_until(
        lambda: (j := client.get_job("exit-job")).state == models.BatchJobState.COMPLETED and j,
        30,
        "the job to be terminated by the failing task",
    )
    assert job.execution_info.termination_reason == "TaskFailed"
    assert client.get_task("exit-job", "blocked").state == models.BatchTaskState.ACTIVE


def test_job_preparation_and_release(emulator: Emulator, client: BatchClient, pool: str) -> None:
    client.create_job(
        job_options(
            "prep-job",
            job_preparation_task=models.BatchJobPreparationTask(
                command_line="/bin/sh -c 'echo prepared >> $AZ_BATCH_NODE_SHARED_DIR/prep-job.log'"
            ),
            job_release_task=models.BatchJobReleaseTask(
                command_line="/bin/sh -c 'echo released >> $AZ_BATCH_NODE_SHARED_DIR/prep-job.log'"
            ),
        )
    )
    client.create_tasks("prep-job", [task(f"q{i}", 'test -n "$AZ_BATCH_JOB_PREP_DIR"') for i in range(6)])
    tasks = wait_tasks_done(client, "prep-job", 6)
    assert all(
        item.execution_info.result == models.BatchTaskExecutionResult.SUCCESS for item in tasks.values()
    )
    used = {item.node_info.node_id for item in tasks.values()}
    client.begin_terminate_job(
        "prep-job", sdk_models.BatchJobTerminateOptions(termination_reason="finished"), polling_interval=1
    ).result()

    def logs() -> list[str]:
        return [
            (node_root(emulator.config.nodes_dir, POOL, node) / "shared" / "prep-job.log").read_text()
            for node in used
        ]

    wait_until(lambda: all(text == "prepared\nreleased\n" for text in logs()), 30, "release tasks")


def test_job_priority_orders_dispatch(client: BatchClient) -> None:
    client.create_pool(pool_options("prio-pool", target_dedicated_nodes=1))
    client.create_job(job_options("low", "prio-pool", priority=-10))
    client.create_job(job_options("high", "prio-pool", priority=500))
    client.create_task("low", task("gate", "sleep 0.5"))
    wait_until(
        lambda: client.get_task("low", "gate").state == models.BatchTaskState.RUNNING, 30, "gate running"
    )
    client.create_tasks("low", [task(f"l{i}", "true") for i in range(3)])
    client.create_tasks("high", [task(f"h{i}", "true") for i in range(3)])
    low = wait_tasks_done(client, "low", 4)
    high = wait_tasks_done(client, "high", 3)
    last_high = max(item.execution_info.start_time for item in high.values())
    first_low = min(low[f"l{i}"].execution_info.start_time for i in range(3))
    assert last_high <= first_low
    client.begin_delete_pool("prio-pool", polling_interval=1).result()


def test_deleting_a_pool_ends_a_running_start_task(client: BatchClient) -> None:
    client.create_pool(
        pool_options(
            "slowstart-pool",
            target_dedicated_nodes=1,
            start_task=models.BatchStartTask(command_line="/bin/sleep 120", wait_for_success=True),
        )
    )
    wait_until(
        lambda: any(
            n.state == models.BatchNodeState.WAITING_FOR_START_TASK
            for n in client.list_nodes("slowstart-pool")
        ),
        30,
        "the node to wait for its start task",
    )
    started = time.monotonic()
    client.begin_delete_pool("slowstart-pool", polling_interval=1).result()
    assert time.monotonic() - started < 20
    with pytest.raises(ResourceNotFoundError):
        client.get_pool("slowstart-pool")


def test_a_job_ends_right_after_its_last_task_when_runs_end_in_a_burst(
    client: BatchClient, pool: str
) -> None:
    """Runs that end wake the scheduler's pass at most every 20 ms, but always: a job set to terminate when
    its tasks are done completes within moments of its last task (otherwise the pass waits up to 60 s)."""
    job_id = "burst-job"
    client.create_job(job_options(job_id))
    client.create_tasks(job_id, [task(f"b{index:02d}", "true") for index in range(24)])
    client.update_job(
        job_id,
        models.BatchJobUpdateOptions(all_tasks_complete_mode=models.BatchAllTasksCompleteMode.TERMINATE_JOB),
    )
    job = wait_until(
        lambda: (found := client.get_job(job_id)).state == models.BatchJobState.COMPLETED and found,
        30,
        "the burst job to complete",
    )
    last_end = max(item.execution_info.end_time for item in client.list_tasks(job_id))
    assert (job.execution_info.end_time - last_end).total_seconds() < 2.0
