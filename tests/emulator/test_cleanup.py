"""Deleting tasks, jobs and pools removes their node folders, as Batch does; dependsOn ids ignore case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.exceptions import ResourceNotFoundError

from batchrun.emulator.node import node_root
from tests.emulator.conftest import Emulator, wait_until

POOL = "Cleanup-Pool"


def pool_options(pool_id: str) -> models.BatchPoolCreateOptions:
    return models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d2",
        target_dedicated_nodes=1,
        task_slots_per_node=4,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="24_04"),
            node_agent_sku_id="batch.node.ubuntu 24.04",
        ),
    )


def idle_node(client: BatchClient, pool_id: str) -> str:
    return str(
        wait_until(
            lambda: next(
                (node.id for node in client.list_nodes(pool_id) if node.state == models.BatchNodeState.IDLE),
                None,
            ),
            60,
            f"a node of {pool_id} to be idle",
        )
    )


@pytest.fixture(scope="module")
def node_dir(client: BatchClient, emulator: Emulator) -> Path:
    client.create_pool(pool_options(POOL))
    return node_root(emulator.config.nodes_dir, POOL, idle_node(client, POOL))


def create_job(client: BatchClient, job_id: str, **options: Any) -> None:
    client.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=POOL), **options)
    )


def task_state(client: BatchClient, job_id: str, task_id: str) -> str:
    return client.get_task(job_id, task_id).state


def wait_completed(client: BatchClient, job_id: str, task_id: str, timeout: float = 60) -> None:
    wait_until(
        lambda: task_state(client, job_id, task_id) == models.BatchTaskState.COMPLETED,
        timeout,
        f"task {task_id} to complete",
    )


def test_deleting_tasks_removes_their_folders(client: BatchClient, node_dir: Path) -> None:
    create_job(client, "cl-tasks")
    for task_id, command in (("Done-Task", "/bin/sh -c 'echo done > out.txt'"), ("kept", "true")):
        client.create_task("cl-tasks", models.BatchTaskCreateOptions(id=task_id, command_line=command))
    client.create_task("cl-tasks", models.BatchTaskCreateOptions(id="busy", command_line="sleep 60"))
    job_folder = node_dir / "workitems" / "cl-tasks" / "job-1"
    for task_id in ("Done-Task", "kept"):
        wait_completed(client, "cl-tasks", task_id)
    assert (job_folder / "Done-Task" / "wd" / "out.txt").is_file()

    client.delete_task("cl-tasks", "done-task")  # ids are case-insensitive
    assert not (job_folder / "Done-Task").exists()
    assert (job_folder / "kept" / "stdout.txt").is_file()  # only the deleted task's folder goes

    # A running task's folder goes once its process has been ended.
    wait_until(lambda: task_state(client, "cl-tasks", "busy") == models.BatchTaskState.RUNNING, 60, "busy")
    assert (job_folder / "busy").is_dir()
    client.delete_task("cl-tasks", "busy")
    wait_until(lambda: not (job_folder / "busy").exists(), 30, "the running task's folder to go")


def test_deleting_a_job_removes_its_workitems_after_the_release_task(
    client: BatchClient, node_dir: Path
) -> None:
    create_job(client, "cl-kept")
    client.create_task("cl-kept", models.BatchTaskCreateOptions(id="t", command_line="true"))
    create_job(
        client,
        "cl-job",
        job_preparation_task=models.BatchJobPreparationTask(command_line="true"),
        # The release task still writes into workitems/cl-job after the job is gone from the API.
        job_release_task=models.BatchJobReleaseTask(command_line="/bin/sh -c 'sleep 1; echo released'"),
    )
    client.create_task("cl-job", models.BatchTaskCreateOptions(id="t", command_line="true"))
    wait_completed(client, "cl-kept", "t")
    wait_completed(client, "cl-job", "t")
    job_folder = node_dir / "workitems" / "cl-job"
    assert (job_folder / "job-1" / "t" / "stdout.txt").is_file()

    client.begin_delete_job("cl-job", polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job("cl-job")
    wait_until(lambda: not job_folder.exists(), 30, "workitems/cl-job to be removed")
    assert (node_dir / "workitems" / "cl-kept" / "job-1" / "t").is_dir()  # other jobs keep theirs
    assert (node_dir / "shared").is_dir()


def test_deleting_a_pool_removes_its_node_folders(client: BatchClient, emulator: Emulator) -> None:
    client.create_pool(pool_options("cl-gone"))
    root = node_root(emulator.config.nodes_dir, "cl-gone", idle_node(client, "cl-gone"))
    assert (root / "workitems").is_dir()
    client.begin_delete_pool("cl-gone", polling_interval=0).result()
    assert not (emulator.config.nodes_dir / "cl-gone").exists()
    assert (emulator.config.nodes_dir / POOL).is_dir()


def test_dependency_ids_are_case_insensitive(client: BatchClient, node_dir: Path) -> None:
    create_job(client, "cl-deps", uses_task_dependencies=True)
    client.create_task("cl-deps", models.BatchTaskCreateOptions(id="Parent-A", command_line="true"))
    client.create_task(
        "cl-deps",
        models.BatchTaskCreateOptions(
            id="child",
            command_line="true",
            depends_on=models.BatchTaskDependencies(task_ids=["PARENT-a"]),
        ),
    )
    wait_completed(client, "cl-deps", "child", timeout=30)
    info = client.get_task("cl-deps", "child").execution_info
    assert info is not None and info.result == models.BatchTaskExecutionResult.SUCCESS
