"""``python -m batchrun.emulator`` killed with SIGKILL mid-job and restarted on the same state folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import ACCOUNT, KEY, REPO, TOKEN, wait_until

TASKS = 100


class Daemon:
    def __init__(self, state_dir: Path, azurite: AzuriteEndpoint) -> None:
        self.state_dir = state_dir
        self.config_path = state_dir / "config.json"
        self.config_path.write_text(
            json.dumps(
                {
                    "state_dir": str(state_dir),
                    "host": "127.0.0.1",
                    "port": 0,
                    "account_name": ACCOUNT,
                    "account_key": KEY,
                    "token": TOKEN,
                    "subscription_id": "sub",
                    "resource_group": "rg",
                    "storage": {
                        "blob_endpoint": azurite.blob_url,
                        "account_name": azurite.account_name,
                        "account_key": azurite.account_key,
                    },
                    "max_running_tasks": 4,
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        discovery = self.state_dir / "emulator.json"
        discovery.unlink(missing_ok=True)
        log = open(self.state_dir / "emulator.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batchrun.emulator", "--config", str(self.config_path)],
            stdout=log,
            stderr=log,
            cwd=REPO,
            start_new_session=True,
        )
        log.close()
        info = wait_until(
            lambda: discovery.exists() and json.loads(discovery.read_text()),
            30,
            "the emulator to write emulator.json",
        )
        assert info["pid"] == self.process.pid
        return str(info["url"])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def daemon(tmp_path: Path, azurite: AzuriteEndpoint) -> Iterator[Daemon]:
    running = Daemon(tmp_path, azurite)
    try:
        yield running
    finally:
        running.terminate()


def test_sigkill_mid_job_then_restart_completes_everything(
    daemon: Daemon, blob_service: BlobServiceClient
) -> None:
    container = "crash-outputs"
    blob_service.create_container(container)
    credential = blob_service.credential
    sas = generate_container_sas(
        credential.account_name,
        container,
        account_key=credential.account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    outputs_url = f"{blob_service.url.rstrip('/')}/{container}?{sas}"

    url = daemon.start()
    client = BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY))
    client.create_pool(
        models.BatchPoolCreateOptions(
            id="crash-pool",
            vm_size="standard_d2",
            target_dedicated_nodes=2,
            task_slots_per_node=2,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu", sku="24_04"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    client.create_job(
        models.BatchJobCreateOptions(id="crash-job", pool_info=models.BatchPoolInfo(pool_id="crash-pool"))
    )
    client.create_tasks(
        "crash-job",
        [
            models.BatchTaskCreateOptions(
                id=f"k{index:03d}",
                command_line="/bin/sh -c 'sleep 0.4; echo \"$AZ_BATCH_TASK_ID\" > out.txt'",
                output_files=[
                    models.OutputFile(
                        file_pattern="out.txt",
                        destination=models.OutputFileDestination(
                            container=models.OutputFileBlobContainerDestination(
                                container_url=outputs_url, path=f"out/k{index:03d}.txt"
                            )
                        ),
                        upload_options=models.OutputFileUploadConfiguration(
                            upload_condition=models.OutputFileUploadCondition.TASK_SUCCESS
                        ),
                    )
                ],
            )
            for index in range(TASKS)
        ],
    )
    wait_until(
        lambda: client.get_job_task_counts("crash-job").task_counts.completed >= 20, 60, "20 tasks done"
    )
    running = {task.id for task in client.list_tasks("crash-job", filter="state eq 'running'")}
    killed_at = datetime.now(timezone.utc)
    daemon.kill()
    assert running, "some tasks should have been running at the kill"

    url = daemon.start()
    client = BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY))
    wait_until(
        lambda: client.get_job_task_counts("crash-job").task_counts.completed == TASKS,
        120,
        "all tasks to complete after the restart",
    )
    tasks = list(client.list_tasks("crash-job"))
    assert sorted(task.id for task in tasks) == [f"k{index:03d}" for index in range(TASKS)]
    assert all(task.execution_info.result == models.BatchTaskExecutionResult.SUCCESS for task in tasks)
    by_id = {task.id: task for task in tasks}
    for task_id in running:
        info = by_id[task_id].execution_info
        # Requeued and run again, unless it finished (and was recorded) in the instant before the kill.
        assert info.requeue_count >= 1 or info.end_time <= killed_at, task_id
    assert sum(1 for task in tasks if task.execution_info.requeue_count >= 1) >= 1
    assert [pool.id for pool in client.list_pools()] == ["crash-pool"]
    assert [job.id for job in client.list_jobs()] == ["crash-job"]
    names = {blob.name for blob in blob_service.get_container_client(container).list_blobs()}
    assert names == {f"out/k{index:03d}.txt" for index in range(TASKS)}
    assert blob_service.get_blob_client(container, "out/k042.txt").download_blob().readall() == b"k042\n"


def test_sigterm_stops_gracefully_and_requeues_running_tasks(daemon: Daemon) -> None:
    url = daemon.start()
    client = BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY))
    client.create_pool(
        models.BatchPoolCreateOptions(
            id="term-pool",
            vm_size="standard_d2",
            target_dedicated_nodes=1,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu", sku="24_04"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    client.create_job(
        models.BatchJobCreateOptions(id="term-job", pool_info=models.BatchPoolInfo(pool_id="term-pool"))
    )
    client.create_task("term-job", models.BatchTaskCreateOptions(id="sleeper", command_line="/bin/sleep 60"))
    wait_until(
        lambda: client.get_task("term-job", "sleeper").state == models.BatchTaskState.RUNNING, 30, "running"
    )
    assert daemon.process is not None
    daemon.process.terminate()
    assert daemon.process.wait(20) == 0
    assert not (daemon.state_dir / "emulator.json").exists()

    url = daemon.start()
    client = BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY))
    sleeper = client.get_task("term-job", "sleeper")
    assert sleeper.execution_info.requeue_count == 1
    assert sleeper.state in (models.BatchTaskState.ACTIVE, models.BatchTaskState.RUNNING)
