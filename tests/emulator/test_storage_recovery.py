"""The emulator's check of task outputs after storage lost acknowledged writes (in-process emulator, Azurite).

The real crash is in tests/faults/test_azurite_crash.py; here storage "loses" blobs by their deletion, so that
each decision is seen on its own:

* a lost output whose file is still there is uploaded again, the task stays a success;
* a completed task whose lost output cannot be uploaded again becomes a failure (UserError /
  FileUploadMiscError), and its exit conditions apply: the job (onTaskFailure performexitoptionsjobaction)
  is terminated with TaskFailed;
* a task still running when its earlier upload is found lost fails with that error when it completes, even
  though its own later uploads land.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from batchrun.emulator.node import task_directory
from batchrun.emulator.node.upload_journal import RunRecorder
from batchrun.emulator.scheduler import nodes
from batchrun.emulator.scheduler.storage_recovery import storage_lost
from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import Emulator, raw, vm, wait_until


@pytest.fixture
def container(blob_service: BlobServiceClient) -> Iterator[ContainerClient]:
    client = blob_service.create_container(f"rec{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def write_only_url(azurite: AzuriteEndpoint, container: ContainerClient) -> str:
    token = generate_container_sas(
        azurite.account_name,
        container.container_name,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    return f"{container.url}?{token}"


def task_body(task_id: str, command: str, url: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "commandLine": f"/bin/sh -c '{command}'",
        "outputFiles": [
            {
                "filePattern": f"{task_id}.txt",
                "destination": {"container": {"containerUrl": url, "path": f"{task_id}.txt"}},
                "uploadOptions": {"uploadCondition": "tasksuccess"},
            }
        ],
    }


def make_job(client: BatchClient, name: str) -> None:
    pool = {
        "id": f"{name}-pool",
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "targetDedicatedNodes": 1,
    }
    pool["taskSlotsPerNode"] = 4
    assert raw(client, "POST", "/pools", pool).status_code == 201
    job = {
        "id": f"{name}-job",
        "poolInfo": {"poolId": f"{name}-pool"},
        "onTaskFailure": "performexitoptionsjobaction",
    }
    assert raw(client, "POST", "/jobs", job).status_code == 201


def task_folder(emulator: Emulator, client: BatchClient, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    pool_id, node_id = task.node_info.pool_id, task.node_info.node_id
    scheduler = emulator.server.scheduler
    assert scheduler is not None
    identity = nodes.identity(emulator.config, "", pool_id, scheduler.model.nodes[pool_id][node_id])
    return task_directory(identity, job_id, task_id)


def test_a_lost_output_is_uploaded_again_or_fails_its_completed_task(
    emulator: Emulator, client: BatchClient, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    scheduler = emulator.server.scheduler
    assert scheduler is not None
    url = write_only_url(azurite, container)
    make_job(client, "lost")
    loss = storage_lost(scheduler, time.time())  # the journal is held from here on
    for task_id in ("kept", "gone"):
        assert (
            raw(
                client,
                "POST",
                "/jobs/lost-job/tasks",
                task_body(task_id, f"echo {task_id} > {task_id}.txt", url),
            ).status_code
            == 201
        )
    wait_until(lambda: client.get_job_task_counts("lost-job").task_counts.completed == 2, 60, "the tasks")
    assert {t.id: t.execution_info.result for t in client.list_tasks("lost-job")} == {
        "kept": "success",
        "gone": "success",
    }

    container.delete_blob("kept.txt")  # storage loses both; gone's file goes too
    container.delete_blob("gone.txt")
    (task_folder(emulator, client, "lost-job", "gone") / "wd" / "gone.txt").unlink()
    report = loss.recover()

    assert (report.checked, report.uploaded_again, report.failed_tasks) == (2, 1, ("lost-job/gone",))
    assert container.download_blob("kept.txt").readall() == b"kept\n"
    kept, gone = client.get_task("lost-job", "kept"), client.get_task("lost-job", "gone")
    assert kept.execution_info.result == "success"
    assert gone.state == "completed" and gone.execution_info.result == "failure"
    assert gone.execution_info.exit_code == 0
    failure = gone.execution_info.failure_info
    assert (failure.category, failure.code) == ("usererror", "FileUploadMiscError")
    assert "gone.txt" in failure.message and "is gone" in failure.message
    counts = client.get_job_task_counts("lost-job").task_counts
    assert (counts.succeeded, counts.failed) == (1, 1)
    # No fileUploadError exit options: a failure's default, terminate (under performexitoptionsjobaction).
    wait_until(lambda: client.get_job("lost-job").state == "completed", 30, "the job to be terminated")
    assert client.get_job("lost-job").execution_info.termination_reason == "TaskFailed"
    errors = (task_folder(emulator, client, "lost-job", "gone") / "fileuploaderr.txt").read_text()
    assert "lost by storage in a crash" in errors


def test_a_running_task_whose_earlier_upload_was_lost_fails_when_it_completes(
    emulator: Emulator,
    client: BatchClient,
    azurite: AzuriteEndpoint,
    container: ContainerClient,
    tmp_path: Any,
) -> None:
    scheduler = emulator.server.scheduler
    assert scheduler is not None
    url = write_only_url(azurite, container)
    make_job(client, "busy")
    gate = tmp_path / "go"
    command = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo late > slow.txt"
    assert raw(client, "POST", "/jobs/busy-job/tasks", task_body("slow", command, url)).status_code == 201
    wait_until(lambda: client.get_task("busy-job", "slow").state == "running", 60, "the task to run")
    folder = task_folder(emulator, client, "busy-job", "slow")

    # What this run's output code journals for an output acknowledged now, whose file is then lost.
    loss = storage_lost(scheduler, time.time() - 1)
    started = datetime.now(timezone.utc)
    recorder = RunRecorder(scheduler.upload_journal, "busy-job", "slow", started, folder)
    recorder.acknowledged(url, "early.txt", folder / "wd" / "early.txt", 6, b"0123456789abcdef", ())
    report = loss.recover()
    assert report.failed_tasks == ("busy-job/slow",)
    assert client.get_task("busy-job", "slow").state == "running"

    gate.touch()
    wait_until(lambda: client.get_task("busy-job", "slow").state == "completed", 60, "the task to complete")
    info = client.get_task("busy-job", "slow").execution_info
    assert container.download_blob("slow.txt").readall() == b"late\n"  # its own uploads landed
    assert info.result == "failure" and info.exit_code == 0
    assert info.failure_info.code == "FileUploadMiscError" and "early.txt" in info.failure_info.message
