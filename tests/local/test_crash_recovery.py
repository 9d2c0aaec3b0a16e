"""SIGKILL of the emulator daemon in the middle of a 100-task job, then a restart: nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from batchrun.emulator.node.reaper import find_orphans
from batchrun.local.target import LocalTarget, ensure_running, start, status, stop
from tests.conftest import tools_dir

TASKS = 100


@pytest.fixture
def target(tmp_path: Path) -> Iterator[LocalTarget]:
    home = tmp_path / "home"
    try:
        yield start(home, tools_dir=tools_dir())
    finally:
        stop(home)


def client_for(target: LocalTarget) -> BatchClient:
    return BatchClient(target.batch_url, AzureNamedKeyCredential(target.account_name, target.account_key))


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sigkill_mid_job_then_restart_completes_everything(target: LocalTarget) -> None:
    blobs = BlobServiceClient.from_connection_string(target.connection_string)
    outputs = blobs.create_container("crash-outputs")
    token = generate_container_sas(
        target.storage_account_name,
        "crash-outputs",
        account_key=target.storage_account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    with client_for(target) as client:
        client.create_pool(
            models.BatchPoolCreateOptions(
                id="crash-pool",
                vm_size="standard_d2s_v3",
                target_dedicated_nodes=2,
                task_slots_per_node=2,
                virtual_machine_configuration=models.VirtualMachineConfiguration(
                    image_reference=models.BatchVmImageReference(
                        publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 24.04",
                ),
            )
        )
        client.create_job(
            models.BatchJobCreateOptions(id="crash-job", pool_info=models.BatchPoolInfo(pool_id="crash-pool"))
        )
        tasks = [
            models.BatchTaskCreateOptions(
                id=f"t{index:03d}",
                command_line=f"/bin/sh -c 'sleep 0.2; echo {index} > out.txt'",
                output_files=[
                    models.OutputFile(
                        file_pattern="out.txt",
                        destination=models.OutputFileDestination(
                            container=models.OutputFileBlobContainerDestination(
                                container_url=f"{outputs.url}?{token}", path=f"out/t{index:03d}.txt"
                            )
                        ),
                        upload_options=models.OutputFileUploadConfiguration(
                            upload_condition=models.OutputFileUploadCondition.TASK_SUCCESS
                        ),
                    )
                ],
            )
            for index in range(TASKS)
        ]
        client.create_tasks("crash-job", tasks)
        client.update_job(
            "crash-job",
            models.BatchJobUpdateOptions(
                all_tasks_complete_mode=models.BatchAllTasksCompleteMode.TERMINATE_JOB
            ),
        )

        def some_done_some_running() -> bool:
            counts = client.get_job_task_counts("crash-job").task_counts
            return counts.completed >= 10 and counts.running >= 1

        wait(some_done_some_running, 120, "the job to be under way")
        running = {task.id for task in client.list_tasks("crash-job", filter="state eq 'running'")}
    assert running, "some tasks should have been running at the kill"

    emulator_pid = status(target.home).emulator_pid
    assert emulator_pid is not None
    killed_at = datetime.now(timezone.utc)
    os.kill(emulator_pid, signal.SIGKILL)
    nodes_dir = target.home / "local" / "nodes"
    wait(lambda: not find_orphans(nodes_dir), 10, "task processes to die with the emulator")

    announced: list[str] = []
    restarted = ensure_running(target.home, announced.append, tools_dir=tools_dir())
    assert len(announced) == 1 and restarted.batch_url == target.batch_url
    with client_for(restarted) as client:
        wait(
            lambda: client.get_job("crash-job").state == models.BatchJobState.COMPLETED,
            180,
            "the job to complete after the restart",
        )
        listed = list(client.list_tasks("crash-job"))
        pools = [pool.id for pool in client.list_pools()]
        jobs = [job.id for job in client.list_jobs()]
    assert (pools, jobs) == (["crash-pool"], ["crash-job"])
    assert sorted(task.id for task in listed) == [f"t{index:03d}" for index in range(TASKS)]
    assert all(task.state == models.BatchTaskState.COMPLETED for task in listed)
    assert all(task.execution_info and task.execution_info.exit_code == 0 for task in listed)
    requeued = [task.id for task in listed if task.execution_info and task.execution_info.requeue_count]
    assert requeued, "the tasks running at the kill should have been requeued and run again"
    by_id = {task.id: task for task in listed}
    for task_id in running:
        info = by_id[task_id].execution_info
        # Requeued and run again, unless it finished (and was recorded) in the instant before the kill.
        assert info is not None and (info.requeue_count >= 1 or info.end_time <= killed_at), task_id
    names = sorted(blob.name for blob in outputs.list_blobs())
    assert names == [f"out/t{index:03d}.txt" for index in range(TASKS)]
    assert outputs.download_blob("out/t042.txt").readall() == b"42\n"
